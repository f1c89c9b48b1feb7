"""A small registry of simulators: name -> factory plus the cheap facts the pool checks requests with.

Registering never imports a simulator; the factory imports it when an env is built (inside the
env worker process).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from verl.envs.base import Env, ResetRequest
from verl.envs.config import EnvConfig

# Packages that register the built-in simulators on import (cheap: no simulator import).
_BUILTIN_MODULES = ("verl.envs.libero",)


@dataclass(frozen=True)
class EnvSpec:
    """What the pool needs to know about a simulator without building it."""

    name: str
    make: Callable[[EnvConfig], Env]
    # Width of one action row in the policy convention.
    action_dim: int
    # Task suites this simulator serves.
    suites: tuple[str, ...]
    # Raises ValueError naming the field and allowed values for an impossible reset request.
    check_request: Callable[[ResetRequest], None]


_REGISTRY: dict[str, EnvSpec] = {}


def register_env(
    name: str, action_dim: int, suites: tuple[str, ...], check_request: Callable[[ResetRequest], None]
) -> Callable[[Callable[[EnvConfig], Env]], Callable[[EnvConfig], Env]]:
    """Decorator registering `make(cfg) -> Env` under `name`."""

    def decorator(make: Callable[[EnvConfig], Env]) -> Callable[[EnvConfig], Env]:
        if name in _REGISTRY and _REGISTRY[name].make is not make:
            raise ValueError(f"env {name!r} is already registered")
        _REGISTRY[name] = EnvSpec(name, make, action_dim, tuple(suites), check_request)
        return make

    return decorator


def _load_builtins() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def available_envs() -> list[str]:
    """Names of the registered simulators."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_env_spec(name: str) -> EnvSpec:
    """The spec registered under `name`; unknown names list the known ones."""
    _load_builtins()
    if name not in _REGISTRY:
        raise ValueError(f"env.name={name!r} is not registered; available: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def make_env(cfg: EnvConfig) -> Env:
    """Build the simulator named by `cfg.name` in this process."""
    cfg.validate()
    return get_env_spec(cfg.name).make(cfg)
