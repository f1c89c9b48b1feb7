"""Build a validated `PPOConfig` from override strings without the command line (tests, notebooks)."""

from __future__ import annotations

from omegaconf import OmegaConf

from verl.trainer.config.ppo import PPOConfig, register_configs
from verl.trainer.config.removed import check_removed_overrides
from verl.trainer.config.validate import validate_config


def compose_config(overrides: list[str] | None = None, validate: bool = True) -> PPOConfig:
    """The `ppo_trainer` config with Hydra-syntax overrides applied, e.g. ["data.n_samples=4"]."""
    from hydra import compose, initialize

    check_removed_overrides(overrides or [])
    register_configs()
    with initialize(version_base=None, config_path=None):
        cfg = compose("ppo_trainer", overrides=list(overrides or []))
    config = OmegaConf.to_object(cfg)
    if validate:
        validate_config(config)
    return config


def config_to_dict(config: object) -> dict:
    """A structured config (dataclass instance) as a plain, resolved dict, e.g. for WandB."""
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
