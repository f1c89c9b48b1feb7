"""The simulator registry: `env.name` -> `EnvSpec`.

Built-in simulators are listed once, in `BUILTIN_MODULES`; importing one registers it and imports no
simulator. Other packages register themselves on import and are named in `trainer.plugins`, which
the driver, every Ray worker and (through `EnvSpec.module`) every simulator worker import.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable
from typing import Any

from verl.envs.base import Env
from verl.envs.spec import EnvSpec, ObservationSpec

# Functions below take an `EnvConfig` (verl.envs.config), typed `Any` here: the config module imports
# this registry to validate itself, and the registry must not import it back.

# Packages that register the built-in simulators on import (cheap: no simulator import).
BUILTIN_MODULES = ("verl.envs.libero", "verl.envs.robotwin", "verl.envs.maniskill")

_REGISTRY: dict[str, EnvSpec] = {}


def register_env(spec: EnvSpec) -> EnvSpec:
    """Add `spec` under `spec.name`; registering the same spec again (a re-import) is a no-op."""
    known = _REGISTRY.get(spec.name)
    if known is not None and known.module != spec.module:
        raise ValueError(f"env {spec.name!r} is already registered by {known.module}")
    _REGISTRY[spec.name] = spec
    return spec


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def available_envs() -> list[str]:
    """Names of the registered simulators."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_env_spec(name: str) -> EnvSpec:
    """The spec registered under `name`; unknown names list the known ones."""
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(
            f"env.name={name!r} is not registered; available: {sorted(_REGISTRY)} "
            "(a simulator outside verl/ registers itself when its module, named in trainer.plugins, is imported)"
        )
    return _REGISTRY[name]


def make_env(cfg: Any) -> Env:
    """Build the simulator named by `cfg.name` in this process."""
    cfg.validate()
    return get_env_spec(cfg.name).make(cfg)


def observation_spec(cfg: Any) -> ObservationSpec:
    """The cameras and proprio size the configured simulator produces."""
    return get_env_spec(cfg.name).observation(cfg)


def split_suites(suites: str) -> list[str]:
    """'a, b' -> ['a', 'b']."""
    return [s.strip() for s in str(suites).split(",") if s.strip()]


def max_episode_steps(cfg: Any, suites: str | Iterable[str]) -> int:
    """The longest episode (policy steps after any settling) over `suites`: env.max_steps when set,
    else the simulator's largest per-suite default."""
    if cfg.max_steps is not None:
        return int(cfg.max_steps)
    spec = get_env_spec(cfg.name)
    names = split_suites(suites) if isinstance(suites, str) else list(suites)
    if spec.config_max_steps is not None:
        return max(spec.config_max_steps(cfg, s) for s in names)
    return max(spec.default_max_steps(s) for s in names)


def max_decision_steps(cfg: Any, suites: str | Iterable[str], chunk: int) -> int:
    """Policy calls of the longest possible episode with `chunk` actions per call."""
    return math.ceil(max_episode_steps(cfg, suites) / chunk)
