"""The `env.*` config group: which simulator, the settings every simulator shares, and each
simulator's own settings.

Shared settings (the worker pool, timeouts, rendering, pipelining, seeds, videos, the step limit) are
fields here. A simulator's own settings are a dataclass of its package (`EnvSpec.config_cls`), given on
the command line as `env.<name>.<field>` and held in `sims[<name>]`; `cfg.sim` is the active one's.
Plain dataclasses of primitives, so Hydra/OmegaConf can use them as structured configs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

# How cameras are rendered. "chunk": only at the end of each action chunk (and every step for an
# episode recording video); "every_step": every control step (the reference behaviour, slow);
# "none": no cameras at all (physics only; observations carry no images).
RENDER_MODES = ("chunk", "every_step", "none")


@dataclass
class EnvConfig:
    """Simulator choice, episode limits and worker pool settings shared by every simulator (`env.*`)."""

    # Registered simulator name (see verl.envs.registry.available_envs()).
    name: str = "libero"
    # Default suite of env-level tools (benchmarks, demo collection, SFT evaluation); one of the
    # simulator's suites, None = its first. Reset requests name their own suite: the GRPO trainer
    # takes suites from data.task_suite_name.
    suite: Optional[str] = None
    # Policy steps per episode (after any settling steps); None = the simulator's per-suite default
    # (LIBERO: OpenVLA-OFT's spatial 220, object 280, goal 300, libero_10 520, libero_90 400).
    # SimpleVLA-RL uses 512.
    max_steps: Optional[int] = None
    # One of RENDER_MODES.
    render_mode: str = "chunk"
    # Simulator worker processes per rollout worker (one simulator each).
    num_workers: int = 2
    # Groups the workers form in a rollout: the policy computes one group's next action chunks while
    # the other groups' simulators step (1 = all in lockstep). 0 = no fixed groups: each policy call
    # takes every simulator whose chunk has finished, so none waits for slower group-mates. Meant
    # for GPU nodes, where the policy's forward leaves the CPU to the simulators
    # (scripts/bench/rollout_overlap.py measures each setting against the simulators' own limit).
    pipeline_stages: int = 1
    # Start every episode in a new simulator process (the old one exits first). Slow: each episode
    # then pays the interpreter's start-up, the imports and the simulator's build. It reproduces how
    # SimpleVLA-RL runs its simulators (a new process per environment for every batch of prompts),
    # for comparisons (scripts/bench/rollout_overlap.py); a training run has no reason to set it.
    fresh_simulator_per_episode: bool = False
    # Seconds one `step` call (one action chunk) may take before its worker is killed and restarted
    # and its episode reported as failed.
    step_timeout_s: float = 60.0
    # Seconds one `reset` call may take (it may build a new simulator when the task changes).
    reset_timeout_s: float = 180.0
    # Frame rate of saved rollout videos.
    video_fps: int = 30
    # Interpreter of the simulator worker processes; None = the simulator's choice (its spec's
    # runtime, e.g. RoboTwin's own venv), else the pool's interpreter. It needs numpy and nothing else
    # of the project's stack: the repository is put on its path.
    worker_python: Optional[str] = None
    # Base seed from which the rollout derives the per-episode seeds of its reset requests.
    seed: int = 0
    # Each simulator's own settings by simulator name (`env.<name>.*`); a missing entry means the
    # simulator's defaults. Filled from the command line by the config schema.
    sims: dict[str, Any] = field(default_factory=dict)

    @property
    def sim(self) -> Any:
        """The settings of the simulator named by `name` (its spec's `config_cls`)."""
        if self.name not in self.sims:
            from verl.envs.registry import get_env_spec

            self.sims[self.name] = get_env_spec(self.name).default_config()
        return self.sims[self.name]

    @property
    def default_suite(self) -> str:
        """`suite`, or the simulator's first suite."""
        if self.suite is not None:
            return self.suite
        from verl.envs.registry import get_env_spec

        return get_env_spec(self.name).suites[0]

    def validate(self) -> None:
        """Raise ValueError naming the offending field and its allowed values."""
        from verl.envs.registry import available_envs, get_env_spec

        if self.name not in available_envs():
            raise ValueError(f"env.name={self.name!r} is not registered; available: {available_envs()}")
        spec = get_env_spec(self.name)
        if self.suite is not None and self.suite not in spec.suites:
            raise ValueError(
                f"env.suite={self.suite!r} is unknown for env {self.name!r}; allowed: {spec.suites}"
            )
        if self.render_mode not in RENDER_MODES:
            raise ValueError(f"env.render_mode={self.render_mode!r}; allowed: {RENDER_MODES}")
        positive("env.max_steps", self.max_steps, allow_none=True)
        positive("env.num_workers", self.num_workers)
        if not 0 <= self.pipeline_stages <= self.num_workers:
            raise ValueError(
                f"env.pipeline_stages={self.pipeline_stages}: allowed 0..env.num_workers ({self.num_workers}); "
                "0 = no fixed groups"
            )
        positive("env.step_timeout_s", self.step_timeout_s)
        positive("env.reset_timeout_s", self.reset_timeout_s)
        positive("env.video_fps", self.video_fps)
        unknown = sorted(set(self.sims) - set(available_envs()))
        if unknown:
            raise ValueError(f"env.{unknown[0]}: no simulator of that name; available: {available_envs()}")
        sim = self.sim
        if not isinstance(sim, spec.config_cls):
            raise ValueError(
                f"env.{self.name} must be a {spec.config_cls.__name__}, got {type(sim).__name__}"
            )
        if hasattr(sim, "validate"):
            sim.validate(f"env.{self.name}", self)


def positive(name: str, value: float | None, allow_none: bool = False) -> None:
    """Raise ValueError unless `value` > 0 (or None when allowed); `name` is the full key."""
    if value is None and allow_none:
        return
    if value is None or value <= 0:
        allowed = "a number > 0" + (" or null" if allow_none else "")
        raise ValueError(f"{name}={value!r}; allowed: {allowed}")


def non_negative(name: str, value: float) -> None:
    """Raise ValueError unless `value` >= 0; `name` is the full key."""
    if value < 0:
        raise ValueError(f"{name}={value!r}; allowed: a number >= 0")
