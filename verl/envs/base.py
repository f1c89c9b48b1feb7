"""The environment interface: reset to a task and initial state, step an action chunk, close.

Observation dict (plain numpy, produced by every env, consumed by the policy):
    "images":       {camera name: uint8 [H, W, 3] upright, or None when the call did not render}, one
                    entry per camera of the env's `ObservationSpec`, in its order (the first is the
                    primary camera); empty without cameras
    "proprio":      float32 [p] robot state, p = the spec's proprio_dim (absent when p = 0)
    "instruction":  str, the task's language instruction
    "privileged":   dict of numpy arrays, simulator state for scripted experts (when the simulator's
                    config asks for it)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

# Observation keys, shared by envs, policies and the rollout.
OBS_IMAGES = "images"
OBS_PROPRIO = "proprio"
OBS_INSTRUCTION = "instruction"
OBS_PRIVILEGED = "privileged"


@dataclass
class ResetRequest:
    """Start an episode of `task_id` in `suite` from the task's fixed initial state `init_state_id`."""

    suite: str
    task_id: int
    init_state_id: int
    # Seeds the simulator and the optional initial-pose perturbation.
    seed: int = 0
    # Render every step of this episode and return the frames (EnvResult.frames).
    record_video: bool = False


@dataclass
class EnvResult:
    """Outcome of one reset or step call for one environment.

    obs: the observation after the call (None when the call failed before producing one).
    success: the task's goal predicate held after a step (the simulator's own success check).
    done: the episode is over (success, step limit, or failure); the next call must be a reset.
    steps: policy steps executed by this call (0 for a reset).
    failed: the episode ended because of an error (bad input, simulator error, crashed or hung worker).
    error: why it failed.
    frames: upright primary-camera frames rendered during this call, for episodes recording video.
    info: episode bookkeeping: "episode_steps", "max_steps", "suite", "task_id", "init_state_id".
        A simulator may add its own entries.
    """

    obs: dict[str, Any] | None
    success: bool = False
    done: bool = False
    steps: int = 0
    failed: bool = False
    error: str | None = None
    frames: list[np.ndarray] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def failure(cls, error: str, steps: int = 0, info: dict[str, Any] | None = None) -> EnvResult:
        """A finished, failed episode with the reason."""
        return cls(obs=None, success=False, done=True, steps=steps, failed=True, error=error, info=info or {})


class Env(Protocol):
    """One simulator instance, re-used across episodes and tasks.

    The env tracks its episode: step_chunk stops early on success or at the step limit and sets done.
    Bad input ends the episode with `failed=True` and a reason rather than raising.
    """

    def reset(self, request: ResetRequest) -> EnvResult:
        """Load the task (building a simulator only when the task changes), set the initial state,
        run the wait steps and return the first observation."""
        ...

    def step_chunk(self, actions: np.ndarray) -> EnvResult:
        """Execute actions [k, action_dim] (policy convention) open-loop; images only for the last."""
        ...

    def close(self) -> None:
        """Release the simulator and its rendering context."""
        ...
