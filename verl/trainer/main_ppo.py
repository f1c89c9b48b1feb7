"""GRPO training entry point.

    python -m verl.trainer.main_ppo actor_rollout_ref.model.path=/ckpt data.task_suite_name=libero_10
    python -m verl.trainer.main_ppo --cfg job          # print the whole config tree

Hydra parses the overrides against the structured schema (unknown keys and wrong types are errors
that name the key); `validate_config` checks values; then the Ray driver runs `RayTrainer.fit`.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from verl.trainer.config import ConfigError, PPOConfig, register_configs, validate_config
from verl.trainer.config.removed import check_removed_overrides
from verl.trainer.ray_session import load_runtime_env, run_driver

__all__ = ["load_runtime_env", "main", "run_ppo"]

register_configs()


def run_ppo(config: PPOConfig) -> dict[str, float]:
    """Run the GRPO driver (starting a local Ray instance unless one is running or an address is
    given); returns the last validation metrics."""
    from verl.trainer.ppo.ray_trainer import RayTrainer
    from verl.trainer.preflight import preflight_ppo

    preflight_ppo(config)  # bad paths and files fail here, before Ray starts
    return run_driver(lambda: RayTrainer(config), config.trainer.runtime_env, config.trainer.ray_address)


@hydra.main(version_base=None, config_path=None, config_name="ppo_trainer")
def main(cfg: DictConfig) -> None:
    config: PPOConfig = OmegaConf.to_object(cfg)
    validate_config(config)
    run_ppo(config)


if __name__ == "__main__":
    try:
        check_removed_overrides(sys.argv[1:])
    except ConfigError as err:
        sys.exit(f"error: {err}")
    main()
