"""RoboTwin 2.0 (SAPIEN 3, dual-arm): RoboTwin's own task, step and success code in simulator workers
that run in their own venv (`.venv-robotwin`, scripts/setup_robotwin.sh).

Importing this package registers "robotwin2" with one suite per task (`robotwin2_<task>`); it imports
only numpy and the standard library, as does the worker side of verl/envs, so the same worker
protocol serves both venvs.
"""

from __future__ import annotations

from pathlib import Path

from verl.envs.base import Env
from verl.envs.config import EnvConfig
from verl.envs.registry import register_env
from verl.envs.robotwin.config import RobotwinConfig
from verl.envs.robotwin.tasks import (
    ENV_NAME,
    SUITES,
    check_reset_request,
    max_steps,
    num_init_states,
)
from verl.envs.spec import EnvSpec, ObservationSpec, WorkerRuntime

__all__ = ["ENV_NAME", "SUITES", "RobotwinConfig", "default_venv"]

ACTION_DIM = 14
PROPRIO_DIM = 14
REPO_ROOT = Path(__file__).resolve().parents[3]


def default_venv() -> Path:
    """Where scripts/setup_robotwin.sh builds the RoboTwin venv."""
    return REPO_ROOT / ".venv-robotwin"


def make_robotwin_env(cfg: EnvConfig) -> Env:
    from verl.envs.robotwin.env import RobotwinEnv

    return RobotwinEnv(cfg)


def robotwin_observation(cfg: EnvConfig) -> ObservationSpec:
    """The head camera (320 x 240, upright) and the 14-d joint targets [left 6 + gripper, right 6 + gripper]."""
    cameras = () if cfg.render_mode == "none" else ("head_camera",)
    return ObservationSpec(cameras=cameras, proprio_dim=PROPRIO_DIM)


def robotwin_runtime(cfg: EnvConfig) -> WorkerRuntime:
    """The RoboTwin venv's interpreter and its Vulkan driver settings (`<venv>/robotwin.env`)."""
    settings: RobotwinConfig = cfg.sim
    python = Path(settings.venv_python) if settings.venv_python else default_venv() / "bin" / "python"
    env: dict[str, str] = {}
    env_file = python.parent.parent / "robotwin.env"
    if env_file.is_file():
        for line in env_file.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip():
                env[key.strip()] = value.strip()
    if settings.assets_root:
        env["ROBOTWIN_ASSETS_ROOT"] = str(Path(settings.assets_root).expanduser().resolve())
    return WorkerRuntime(python=str(python), env=tuple(sorted(env.items())))


ROBOTWIN = register_env(
    EnvSpec(
        name=ENV_NAME,
        suites=SUITES,
        num_tasks=lambda suite: 1,
        num_init_states=lambda suite, task_id: num_init_states("simplevla"),
        default_max_steps=lambda suite: max_steps(suite, "simplevla"),
        action_dim=ACTION_DIM,
        observation=robotwin_observation,
        config_cls=RobotwinConfig,
        make=make_robotwin_env,
        check_request=check_reset_request,
        runtime=robotwin_runtime,
        config_max_steps=lambda cfg, suite: max_steps(suite, cfg.sim.protocol),
    )
)
