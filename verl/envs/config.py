"""The `env.*` config group: which simulator, the episode protocol, rendering and the worker pool.

A plain dataclass of primitives and nested dataclasses so that Hydra/OmegaConf can use it as a
structured config. Defaults reproduce the official OpenVLA-OFT LIBERO evaluation protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

# How cameras are rendered. "chunk": only at the end of each action chunk (and every step for an
# episode recording video); "every_step": every control step (the reference behaviour, slow);
# "none": no cameras at all (physics only; observations carry no images).
RENDER_MODES = ("chunk", "every_step", "none")


@dataclass
class PerturbationConfig:
    """Seeded noise on the initial poses of the movable objects, applied after the init state is set.

    Off when both sizes are 0. The offsets are drawn uniformly in [-size, size] from the reset
    request's seed, so the same (init state, seed) always gives the same scene.
    """

    # Half-width of the uniform x/y offset of every movable object, in metres (z is never changed).
    pos_noise_m: float = 0.0
    # Half-width of the uniform rotation about the world z axis, in radians.
    yaw_noise_rad: float = 0.0
    # Samples tried per object before it is left at its original pose, when a sample would make the
    # object interpenetrate its neighbours more than `penetration_tol_m` beyond the original state.
    max_tries: int = 20
    # Extra penetration depth (metres) tolerated relative to the unperturbed scene.
    penetration_tol_m: float = 0.002

    @property
    def enabled(self) -> bool:
        return self.pos_noise_m > 0.0 or self.yaw_noise_rad > 0.0


@dataclass
class EnvConfig:
    """Environment, episode protocol and worker pool settings (the `env.*` group)."""

    # Registered simulator name (see verl.envs.registry.available_envs()).
    name: str = "libero"
    # Default suite of env-level tools (benchmarks, demo collection, SFT evaluation); one of the
    # simulator's suites (LIBERO: libero_spatial, libero_object, libero_goal, libero_10, libero_90).
    # Reset requests name their own suite: the GRPO trainer takes suites from data.task_suite_name.
    suite: str = "libero_spatial"
    # Policy steps per episode after the wait steps; None = the suite's OpenVLA-OFT default
    # (spatial 220, object 280, goal 300, libero_10 520, libero_90 400). SimpleVLA-RL uses 512.
    max_steps: Optional[int] = None
    # Steps with the dummy action (zero motion, gripper open) after reset, letting objects settle;
    # they do not count toward max_steps.
    num_steps_wait: int = 10
    # Height and width of every camera image, in pixels.
    camera_size: int = 256
    # Also render the wrist camera (obs["wrist_image"]); when False the wrist camera is not built.
    use_wrist_image: bool = False
    # One of RENDER_MODES.
    render_mode: str = "chunk"
    # Add obs["privileged"] (simulator state for scripted experts; see verl.envs.libero.privileged).
    privileged_obs: bool = False
    # Seeded initial-pose perturbation of the movable objects (generalisation tests).
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)
    # Simulator worker processes per rollout worker (one simulator each).
    num_workers: int = 2
    # Groups the workers form in a rollout: the policy computes one group's next action chunks while
    # the other groups' simulators step (1 = all in lockstep). Meant for GPU nodes; on CPU more
    # simulators than cores already hide the policy's time (scripts/bench/rollout_throughput.py).
    pipeline_stages: int = 1
    # Seconds one `step` call (one action chunk) may take before its worker is killed and restarted
    # and its episode reported as failed.
    step_timeout_s: float = 60.0
    # Seconds one `reset` call may take (it may build a new simulator when the task changes).
    reset_timeout_s: float = 180.0
    # Frame rate of saved rollout videos.
    video_fps: int = 30
    # Base seed from which the rollout derives the per-episode seeds of its reset requests.
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the offending field and its allowed values."""
        from verl.envs.registry import available_envs, get_env_spec

        if self.name not in available_envs():
            raise ValueError(f"env.name={self.name!r} is not registered; available: {available_envs()}")
        suites = get_env_spec(self.name).suites
        if self.suite not in suites:
            raise ValueError(f"env.suite={self.suite!r} is unknown for env {self.name!r}; allowed: {suites}")
        if self.render_mode not in RENDER_MODES:
            raise ValueError(f"env.render_mode={self.render_mode!r}; allowed: {RENDER_MODES}")
        _positive("max_steps", self.max_steps, allow_none=True)
        _non_negative("num_steps_wait", self.num_steps_wait)
        _positive("camera_size", self.camera_size)
        _positive("num_workers", self.num_workers)
        _positive("pipeline_stages", self.pipeline_stages)
        if self.pipeline_stages > self.num_workers:
            raise ValueError(
                f"env.pipeline_stages={self.pipeline_stages}: allowed 1..env.num_workers ({self.num_workers})"
            )
        _positive("step_timeout_s", self.step_timeout_s)
        _positive("reset_timeout_s", self.reset_timeout_s)
        _positive("video_fps", self.video_fps)
        _non_negative("perturbation.pos_noise_m", self.perturbation.pos_noise_m)
        _non_negative("perturbation.yaw_noise_rad", self.perturbation.yaw_noise_rad)
        _positive("perturbation.max_tries", self.perturbation.max_tries)
        _non_negative("perturbation.penetration_tol_m", self.perturbation.penetration_tol_m)
        if self.render_mode == "none" and self.use_wrist_image:
            raise ValueError(
                "env.use_wrist_image=True needs cameras; env.render_mode must be 'chunk' or 'every_step'"
            )


def _positive(name: str, value: float | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        allowed = "a number > 0" + (" or null" if allow_none else "")
        raise ValueError(f"env.{name}={value!r}; allowed: {allowed}")


def _non_negative(name: str, value: float) -> None:
    if value < 0:
        raise ValueError(f"env.{name}={value!r}; allowed: a number >= 0")
