"""Simulators for rollouts: the env interface, a registry, LIBERO, and a pool of env worker processes.

Nothing here imports a simulator or torch at import time.
"""

from verl.envs.base import EnvResult, ResetRequest
from verl.envs.config import EnvConfig, PerturbationConfig
from verl.envs.registry import available_envs, get_env_spec, make_env, register_env

__all__ = [
    "EnvConfig",
    "EnvResult",
    "PerturbationConfig",
    "ResetRequest",
    "available_envs",
    "get_env_spec",
    "make_env",
    "register_env",
]
