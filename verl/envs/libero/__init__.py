"""LIBERO (libero_spatial, libero_object, libero_goal, libero_10, libero_90) through the real simulator.

Importing this package registers "libero" and exposes the cheap suite metadata; the simulator itself
(robosuite, MuJoCo) is imported only when an env is built.
"""

from __future__ import annotations

from verl.envs.base import Env
from verl.envs.config import EnvConfig
from verl.envs.libero.convert import ACTION_DIM
from verl.envs.libero.suites import (
    DEFAULT_MAX_STEPS,
    SUITES,
    check_reset_request,
    default_max_steps,
    init_states,
    num_init_states,
    num_tasks,
    split_init_states,
    task_language,
    task_name,
)
from verl.envs.registry import register_env

__all__ = [
    "DEFAULT_MAX_STEPS",
    "SUITES",
    "default_max_steps",
    "init_states",
    "num_init_states",
    "num_tasks",
    "split_init_states",
    "task_language",
    "task_name",
]


@register_env("libero", action_dim=ACTION_DIM, suites=SUITES, check_request=check_reset_request)
def make_libero_env(cfg: EnvConfig) -> Env:
    from verl.envs.libero.env import LiberoEnv

    return LiberoEnv(cfg)
