"""A throwaway pure-Python simulator registered from outside `verl/`: a point moves in 3-d towards a
task's target. Two named cameras ("front", "side", 16 x 16 renders of the point), a 3-d proprio (the
point's position), its own config node (`env.toy.*`), seeded initial states.

It exists to show that a simulator is a package plus one registration: nothing in `verl/` names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from verl.envs import EnvConfig, EnvResult, EnvSpec, ObservationSpec, ResetRequest, register_env

SUITES = ("toy_reach",)
# Task id -> (target, instruction).
TASKS = {
    0: (np.array([0.5, 0.0, 0.0]), "move the point to the right"),
    1: (np.array([-0.5, 0.0, 0.0]), "move the point to the left"),
}
NUM_INIT_STATES = 8
ACTION_DIM = 3
CAMERAS = ("front", "side")


@dataclass
class ToyConfig:
    """`env.toy.*`."""

    # Distance to the target that counts as success.
    success_radius: float = 0.15
    # Largest move per step along each axis.
    max_step: float = 0.2
    # Render size of both cameras.
    image_size: int = 16

    def validate(self, prefix: str, env: Any) -> None:
        if self.success_radius <= 0:
            raise ValueError(f"{prefix}.success_radius={self.success_radius!r}; allowed: a number > 0")
        if self.image_size < 2:
            raise ValueError(f"{prefix}.image_size={self.image_size!r}; allowed: an integer >= 2")


def check_request(request: ResetRequest) -> None:
    if request.suite not in SUITES:
        raise ValueError(f"suite={request.suite!r}; allowed: {SUITES}")
    if request.task_id not in TASKS:
        raise ValueError(f"task_id={request.task_id!r}; allowed: {sorted(TASKS)}")
    if not 0 <= request.init_state_id < NUM_INIT_STATES:
        raise ValueError(f"init_state_id={request.init_state_id!r}; allowed: 0..{NUM_INIT_STATES - 1}")


def initial_position(init_state_id: int) -> np.ndarray:
    """Start positions spread around the origin, fixed per initial state."""
    angle = 2 * np.pi * init_state_id / NUM_INIT_STATES
    return np.array([0.1 * np.cos(angle), 0.3 * np.sin(angle), 0.0])


class ToyEnv:
    """See `verl.envs.base.Env`."""

    def __init__(self, cfg: EnvConfig):
        self.cfg = cfg
        self.settings: ToyConfig = cfg.sim
        self.pos = np.zeros(3)
        self.request: ResetRequest | None = None
        self.steps = 0
        self.done = True

    def _render(self, axis: int) -> np.ndarray:
        n = self.settings.image_size
        image = np.zeros((n, n, 3), dtype=np.uint8)
        col = int(np.clip((self.pos[0] + 1) / 2 * (n - 1), 0, n - 1))
        row = int(np.clip((self.pos[axis] + 1) / 2 * (n - 1), 0, n - 1))
        image[row, col] = (255, 128, 0)
        return image

    def _obs(self, render: bool) -> dict:
        render = render and self.cfg.render_mode != "none"
        images = {
            name: (self._render(axis) if render else None) for axis, name in ((1, "front"), (2, "side"))
        }
        if self.cfg.render_mode == "none":
            images = {}
        return {
            "images": images,
            "proprio": self.pos.astype(np.float32),
            "instruction": TASKS[self.request.task_id][1],
        }

    def _info(self) -> dict:
        r = self.request
        return {
            "suite": r.suite,
            "task_id": r.task_id,
            "init_state_id": r.init_state_id,
            "episode_steps": self.steps,
            "max_steps": self.max_steps,
        }

    def reset(self, request: ResetRequest) -> EnvResult:
        check_request(request)
        self.request = request
        self.pos = initial_position(request.init_state_id)
        self.steps, self.done = 0, False
        self.max_steps = self.cfg.max_steps or 10
        obs = self._obs(True)
        return EnvResult(
            obs=obs, frames=[obs["images"]["front"]] if request.record_video else [], info=self._info()
        )

    def step_chunk(self, actions: np.ndarray) -> EnvResult:
        if self.request is None or self.done:
            return EnvResult.failure("no episode in progress: call reset first")
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim != 2 or actions.shape[1] != ACTION_DIM or not np.isfinite(actions).all():
            self.done = True
            return EnvResult.failure(f"bad action chunk {list(actions.shape)}", info=self._info())
        target = TASKS[self.request.task_id][0]
        success, steps, frames = False, 0, []
        for action in actions:
            limit = self.settings.max_step
            self.pos = np.clip(self.pos + np.clip(action, -limit, limit), -1.0, 1.0)
            self.steps += 1
            steps += 1
            if self.request.record_video:
                frames.append(self._render(1))
            if np.linalg.norm(self.pos - target) < self.settings.success_radius:
                success = True
                break
            if self.steps >= self.max_steps:
                break
        self.done = success or self.steps >= self.max_steps
        return EnvResult(
            obs=self._obs(True),
            success=success,
            done=self.done,
            steps=steps,
            frames=frames,
            info=self._info(),
        )

    def close(self) -> None:
        self.request = None


def make_toy_env(cfg: EnvConfig) -> ToyEnv:
    return ToyEnv(cfg)


def toy_observation(cfg: EnvConfig) -> ObservationSpec:
    return ObservationSpec(cameras=() if cfg.render_mode == "none" else CAMERAS, proprio_dim=3)


register_env(
    EnvSpec(
        name="toy",
        suites=SUITES,
        num_tasks=lambda suite: len(TASKS),
        num_init_states=lambda suite, task_id: NUM_INIT_STATES,
        default_max_steps=lambda suite: 10,
        action_dim=ACTION_DIM,
        observation=toy_observation,
        config_cls=ToyConfig,
        make=make_toy_env,
        check_request=check_request,
    )
)
