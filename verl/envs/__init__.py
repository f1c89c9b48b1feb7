"""Simulators for rollouts: the env interface and spec, a registry, LIBERO, and a pool of env worker
processes.

Nothing here imports a simulator or torch at import time.
"""

from verl.envs.base import EnvResult, ResetRequest
from verl.envs.config import EnvConfig
from verl.envs.registry import available_envs, get_env_spec, make_env, observation_spec, register_env
from verl.envs.spec import EnvSpec, ObservationSpec

__all__ = [
    "EnvConfig",
    "EnvResult",
    "EnvSpec",
    "ObservationSpec",
    "ResetRequest",
    "available_envs",
    "get_env_spec",
    "make_env",
    "observation_spec",
    "register_env",
]
