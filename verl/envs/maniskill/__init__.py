"""ManiSkill3 (PyPI `mani-skill` 3.0.1): single-Panda tabletop tasks that need no asset download,
on the CPU physics backend (one env per simulator worker) with SAPIEN's CPU (Vulkan) renderer.

Our own CPU-runnable benchmark: Panda with end-effector delta-pose control (7-d actions, LIBERO's
shape), a fixed English instruction per task, the task's success flag as reward, seeds as initial
states. Not a reproduction of RLinf's ManiSkill setup (WidowX Bridge scenes, GPU simulation).

Importing this package registers "maniskill" and imports no simulator.
"""

from __future__ import annotations

from verl.envs.base import Env
from verl.envs.config import EnvConfig
from verl.envs.maniskill.config import ManiskillConfig, maniskill_env_config
from verl.envs.maniskill.convert import ACTION_DIM, PROPRIO_DIM, action_statistics
from verl.envs.maniskill.tasks import (
    SUITE,
    SUITES,
    TASKS,
    check_reset_request,
    default_max_steps,
    num_init_states,
    num_tasks,
    task,
    task_id_of,
)
from verl.envs.registry import register_env
from verl.envs.spec import EnvSpec, ObservationSpec

__all__ = [
    "SUITE",
    "SUITES",
    "TASKS",
    "ManiskillConfig",
    "action_statistics",
    "maniskill_env_config",
    "task",
    "task_id_of",
]


def make_maniskill_env(cfg: EnvConfig) -> Env:
    from verl.envs.maniskill.env import ManiskillEnv

    return ManiskillEnv(cfg)


def maniskill_observation(cfg: EnvConfig) -> ObservationSpec:
    """The task's third-person camera ("base_camera"), the hand camera ("hand_camera") when
    env.maniskill.use_hand_camera, and the 8-d proprio (TCP position, TCP axis-angle, fingers)."""
    from verl.envs.maniskill.env import cameras

    return ObservationSpec(cameras=cameras(cfg, cfg.sim), proprio_dim=PROPRIO_DIM)


MANISKILL = register_env(
    EnvSpec(
        name="maniskill",
        suites=SUITES,
        num_tasks=num_tasks,
        num_init_states=num_init_states,
        default_max_steps=default_max_steps,
        action_dim=ACTION_DIM,
        observation=maniskill_observation,
        config_cls=ManiskillConfig,
        make=make_maniskill_env,
        check_request=check_reset_request,
    )
)
