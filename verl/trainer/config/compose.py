"""From Hydra overrides to a typed config: the schema with one `env.<name>` node per registered
simulator, plugin imports, keys that moved, and conversion back to the config dataclasses.

The dataclasses (`PPOConfig`, `SFTConfig`) are the one source of defaults. Hydra sees a schema built
from them in which `env` also has a node per registered simulator, typed by that simulator's own
config class, so `env.libero.camera_size=128` is type-checked and a typo names the key. The result
converts back to the dataclasses, with each simulator's settings in `env.sims[<name>]`.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from collections.abc import Iterable
from typing import Any

from omegaconf import OmegaConf

from verl.envs.config import EnvConfig
from verl.trainer.config.removed import check_removed_overrides
from verl.utils.config_values import ConfigError

# Keys that moved into a simulator's own node, old -> new. An override of an old key is an error
# naming the new one.
MOVED_KEYS = {
    "env.num_steps_wait": "env.libero.num_steps_wait",
    "env.camera_size": "env.libero.camera_size",
    "env.use_wrist_image": "env.libero.use_wrist_image",
    "env.privileged_obs": "env.libero.privileged_obs",
    "env.perturbation": "env.libero.perturbation",
}


def override_key(override: str) -> str:
    """'+a.b=1' -> 'a.b'."""
    return override.split("=", 1)[0].lstrip("+~")


def check_moved_keys(overrides: Iterable[str]) -> None:
    """Raise ConfigError for an override of a key that moved, naming its new key."""
    for override in overrides:
        key = override_key(override)
        for old, new in MOVED_KEYS.items():
            if key == old or key.startswith(old + "."):
                raise ConfigError(
                    f"{key} moved to {new + key[len(old) :]}; write {new + override[len(old) :]}"
                )


def plugins_in(overrides: Iterable[str]) -> list[str]:
    """Module names given as `trainer.plugins=[a,b]` among the overrides."""
    for override in overrides:
        if override_key(override) == "trainer.plugins" and "=" in override:
            value = override.split("=", 1)[1].strip().strip("[]")
            return [m.strip().strip("'\"") for m in value.split(",") if m.strip()]
    return []


def import_plugins(modules: Iterable[str]) -> None:
    """Import modules that register simulators or policies (`trainer.plugins`)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ConfigError(f"trainer.plugins: cannot import {module!r}: {err}") from None


def _env_schema(default: EnvConfig) -> type:
    """EnvConfig's fields, minus `sims`, plus one node per registered simulator."""
    from verl.envs.registry import available_envs, get_env_spec

    hints = typing.get_type_hints(EnvConfig)
    fields: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(EnvConfig):
        if f.name == "sims":
            continue
        fields.append((f.name, hints[f.name], dataclasses.field(default=getattr(default, f.name))))
    for name in available_envs():
        cls = get_env_spec(name).config_cls
        value = default.sims.get(name)
        factory = (lambda v=value: dataclasses.replace(v)) if value is not None else cls
        fields.append((name, cls, dataclasses.field(default_factory=factory)))
    return dataclasses.make_dataclass("EnvSchema", fields)


def hydra_schema(root_cls: type) -> type:
    """`root_cls` with its `env` field replaced by the schema of `_env_schema`."""
    hints = typing.get_type_hints(root_cls)
    default = root_cls()
    fields = []
    for f in dataclasses.fields(root_cls):
        if hints[f.name] is EnvConfig:
            env_default = getattr(default, f.name)
            env_cls = _env_schema(env_default)
            fields.append((f.name, env_cls, dataclasses.field(default_factory=env_cls)))
        else:
            fields.append((f.name, hints[f.name], dataclasses.field(default_factory=f.default_factory)))
    return dataclasses.make_dataclass(root_cls.__name__ + "Schema", fields)


def from_schema(obj: Any, root_cls: type) -> Any:
    """A schema instance (OmegaConf.to_object of a composed config) -> `root_cls`."""
    hints = typing.get_type_hints(root_cls)
    values = {}
    for f in dataclasses.fields(root_cls):
        value = getattr(obj, f.name)
        if hints[f.name] is EnvConfig:
            common = {
                g.name: getattr(value, g.name) for g in dataclasses.fields(EnvConfig) if g.name != "sims"
            }
            # Only the active simulator's settings travel with the run: the other nodes may belong to
            # simulators registered in this process only (plugins a worker does not import).
            sims = {value.name: getattr(value, value.name)} if hasattr(value, value.name) else {}
            value = EnvConfig(**common, sims=sims)
        values[f.name] = value
    return root_cls(**values)


def compose(config_name: str, root_cls: type, overrides: list[str] | None = None) -> Any:
    """`root_cls` from Hydra-syntax overrides (plugins imported first, moved keys rejected)."""
    from hydra import compose as hydra_compose
    from hydra import initialize
    from hydra.core.config_store import ConfigStore

    overrides = list(overrides or [])
    check_moved_keys(overrides)
    check_removed_overrides(overrides)
    import_plugins(plugins_in(overrides))
    ConfigStore.instance().store(name=config_name, node=hydra_schema(root_cls))
    with initialize(version_base=None, config_path=None):
        cfg = hydra_compose(config_name, overrides=overrides)
    return from_schema(OmegaConf.to_object(cfg), root_cls)


def compose_config(overrides: list[str] | None = None, validate: bool = True) -> Any:
    """The GRPO trainer's `PPOConfig` with Hydra-syntax overrides applied, e.g. ["data.n_samples=4"]."""
    from verl.trainer.config.ppo import PPOConfig
    from verl.trainer.config.validate import validate_config

    config = compose("ppo_trainer", PPOConfig, overrides)
    if validate:
        validate_config(config)
    return config


def config_to_dict(config: object) -> dict:
    """A structured config (dataclass instance) as a plain, resolved dict, e.g. for WandB."""
    return OmegaConf.to_container(OmegaConf.structured(config), resolve=True)
