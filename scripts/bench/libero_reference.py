"""LIBERO's own environment as the same-run reference for env_throughput, and the RSS-over-episodes run.

The direct rows step LIBERO's `OffScreenRenderEnv` / `ControlEnv` (built from the task's bddl file as
LIBERO's scripts do, with LIBERO's defaults: hard resets, full-size render buffers) in this process,
without the project's env, worker or pool. Rendering at chunk boundaries uses robosuite's public
observable API only: each camera's sensor is replaced (`modify_observable(name, "sensor", fn)`) by one
that renders on the last step of a chunk and repeats the previous image otherwise (installed again
after every reset, since LIBERO's default hard reset rebuilds the observables).

Every variant (direct, the project's in-process env, the pool with one worker) runs the same task,
initial states, seeds and actions, for the same number of steps; resets and wait steps are untimed.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psutil

from verl.envs import ResetRequest, make_env
from verl.envs.libero import init_states
from verl.envs.libero.config import LiberoConfig, libero_env_config
from verl.envs.libero.convert import DUMMY_ACTION, policy_to_libero_actions
from verl.envs.pool import EnvPool

# Env steps timed per variant in each render mode, in episodes of CHUNKS_PER_EPISODE chunks.
REFERENCE_STEPS = {"every_step": 96, "chunk": 240, "none": 960}
CHUNKS_PER_EPISODE = 6
MODE_FIELDS = {"none": "no_camera", "every_step": "render_every_step", "chunk": "render_at_chunk"}


def host() -> str:
    """The CPU model name (/proc/cpuinfo), to say which machine a figure comes from."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def _plan(mode: str, chunk: int, seed: int) -> list[tuple[int, list[np.ndarray]]]:
    """[(init state id, policy-convention action chunks [chunk, 7])] covering REFERENCE_STEPS[mode]."""
    rng = np.random.default_rng(seed)
    episodes = -(-REFERENCE_STEPS[mode] // (chunk * CHUNKS_PER_EPISODE))
    return [
        (
            e,
            [
                np.concatenate([rng.uniform(-0.5, 0.5, (chunk, 6)), rng.integers(0, 2, (chunk, 1))], axis=1)
                for _ in range(CHUNKS_PER_EPISODE)
            ],
        )
        for e in range(episodes)
    ]


class _SensorGate:
    """Camera sensors that render only while `on` (robosuite's public observable API)."""

    def __init__(self, robosuite_env: Any, observables: list[str]):
        self.on = True
        for name in observables:
            real = robosuite_env._observables[name]._sensor
            robosuite_env.modify_observable(name, "sensor", self._gated(real))

    def _gated(self, real: Callable) -> Callable:
        last: list[Any] = [None]

        def sensor(obs_cache: dict) -> Any:
            if self.on or last[0] is None:
                last[0] = real(obs_cache)
            return last[0]

        sensor.__modality__ = real.__modality__
        return sensor


def _direct(suite: str, mode: str, sim: LiberoConfig, plan: list, seed: int) -> tuple[float, int]:
    """(timed seconds, steps) of LIBERO's own env stepped in this process."""
    from libero.libero import benchmark
    from libero.libero.envs import OffScreenRenderEnv
    from libero.libero.envs.env_wrapper import ControlEnv

    with contextlib.redirect_stdout(io.StringIO()):
        task_suite = benchmark.get_benchmark_dict()[suite]()
    bddl = task_suite.get_task_bddl_file_path(0)
    states = task_suite.get_task_init_states(0)
    cameras = (
        [] if mode == "none" else ["agentview"] + (["robot0_eye_in_hand"] if sim.use_wrist_image else [])
    )
    if not cameras:
        env = ControlEnv(bddl_file_name=bddl, use_camera_obs=False, has_offscreen_renderer=False)
    else:
        size = sim.camera_size
        env = OffScreenRenderEnv(
            bddl_file_name=bddl, camera_names=cameras, camera_heights=size, camera_widths=size
        )
    elapsed, steps = 0.0, 0
    try:
        for init_id, chunks in plan:
            env.seed(seed)
            env.reset()
            # A hard reset (LIBERO's default) rebuilds the observables: install the gate after it.
            gate = _SensorGate(env.env, [f"{c}_image" for c in cameras]) if mode == "chunk" else None
            env.set_init_state(states[init_id])
            for _ in range(sim.num_steps_wait):
                env.step(DUMMY_ACTION)
            for actions in chunks:
                libero_actions = policy_to_libero_actions(actions)  # input data, converted untimed
                start = time.perf_counter()
                for i, action in enumerate(libero_actions):
                    if gate is not None:
                        gate.on = i == len(libero_actions) - 1
                    env.step(action)
                elapsed += time.perf_counter() - start
                steps += len(libero_actions)
    finally:
        env.close()
    return elapsed, steps


def _inprocess(suite: str, mode: str, plan: list, seed: int) -> tuple[float, int]:
    """(timed seconds, steps) of the project's LiberoEnv in this process."""
    env = make_env(libero_env_config(suite=suite, render_mode=mode))
    elapsed, steps = 0.0, 0
    try:
        for init_id, chunks in plan:
            env.reset(ResetRequest(suite, 0, init_id, seed=seed))
            for actions in chunks:
                start = time.perf_counter()
                result = env.step_chunk(actions)
                elapsed += time.perf_counter() - start
                steps += result.steps
    finally:
        env.close()
    return elapsed, steps


def _pool(suite: str, mode: str, plan: list, seed: int) -> tuple[float, int]:
    """(timed seconds, steps) of the EnvPool with one worker."""
    elapsed, steps = 0.0, 0
    with EnvPool(libero_env_config(suite=suite, render_mode=mode), num_workers=1) as pool:
        for init_id, chunks in plan:
            (first,) = pool.reset([(0, ResetRequest(suite, 0, init_id, seed=seed))])
            if first.failed:
                raise RuntimeError(first.error)
            for actions in chunks:
                start = time.perf_counter()
                (result,) = pool.step([(0, actions)])
                elapsed += time.perf_counter() - start
                if result.failed:
                    raise RuntimeError(result.error)
                steps += result.steps
    return elapsed, steps


def measure_reference(suite: str, chunk: int, seed: int, repeats: int = 3) -> dict:
    """Steps/s of direct LIBERO, the in-process env and the 1-worker pool in each render mode, and
    the same-run ratios: pool_overhead_vs_direct_<mode> = direct / pool - 1 (0.05 = the pool is 5%
    slower), chunk_render_fraction_of_no_camera = pool steps/s at chunk boundaries / without cameras.

    The three variants run in turn, `repeats` times over; each rate is the best of its repeats, so a
    burst of load from elsewhere during one variant's turn does not land on the ratios."""
    sim = LiberoConfig()
    line: dict[str, Any] = {
        "bench": "env_throughput_reference",
        "suite": suite,
        "task_id": 0,
        "chunk": chunk,
        "repeats": repeats,
    }
    rates: dict[tuple[str, str], float] = {}
    for mode in ("none", "chunk", "every_step"):
        plan = _plan(mode, chunk, seed)
        for _ in range(repeats):
            timed = {
                "direct": _direct(suite, mode, sim, plan, seed),
                "inprocess": _inprocess(suite, mode, plan, seed),
                "pool": _pool(suite, mode, plan, seed),
            }
            for variant, (elapsed, steps) in timed.items():
                rates[variant, mode] = max(rates.get((variant, mode), 0.0), steps / elapsed)
        for variant in ("direct", "inprocess", "pool"):
            line[f"{variant}_steps_per_s_{MODE_FIELDS[mode]}"] = round(rates[variant, mode], 2)
    for mode, name in MODE_FIELDS.items():
        line[f"inprocess_overhead_vs_direct_{name}"] = round(
            rates["direct", mode] / rates["inprocess", mode] - 1, 4
        )
        line[f"pool_overhead_vs_direct_{name}"] = round(rates["direct", mode] / rates["pool", mode] - 1, 4)
    line["chunk_render_fraction_of_no_camera"] = round(rates["pool", "chunk"] / rates["pool", "none"], 4)
    line["direct_chunk_render_fraction_of_no_camera"] = round(
        rates["direct", "chunk"] / rates["direct", "none"], 4
    )
    line["host"] = host()
    return line


def measure_rss(
    suite: str, chunk: int, episodes: int, tasks: int, chunks_per_episode: int, seed: int
) -> dict:
    """RSS of one pool worker with both cameras at the default size, after each of `episodes` episodes
    of `chunks_per_episode` chunks; episode e runs task e % tasks (every reset switches task)."""
    rng = np.random.default_rng(seed)
    cfg = libero_env_config(suite=suite, render_mode="chunk", use_wrist_image=True)
    rss: list[float] = []
    with EnvPool(cfg, num_workers=1) as pool:
        worker = psutil.Process(pool.worker_pids()[0])
        for e in range(episodes):
            task = e % tasks
            init_id = (e // tasks) % len(init_states(suite, task))
            (result,) = pool.reset([(0, ResetRequest(suite, task, init_id, seed=seed + e))])
            for _ in range(chunks_per_episode):
                if result.failed:
                    raise RuntimeError(result.error)
                actions = np.concatenate(
                    [rng.uniform(-0.5, 0.5, (chunk, 6)), rng.integers(0, 2, (chunk, 1))], axis=1
                )
                (result,) = pool.step([(0, actions)])
            rss.append(worker.memory_info().rss / 2**20)
    return {
        "bench": "env_rss",
        "suite": suite,
        "episodes": episodes,
        "tasks": tasks,
        "chunks_per_episode": chunks_per_episode,
        "cameras": ["agentview", "wrist"],
        "camera_size": cfg.sim.camera_size,
        f"rss_mib_after_{episodes}_episodes": round(rss[-1], 1),
        "rss_mib_max": round(max(rss), 1),
        "rss_mib_after_first_episode": round(rss[0], 1),
        "rss_growth_mib": round(rss[-1] - rss[0], 1),
        "host": host(),
    }
