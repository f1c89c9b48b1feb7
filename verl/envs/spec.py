"""`EnvSpec`: everything the trainer, the prompt sampler, the rollout and the tools know about a simulator.

A simulator is a package that builds one `EnvSpec` and registers it (`verl.envs.registry.register_env`).
Nothing outside that package names the simulator: task counts, initial states, step limits, action size,
cameras and proprio size are read from the spec, and its own settings live in its own config node
(`env.<name>.*`, the spec's `config_cls`), validated by its own code.

Everything here is cheap: a spec never imports the simulator; `make` does, inside a simulator worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from verl.envs.base import Env, ResetRequest

# An `EnvConfig` (verl.envs.config), typed `Any` here: the config module reaches the specs through
# the registry, so the spec module must not import it back.
EnvConfig = Any


@dataclass(frozen=True)
class ObservationSpec:
    """What an env's observations carry under a given config (see verl.envs.base).

    cameras: names of obs["images"], in order; the first is the primary (third-person) camera, the
        one saved in videos. Empty when the env renders nothing.
    proprio_dim: length of obs["proprio"]; 0 when the env has none.
    """

    cameras: tuple[str, ...]
    proprio_dim: int


@dataclass(frozen=True)
class WorkerRuntime:
    """The interpreter a simulator's workers run in and what they add to the environment.

    python: interpreter path (a simulator with its own venv, e.g. RoboTwin's numpy-1 stack); None =
        the pool's own interpreter. The worker side of verl/envs imports only numpy and the standard
        library, so any interpreter with numpy and the repository on its path serves.
    env: variables set in the worker's environment (e.g. the Vulkan driver of a renderer).
    """

    python: str | None = None
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class EnvSpec:
    """One simulator, as the framework sees it without building it.

    name: registry key, the value of `env.name`.
    suites: task suites (benchmarks) it serves; a reset request names one of them.
    num_tasks(suite), num_init_states(suite, task_id): the prompt space (fixed initial states, or seeds
        that act as initial states).
    default_max_steps(suite): policy steps per episode when `env.max_steps` is unset.
    action_dim: width of one action row in the policy convention.
    observation(cfg): the cameras and proprio size the env produces under `cfg` (cheap).
    config_cls: dataclass of the simulator's own settings (`env.<name>.*`); it may define
        `validate(self, prefix: str)` raising ValueError that names the field.
    make(cfg): build the env in the calling process (a simulator worker); imports the simulator.
    check_request(request): raise ValueError naming the field and allowed values for a request the
        simulator cannot serve (checked before anything is sent to a worker).
    config_max_steps(cfg, suite): the default step limit when it depends on the simulator's own settings
        (e.g. RoboTwin's protocol); None = `default_max_steps`.
    runtime(cfg): the interpreter and environment of its workers (default: the pool's interpreter);
        `env.worker_python` overrides the interpreter.
    """

    name: str
    suites: tuple[str, ...]
    num_tasks: Callable[[str], int]
    num_init_states: Callable[[str, int], int]
    default_max_steps: Callable[[str], int]
    action_dim: int
    observation: Callable[[EnvConfig], ObservationSpec]
    config_cls: type
    make: Callable[[EnvConfig], Env]
    check_request: Callable[[ResetRequest], None]
    runtime: Callable[[EnvConfig], WorkerRuntime] | None = None
    config_max_steps: Callable[[EnvConfig, str], int] | None = None

    @property
    def module(self) -> str:
        """The module whose import registers this spec (a simulator worker imports it by name)."""
        return self.make.__module__

    def default_config(self) -> Any:
        return self.config_cls()

    def worker_runtime(self, cfg: EnvConfig) -> WorkerRuntime:
        """The spec's runtime for `cfg`, with `env.worker_python` taking precedence when set."""
        runtime = self.runtime(cfg) if self.runtime is not None else WorkerRuntime()
        if cfg.worker_python:
            runtime = WorkerRuntime(python=cfg.worker_python, env=runtime.env)
        return runtime
