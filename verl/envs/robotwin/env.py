"""RobotwinEnv: one RoboTwin 2.0 task environment per simulator worker, re-used across episodes.

Runs inside the RoboTwin venv (numpy 1, sapien 3.0.1, mplib 0.2.1; scripts/setup_robotwin.sh), started by
the pool with that interpreter. Each reset closes the previous episode's scene and calls the task's own
`setup_demo(seed)`; the renderer's one-off shader compile (15-20 s on lavapipe) happens once per process.
A step executes the whole [k, 14] chunk as one planned path with RoboTwin's own chunked
`gen_sparse_reward_data` (SimpleVLA-RL's semantics: TOPP per arm, gripper interpolation,
`check_success` after every physics step). A seed that cannot be set up or a missing asset raises an
error naming it; nothing retries.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np

from verl.envs.base import OBS_IMAGES, OBS_INSTRUCTION, OBS_PROPRIO, EnvResult, ResetRequest
from verl.envs.config import EnvConfig
from verl.envs.robotwin.config import RobotwinConfig, embodiment_parts
from verl.envs.robotwin.tasks import episode_seed, max_steps, task_of

ACTION_DIM = 14
PROPRIO_DIM = 14
HEAD_CAMERA = "head_camera"
# Files RoboTwin opens for every task, whatever its objects (the clutter index is read on first use).
COMMON_ASSET_FILES = ("assets/objects/objaverse/list.json", "assets/objects/same.json")


def assets_root(settings: RobotwinConfig) -> Path:
    root = settings.assets_root or os.environ.get("ROBOTWIN_ASSETS_ROOT")
    if not root:
        raise FileNotFoundError(
            "env.robotwin2.assets_root is unset and $ROBOTWIN_ASSETS_ROOT is empty; it must name the folder "
            "holding RoboTwin's assets/ (see SETUP.md)"
        )
    return Path(root).expanduser().resolve()


def _install_render_settings(settings: RobotwinConfig) -> None:
    """RoboTwin's setup_scene hard-codes the rt shader with shadowed point lights; apply our settings
    right after it, before the cameras are created."""
    import sapien
    from robotwin.envs._base_task import Base_Task

    original = getattr(Base_Task.setup_scene, "__wrapped__", Base_Task.setup_scene)

    def setup_scene(self, **kwargs):
        original(self, **kwargs)
        sapien.render.set_camera_shader_dir(settings.shader)
        if settings.shader == "rt" and settings.denoiser == "none":
            sapien.render.set_ray_tracing_denoiser("none")
        if not settings.point_light_shadows:
            for light in self.point_light_lst:
                light.disable_shadow()

    setup_scene.__wrapped__ = original
    Base_Task.setup_scene = setup_scene


class RobotwinEnv:
    """See `verl.envs.base.Env`."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.settings: RobotwinConfig = cfg.sim
        self.task = None
        self.request: ResetRequest | None = None
        self.max_steps = 0
        self.instruction = ""
        self.done = True
        self._args: dict | None = None
        self.seed = 0
        print(
            f"[robotwin2] shader={self.settings.shader} point_light_shadows={self.settings.point_light_shadows} "
            f"embodiment={self.settings.embodiment} task_config={self.settings.task_config} "
            f"protocol={self.settings.protocol} (shader, shadows and embodiment change the images)",
            file=sys.stderr,
            flush=True,
        )
        _install_render_settings(self.settings)

    # ------------------------------------------------------------------------------------ set-up args
    def _task_args(self) -> dict:
        """setup_demo's keyword arguments, built as RoboTwin's eval script builds them (once per process)."""
        if self._args is not None:
            return self._args
        import yaml
        from robotwin.config import load_task_config

        root = assets_root(self.settings)
        for rel in COMMON_ASSET_FILES:
            if not (root / rel).is_file():
                raise FileNotFoundError(f"RoboTwin asset missing: {root / rel}")
        os.environ["ROBOTWIN_ASSETS_ROOT"] = os.environ["ASSETS_PATH"] = str(root)
        args = load_task_config(self.settings.task_config)
        embodiment = embodiment_parts(self.settings.embodiment)
        files = load_task_config("_embodiment_config")

        def robot_dir(name: str) -> str:
            if name not in files:
                raise ValueError(f"env.robotwin2.embodiment: {name!r} unknown; allowed: {sorted(files)}")
            path = (root / files[name]["file_path"]).resolve()
            if not (path / "config.yml").is_file():
                raise FileNotFoundError(f"RoboTwin asset missing: {path / 'config.yml'}")
            return str(path)

        if len(embodiment) == 1:
            left = right = robot_dir(embodiment[0])
            args["dual_arm_embodied"] = True
        else:
            left, right = robot_dir(embodiment[0]), robot_dir(embodiment[1])
            args["embodiment_dis"] = embodiment[2]
            args["dual_arm_embodied"] = False
        args["left_robot_file"], args["right_robot_file"] = left, right
        for side, path in (("left", left), ("right", right)):
            with open(Path(path) / "config.yml", encoding="utf-8") as f:
                args[f"{side}_embodiment_config"] = yaml.safe_load(f)
        camera = load_task_config("_camera_config")[args["camera"]["head_camera_type"]]
        args["head_camera_h"], args["head_camera_w"] = camera["h"], camera["w"]
        args["camera"]["collect_wrist_camera"] = False
        args["data_type"].update(rgb=self.cfg.render_mode != "none", qpos=True, endpose=False)
        args.update(
            embodiment=embodiment,
            planner_backend="mplib",  # TOPP only; cuRobo (CUDA) plans expert paths, never used here
            eval_mode=True,
            render_freq=0,
            save_data=False,
            need_plan=False,
        )
        self._args = args
        return args

    # ------------------------------------------------------------------------------------ episode
    def _close_task(self) -> None:
        if self.task is not None:
            self.task.close_env(clear_cache=False)
            self.task = None

    def _obs(self) -> dict:
        raw = self.task.get_obs()
        images = {}
        if self.cfg.render_mode != "none":
            images[HEAD_CAMERA] = np.ascontiguousarray(raw["observation"][HEAD_CAMERA]["rgb"], dtype=np.uint8)
        return {
            OBS_IMAGES: images,
            OBS_PROPRIO: np.asarray(raw["joint_action"]["vector"], dtype=np.float32),
            OBS_INSTRUCTION: self.instruction,
        }

    def _info(self) -> dict:
        r = self.request
        return {
            "suite": r.suite,
            "task_id": r.task_id,
            "init_state_id": r.init_state_id,
            "episode_steps": int(self.task.take_action_cnt) if self.task is not None else 0,
            "max_steps": self.max_steps,
            "robotwin_seed": self.seed,
        }

    def _measured_qpos(self) -> np.ndarray:
        """[14] measured joint positions (the proprio holds drive targets), for diagnostics and tests."""
        robot = self.task.robot
        return np.asarray(
            robot.get_left_arm_real_jointState() + robot.get_right_arm_real_jointState(), np.float32
        )

    def reset(self, request: ResetRequest) -> EnvResult:
        from robotwin.description import generate_episode_descriptions

        task_name = task_of(request.suite)
        protocol = self.settings.protocol
        self.seed = episode_seed(request.init_state_id, protocol, self.settings.official_seed)
        args = self._task_args()
        self._close_task()
        self.request, self.done = request, True
        task = getattr(importlib.import_module(f"robotwin.envs.{task_name}"), task_name)()
        try:
            task.setup_demo(now_ep_num=self.seed, seed=self.seed, is_test=True, task_name=task_name, **args)
        except Exception as exc:
            task.close_env(clear_cache=False)
            raise RuntimeError(
                f"{task_name}: seed {self.seed} cannot be set up: {type(exc).__name__}: {exc}"
            ) from exc
        self.task = task
        self.max_steps = self.cfg.max_steps or max_steps(request.suite, protocol)
        task.step_lim = self.max_steps
        # The task's own description generator with the episode's seed, as SimpleVLA-RL calls it.
        descriptions = generate_episode_descriptions(task_name, [task.get_info()], 1, seed=self.seed)
        self.instruction = str(descriptions[0][self.settings.instruction_type][0])
        task.set_instruction(self.instruction)
        self.done = False
        obs = self._obs()
        frames = [obs[OBS_IMAGES][HEAD_CAMERA]] if request.record_video and obs[OBS_IMAGES] else []
        return EnvResult(obs=obs, frames=frames, info=self._info())

    def step_chunk(self, actions: np.ndarray) -> EnvResult:
        if self.task is None or self.done:
            return EnvResult.failure("no episode in progress: call reset first")
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or not np.isfinite(actions).all():
            self.done = True
            return EnvResult.failure(
                f"bad action chunk of shape {list(actions.shape)}: allowed a finite [k, {ACTION_DIM}]",
                info=self._info(),
            )
        _, _, _, infos = self.task.gen_sparse_reward_data(actions)
        success = bool(infos["success"])
        self.done = success or self.task.take_action_cnt >= self.max_steps
        obs = self._obs()
        frames = [obs[OBS_IMAGES][HEAD_CAMERA]] if self.request.record_video and obs[OBS_IMAGES] else []
        info = {**self._info(), "joint_qpos": self._measured_qpos()}
        return EnvResult(
            obs=obs, success=success, done=self.done, steps=len(actions), frames=frames, info=info
        )

    def close(self) -> None:
        try:
            self._close_task()
        finally:
            self.request = None
