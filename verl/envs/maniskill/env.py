"""ManiSkill3 behind the Env interface (runs inside a simulator worker process).

One ManiskillEnv owns at most one ManiSkill task (CPU PhysX, one env per process, the SAPIEN CPU
renderer on Vulkan), kept across episodes of the same task and rebuilt when a reset asks for another.
Episode: `reset(seed=init_state_id)` (the seed is the initial state), then policy steps in
`pd_ee_delta_pose` until the task's own success flag holds or the task's step limit.

Rendering only at chunk boundaries: ManiSkill 3.0.1's `BaseEnv.step` is `_step_action` (control +
physics), the step counter, `get_info` (success), then `get_obs` (which renders every camera) and the
reward. Steps inside a chunk run the first three only; the chunk's last step is a full `step`, so its
images are ManiSkill's own (tests/envs/test_maniskill_env.py checks they equal every-step rendering).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from verl.envs.base import OBS_IMAGES, OBS_INSTRUCTION, OBS_PRIVILEGED, OBS_PROPRIO, EnvResult, ResetRequest
from verl.envs.config import EnvConfig
from verl.envs.maniskill import tasks
from verl.envs.maniskill.config import ManiskillConfig
from verl.envs.maniskill.convert import ACTION_DIM, CONTROL_MODE, policy_to_maniskill_actions, proprio

BASE_CAMERA, HAND_CAMERA = "base_camera", "hand_camera"


def cameras(cfg: EnvConfig, sim: ManiskillConfig) -> tuple[str, ...]:
    """Cameras in observations under `cfg`: the task's third-person camera, plus the hand camera."""
    if cfg.render_mode == "none":
        return ()
    return (BASE_CAMERA, HAND_CAMERA) if sim.use_hand_camera else (BASE_CAMERA,)


def robot_uid(task: tasks.Task, sim: ManiskillConfig) -> str:
    return "panda_wristcam" if sim.use_hand_camera else task.robot


def _numpy(x: Any) -> np.ndarray:
    """ManiSkill returns batched torch tensors (one env): first row as numpy."""
    return np.asarray(x.cpu().numpy() if hasattr(x, "cpu") else x)[0]


@dataclass
class _Episode:
    request: ResetRequest
    max_steps: int
    steps: int = 0
    done: bool = False


class ManiskillEnv:
    """A ManiSkill task re-used across episodes; see verl.envs.base.Env."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.settings: ManiskillConfig = cfg.sim
        self._cameras = cameras(cfg, self.settings)
        self._env: Any = None  # ManiSkill BaseEnv (unwrapped)
        self._task_id: int | None = None
        self._episode: _Episode | None = None

    @property
    def loaded_task(self) -> tuple[str, int] | None:
        return None if self._task_id is None else (tasks.SUITE, self._task_id)

    @property
    def sim_env(self) -> Any:
        """The ManiSkill env (for scripted experts and tests)."""
        return self._env

    def _build(self, task_id: int) -> None:
        import gymnasium as gym

        task = tasks.task(task_id)
        tasks.check_no_download(task.env_id)
        self._close_sim()
        size = self.settings.camera_size
        env = gym.make(
            task.env_id,
            num_envs=1,
            # "rgb" makes `step`/`get_obs` render the cameras; "state_dict" never renders.
            obs_mode="rgb" if self._cameras else "state_dict",
            control_mode=CONTROL_MODE,
            reward_mode="sparse",
            robot_uids=robot_uid(task, self.settings),
            sensor_configs=dict(width=size, height=size),
            sim_backend="physx_cpu",
            render_backend=self.settings.render_backend if self._cameras else "none",
        )
        self._env = env.unwrapped  # the step limit is ours; gym's TimeLimit wrapper is bypassed
        self._task_id = task_id

    def _close_sim(self) -> None:
        self._episode = None
        self._task_id = None
        if self._env is not None:
            env, self._env = self._env, None
            env.close()

    def close(self) -> None:
        self._close_sim()

    # ----------------------------------------------------------------------------------------- episode
    def _info(self) -> dict[str, Any]:
        ep = self._episode
        assert ep is not None
        return {
            "suite": ep.request.suite,
            "task_id": ep.request.task_id,
            "init_state_id": ep.request.init_state_id,
            "episode_steps": ep.steps,
            "max_steps": ep.max_steps,
        }

    def _observation(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        env = self._env
        images: dict[str, np.ndarray | None] = {}
        for camera in self._cameras:
            images[camera] = (
                None if raw is None else _numpy(raw["sensor_data"][camera]["rgb"]).astype(np.uint8)
            )
        tcp = env.agent.tcp.pose
        qpos = _numpy(env.agent.robot.get_qpos())
        obs: dict[str, Any] = {
            OBS_IMAGES: images,
            OBS_PROPRIO: proprio(_numpy(tcp.p), _numpy(tcp.q), qpos[-2:]),
            OBS_INSTRUCTION: tasks.task(self._task_id).instruction,
        }
        if self.settings.privileged_obs:
            obs[OBS_PRIVILEGED] = self.privileged_state()
        return obs

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Simulator state for scripted experts: "tcp_pos", "tcp_quat" (wxyz), "qpos", and
        "<actor>_pos"/"<actor>_quat" for every scene actor (e.g. "cube_pos", "goal_site_pos")."""
        env = self._env
        tcp = env.agent.tcp.pose
        state = {
            "tcp_pos": _numpy(tcp.p),
            "tcp_quat": _numpy(tcp.q),
            "qpos": _numpy(env.agent.robot.get_qpos()),
        }
        for name, actor in env.scene.actors.items():
            state[f"{name}_pos"] = _numpy(actor.pose.p)
            state[f"{name}_quat"] = _numpy(actor.pose.q)
        return state

    def reset(self, request: ResetRequest) -> EnvResult:
        tasks.check_reset_request(request)
        if request.record_video and not self._cameras:
            raise ValueError(
                "record_video=True needs cameras; env.render_mode must be 'chunk' or 'every_step'"
            )
        if self._task_id != request.task_id:
            self._build(request.task_id)
        self._episode = None
        raw, _ = self._env.reset(seed=int(request.init_state_id))
        max_steps = self.cfg.max_steps or tasks.task(request.task_id).max_steps
        self._episode = _Episode(request=request, max_steps=max_steps)
        obs = self._observation(raw if self._cameras else None)
        frames = [obs[OBS_IMAGES][BASE_CAMERA]] if request.record_video else []
        return EnvResult(obs=obs, frames=frames, info=self._info())

    def _end(self, error: str) -> EnvResult:
        info = self._info() if self._episode is not None else {}
        if self._episode is not None:
            self._episode.done = True
        return EnvResult.failure(error, info=info)

    def _physics_step(self, action: np.ndarray) -> dict[str, Any]:
        """`BaseEnv.step` without observation and reward: control + physics, step count, info."""
        env = self._env
        env._step_action(action)
        env._elapsed_steps += 1
        return env.get_info()

    def step_chunk(self, actions: np.ndarray) -> EnvResult:
        ep = self._episode
        if ep is None:
            return EnvResult.failure("no episode in progress: call reset first")
        if ep.done:
            return EnvResult.failure("the episode is over: call reset first", info=self._info())
        actions = np.asarray(actions)
        if actions.ndim != 2 or actions.shape[0] < 1 or actions.shape[1] != ACTION_DIM:
            return self._end(
                f"action chunk must have shape [k >= 1, {ACTION_DIM}], got {list(actions.shape)}"
            )
        if not np.issubdtype(actions.dtype, np.number) or not np.isfinite(actions).all():
            return self._end("non-finite action")
        recording = ep.request.record_video
        every_step = self.cfg.render_mode == "every_step" or recording
        frames: list[np.ndarray] = []
        success, steps, raw = False, 0, None
        for i, action in enumerate(policy_to_maniskill_actions(actions)):
            last = i == len(actions) - 1 or ep.steps + 1 >= ep.max_steps
            if self._cameras and (last or every_step):
                raw, _, _, _, info = self._env.step(action)
            else:
                raw, info = None, self._physics_step(action)
            ep.steps += 1
            steps += 1
            if recording:
                frames.append(_numpy(raw["sensor_data"][BASE_CAMERA]["rgb"]).astype(np.uint8))
            if bool(_numpy(info["success"]).item()):
                success = True
                break
            if ep.steps >= ep.max_steps:
                break
        if self._cameras and raw is None:  # stopped early on success inside the chunk: render now
            raw = self._env.get_obs(info)
        ep.done = success or ep.steps >= ep.max_steps
        return EnvResult(
            obs=self._observation(raw),
            success=success,
            done=ep.done,
            steps=steps,
            frames=frames,
            info=self._info(),
        )
