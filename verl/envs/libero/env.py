"""The LIBERO simulator behind the Env interface (runs inside an env worker process).

One LiberoEnv owns at most one MuJoCo simulator, kept across episodes of the same task and rebuilt
when a reset asks for another task. Episode protocol (OpenVLA-OFT's evaluation by default): reset,
set the fixed initial state, optionally perturb the objects, `num_steps_wait` dummy steps, then
policy steps until the goal predicate holds (success) or `max_steps`.

Memory: MuJoCo's asset cache is off, MuJoCo's copy of the last parsed XML model is freed once the
simulator is built, resets are soft (no model recompilation; the gripper's internal action state is
cleared instead), unused cameras are not built, a replaced simulator is collected before the next
one is built, and freed heap is returned to the OS after each reset and each chunk.
"""

from __future__ import annotations

import ctypes
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from verl.envs.base import OBS_IMAGES, OBS_INSTRUCTION, OBS_PRIVILEGED, OBS_PROPRIO, EnvResult, ResetRequest
from verl.envs.config import EnvConfig
from verl.envs.libero import suites
from verl.envs.libero.config import LiberoConfig
from verl.envs.libero.convert import (
    ACTION_DIM,
    DUMMY_ACTION,
    policy_to_libero_actions,
    proprio_from_obs,
    upright,
)

# LIBERO's camera names and the names observations carry them under.
AGENTVIEW, WRIST = "agentview", "robot0_eye_in_hand"
CAMERA_NAMES = {AGENTVIEW: "agentview", WRIST: "wrist"}


def cameras(cfg: EnvConfig, sim: LiberoConfig) -> list[str]:
    """LIBERO cameras rendered under `cfg`: the agent view, plus the wrist camera when asked for."""
    if cfg.render_mode == "none":
        return []
    return [AGENTVIEW] + ([WRIST] if sim.use_wrist_image else [])


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _free_last_xml() -> None:
    """Free the parsed XML model MuJoCo keeps from its last XML load (~230 MiB for a LIBERO scene:
    decoded meshes and textures), held only for `mj_saveLastXML`, which nothing here calls.
    The Python bindings do not expose `mj_freeLastXML`, so it is called from the library they load."""
    import mujoco

    for lib in sorted(Path(mujoco.__file__).parent.glob("libmujoco.so*")):
        try:
            ctypes.CDLL(str(lib)).mj_freeLastXML()
        except (OSError, AttributeError):
            continue
        return


@dataclass
class _Episode:
    request: ResetRequest
    max_steps: int
    steps: int = 0
    done: bool = False


class LiberoEnv:
    """A LIBERO simulator re-used across episodes and tasks; see verl.envs.base.Env."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.settings: LiberoConfig = cfg.sim
        self._env: Any = None  # libero ControlEnv / OffScreenRenderEnv
        self._gate: Any = None  # CameraGate, None without cameras
        self._task: tuple[str, int] | None = None
        self._instruction = ""
        self._episode: _Episode | None = None
        self._cameras = cameras(cfg, self.settings)

    # ----------------------------------------------------------------------------------------- build
    @property
    def loaded_task(self) -> tuple[str, int] | None:
        """(suite, task_id) of the simulator currently built, if any."""
        return self._task

    @property
    def sim_env(self) -> Any:
        """The underlying LIBERO wrapper (for privileged access, e.g. scripted experts and tests)."""
        return self._env

    def _build(self, suite: str, task_id: int) -> None:
        import mujoco
        from libero.libero.envs import OffScreenRenderEnv
        from libero.libero.envs.env_wrapper import ControlEnv

        from verl.envs.libero.rendering import CameraGate, shrink_render_buffers

        self._close_sim()
        mujoco.mj_setCacheCapacity(mujoco.mj_getCache(), 0)
        kwargs = dict(
            bddl_file_name=suites.bddl_file(suite, task_id),
            hard_reset=False,
            # The episode limit is tracked here; robosuite's own horizon would raise past it.
            ignore_done=True,
        )
        if self._cameras:
            size = self.settings.camera_size
            env = OffScreenRenderEnv(
                camera_names=self._cameras, camera_heights=size, camera_widths=size, **kwargs
            )
        else:
            env = ControlEnv(use_camera_obs=False, has_offscreen_renderer=False, **kwargs)
        _free_last_xml()
        if self._cameras:
            shrink_render_buffers(env.env.sim, self.settings.camera_size)
        self._env = env
        self._task = (suite, task_id)
        self._instruction = suites.task_language(suite, task_id)
        if self._cameras and self.cfg.render_mode == "chunk":
            self._gate = CameraGate(env.env, [f"{c}_image" for c in self._cameras])

    def _close_sim(self) -> None:
        self._episode = None
        self._gate = None
        self._task = None
        if self._env is not None:
            env, self._env = self._env, None
            env.close()
            # robosuite's objects hold reference cycles: collect the old simulator now, not after the
            # next one is built next to it.
            del env
            gc.collect()
            _malloc_trim()

    def close(self) -> None:
        self._close_sim()

    # ----------------------------------------------------------------------------------------- episode
    def _render_next(self, on: bool) -> None:
        """Whether the next step renders the cameras (only meaningful in "chunk" mode)."""
        if self._gate is not None:
            self._gate.set(on)

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

    def _observation(self, raw: dict[str, Any]) -> dict[str, Any]:
        images = {}
        for camera in self._cameras:
            image = raw.get(f"{camera}_image")
            images[CAMERA_NAMES[camera]] = None if image is None else upright(image)
        obs: dict[str, Any] = {
            OBS_IMAGES: images,
            OBS_PROPRIO: proprio_from_obs(raw),
            OBS_INSTRUCTION: self._instruction,
        }
        if self.settings.privileged_obs:
            from verl.envs.libero.privileged import privileged_state

            obs[OBS_PRIVILEGED] = privileged_state(self._env)
        return obs

    def reset(self, request: ResetRequest) -> EnvResult:
        suites.check_reset_request(request)
        if request.record_video and not self._cameras:
            raise ValueError(
                "record_video=True needs cameras; env.render_mode must be 'chunk' or 'every_step'"
            )
        if self._task != (request.suite, request.task_id):
            self._build(request.suite, request.task_id)
        env = self._env
        self._episode = None
        env.seed(request.seed)
        wait = self.settings.num_steps_wait
        self._render_next(wait == 0)  # with no wait steps the image comes from setting the state
        env.reset()
        # Soft resets keep the gripper's internal action state; clear it so episodes do not drift.
        for robot in env.env.robots:
            robot.gripper.current_action = np.zeros_like(robot.gripper.current_action)
        raw = env.set_init_state(suites.init_states(request.suite, request.task_id)[request.init_state_id])
        if self.settings.perturbation.enabled:
            from verl.envs.libero.perturb import perturb_objects

            perturb_objects(env, self.settings.perturbation, request.seed)
            raw = env.env._get_observations(force_update=True)
        for i in range(wait):
            self._render_next(i == wait - 1)
            raw, _, _, _ = env.step(DUMMY_ACTION)
        max_steps = self.cfg.max_steps or suites.default_max_steps(request.suite)
        self._episode = _Episode(request=request, max_steps=max_steps)
        obs = self._observation(raw)
        frames = [obs[OBS_IMAGES][CAMERA_NAMES[AGENTVIEW]]] if request.record_video else []
        _malloc_trim()
        return EnvResult(obs=obs, frames=frames, info=self._info())

    def _end(self, error: str) -> EnvResult:
        """Fail the current episode (if any) with `error`."""
        info = self._info() if self._episode is not None else {}
        if self._episode is not None:
            self._episode.done = True
        return EnvResult.failure(error, info=info)

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
        libero_actions = policy_to_libero_actions(actions)
        recording = ep.request.record_video
        frames: list[np.ndarray] = []
        success, steps, raw = False, 0, None
        for i, action in enumerate(libero_actions):
            last = i == len(libero_actions) - 1 or ep.steps + 1 >= ep.max_steps
            self._render_next(last or recording)
            raw, _, done, _ = self._env.step(action)
            ep.steps += 1
            steps += 1
            if recording:
                frames.append(upright(raw[f"{AGENTVIEW}_image"]))
            if done:
                success = True
                break
            if ep.steps >= ep.max_steps:
                break
        ep.done = success or ep.steps >= ep.max_steps
        obs = self._observation(raw)
        # Rendering leaves ~30 MiB of freed heap behind; returning it costs ~2 ms per chunk.
        _malloc_trim()
        return EnvResult(
            obs=obs, success=success, done=ep.done, steps=steps, frames=frames, info=self._info()
        )
