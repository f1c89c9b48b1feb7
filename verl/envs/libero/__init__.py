"""LIBERO (libero_spatial, libero_object, libero_goal, libero_10, libero_90) through the real simulator.

Importing this package registers "libero" and exposes the cheap suite metadata; the simulator itself
(robosuite, MuJoCo) is imported only when an env is built.
"""

from __future__ import annotations

from verl.envs.base import Env
from verl.envs.config import EnvConfig
from verl.envs.libero.config import LiberoConfig, PerturbationConfig
from verl.envs.libero.convert import ACTION_DIM, PROPRIO_DIM
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
from verl.envs.spec import EnvSpec, ObservationSpec

__all__ = [
    "DEFAULT_MAX_STEPS",
    "SUITES",
    "LiberoConfig",
    "PerturbationConfig",
    "default_max_steps",
    "init_states",
    "num_init_states",
    "num_tasks",
    "split_init_states",
    "task_language",
    "task_name",
]


def make_libero_env(cfg: EnvConfig) -> Env:
    from verl.envs.libero.env import LiberoEnv

    return LiberoEnv(cfg)


def libero_observation(cfg: EnvConfig) -> ObservationSpec:
    """The agent view ("agentview"), the wrist camera ("wrist") when env.libero.use_wrist_image, and
    the 8-d proprio (eef position, eef axis-angle, gripper qpos)."""
    if cfg.render_mode == "none":
        cameras: tuple[str, ...] = ()
    else:
        cameras = ("agentview", "wrist") if cfg.sim.use_wrist_image else ("agentview",)
    return ObservationSpec(cameras=cameras, proprio_dim=PROPRIO_DIM)


LIBERO = register_env(
    EnvSpec(
        name="libero",
        suites=SUITES,
        num_tasks=num_tasks,
        num_init_states=num_init_states,
        default_max_steps=default_max_steps,
        action_dim=ACTION_DIM,
        observation=libero_observation,
        config_cls=LiberoConfig,
        make=make_libero_env,
        check_request=check_reset_request,
    )
)
