"""Env throughput of the EnvPool (LIBERO or ManiSkill): rendering every step vs at chunk boundaries vs
no cameras.

Prints one JSON line per worker count, all three modes measured in the same run:
    {"bench": "env_throughput", "suite": ..., "workers": ..., "chunk": 8,
     "steps_per_s_render_every_step": ..., "steps_per_s_render_at_chunk": ...,
     "steps_per_s_no_camera": ..., "rss_mib_per_worker": ...}
steps/s counts env steps of all workers together per wall-clock second (resets excluded);
rss_mib_per_worker is the largest worker RSS after the chunk-rendering run.

For LIBERO, two more lines from the same run (scripts/bench/libero_reference.py; --no-reference skips
them): LIBERO's own env stepped directly, the project's env in this process and the pool with one
worker, on the same task, initial states and actions, with same-run ratios (machines differ by up
to ~4x in physics speed, so only these ratios compare across machines):
    {"bench": "env_throughput_reference", "suite": ..., "chunk": 8,
     "direct_steps_per_s_no_camera": ..., "inprocess_steps_per_s_no_camera": ...,
     "pool_steps_per_s_no_camera": ..., (same for render_every_step and render_at_chunk)
     "pool_overhead_vs_direct_no_camera": direct / pool - 1, (and per render mode)
     "chunk_render_fraction_of_no_camera": pool at chunk boundaries / pool without cameras, "host": ...}
and the RSS of one worker with both cameras at 256x256 after --rss-episodes short episodes cycling
through 5 tasks (every reset switches task):
    {"bench": "env_rss", "suite": ..., "rss_mib_after_50_episodes": ..., "rss_mib_max": ...,
     "rss_growth_mib": ..., "host": ...}

With `--env robotwin2` (RoboTwin 2.0 workers in .venv-robotwin; the test-only stand-in Piper unless
--assets-root names the official assets; raster shader, clean configuration), one line per worker count:
    {"bench": "env_throughput", "env": "robotwin2", "suite": ..., "workers": ..., "chunk": 25,
     "chunks_per_s": ..., "steps_per_s_render_at_chunk": ..., "rss_mib_per_worker": ...}
chunks_per_s counts 25 x 14 action chunks (one head-camera frame each) of all workers per second.

    MUJOCO_GL=egl python scripts/bench/env_throughput.py [--suite libero_object] [--workers 1 2]
    python scripts/bench/env_throughput.py --env robotwin2 [--suite robotwin2_stack_blocks_two]
    python scripts/bench/env_throughput.py --env maniskill [--workers 1 2]

Worker w runs task w of the suite (ManiSkill: PickCube, PushCube), from random initial states.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import psutil

from verl.envs import EnvConfig, ResetRequest
from verl.envs.pool import EnvPool
from verl.envs.registry import get_env_spec

# Env steps measured per worker in each mode (slow modes get fewer).
STEPS_PER_WORKER = {"every_step": 96, "chunk": 240, "none": 480}


def _chunk(rng: np.random.Generator, k: int) -> np.ndarray:
    """Random policy-convention actions [k, 7]: small motions, gripper open or closed."""
    return np.concatenate([rng.uniform(-0.5, 0.5, (k, 6)), rng.integers(0, 2, (k, 1))], axis=1)


def measure(env: str, suite: str, workers: int, chunk: int, mode: str, seed: int) -> tuple[float, float]:
    """(env steps per second over all workers, largest worker RSS in MiB) for one render mode."""
    rng = np.random.default_rng(seed)
    cfg = EnvConfig(name=env, suite=suite, render_mode=mode)
    spec = get_env_spec(env)
    with EnvPool(cfg, num_workers=workers) as pool:

        def reset(ids: list[int]) -> None:
            requests = [
                (
                    w,
                    ResetRequest(
                        suite, w, int(rng.integers(min(50, spec.num_init_states(suite, w)))), seed=seed
                    ),
                )
                for w in ids
            ]
            for result in pool.reset(requests):
                if result.failed:
                    raise RuntimeError(result.error)

        reset(list(range(workers)))
        pool.step([(w, _chunk(rng, chunk)) for w in range(workers)])  # warm-up
        total_steps, elapsed = 0, 0.0
        while total_steps < STEPS_PER_WORKER[mode] * workers:
            start = time.perf_counter()
            results = pool.step([(w, _chunk(rng, chunk)) for w in range(workers)])
            elapsed += time.perf_counter() - start
            for result in results:
                if result.failed:
                    raise RuntimeError(result.error)
            total_steps += sum(r.steps for r in results)
            finished = [w for w, r in enumerate(results) if r.done]
            if finished:
                reset(finished)
        rss = max(psutil.Process(pid).memory_info().rss for pid in pool.worker_pids()) / 2**20
    return total_steps / elapsed, rss


ROBOTWIN_CHUNKS_PER_WORKER = 16
STANDIN_ASSETS = Path(__file__).resolve().parents[2] / "tests" / "envs" / "robotwin_standin"


def measure_robotwin(
    suite: str, workers: int, chunk: int, seed: int, assets_root: str, shadows: bool
) -> dict:
    """Chunks/s and env steps/s over all workers, and the largest worker RSS, for RoboTwin 2.0."""
    from verl.envs.robotwin import RobotwinConfig

    rng = np.random.default_rng(seed)
    settings = RobotwinConfig(assets_root=assets_root, shader="default", point_light_shadows=shadows)
    cfg = EnvConfig(
        name="robotwin2", sims={"robotwin2": settings}, reset_timeout_s=300.0, step_timeout_s=120.0
    )
    with EnvPool(cfg, num_workers=workers) as pool:
        starts: dict[int, np.ndarray] = {}

        def reset(ids: list[int]) -> None:
            requests = [(w, ResetRequest(suite, 0, int(rng.integers(1000)))) for w in ids]
            for (w, _), result in zip(requests, pool.reset(requests)):
                if result.failed:
                    raise RuntimeError(result.error)
                starts[w] = result.obs["proprio"].astype(np.float64)

        def actions(w: int) -> np.ndarray:  # small joint moves around the start pose, grippers as they are
            moves = rng.uniform(-0.05, 0.05, (chunk, 14))
            moves[:, [6, 13]] = 0.0
            return starts[w] + np.cumsum(moves, axis=0)

        reset(list(range(workers)))
        pool.step([(w, actions(w)) for w in range(workers)])  # warm-up
        chunks, steps, elapsed = 0, 0, 0.0
        while chunks < ROBOTWIN_CHUNKS_PER_WORKER * workers:
            start = time.perf_counter()
            results = pool.step([(w, actions(w)) for w in range(workers)])
            elapsed += time.perf_counter() - start
            for result in results:
                if result.failed:
                    raise RuntimeError(result.error)
            chunks += len(results)
            steps += sum(r.steps for r in results)
            finished = [w for w, r in enumerate(results) if r.done]
            if finished:
                reset(finished)
        rss = max(psutil.Process(pid).memory_info().rss for pid in pool.worker_pids()) / 2**20
    return {
        "chunks_per_s": round(chunks / elapsed, 3),
        "steps_per_s_render_at_chunk": round(steps / elapsed, 2),
        "rss_mib_per_worker": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="libero", help="registered simulator name")
    parser.add_argument(
        "--suite",
        default=None,
        help="default: libero_object for LIBERO, robotwin2_stack_blocks_two, else the first suite",
    )
    parser.add_argument("--assets-root", default=str(STANDIN_ASSETS), help="RoboTwin assets (robotwin2 only)")
    parser.add_argument(
        "--point-light-shadows", action="store_true", help="RoboTwin's shadows (robotwin2 only)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunk", type=int, default=None, help="default: 8 (LIBERO) / 25 (RoboTwin)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-reference", action="store_true", help="LIBERO: skip the direct-LIBERO reference and RSS lines"
    )
    parser.add_argument("--rss-episodes", type=int, default=50, help="LIBERO: episodes of the RSS line")
    parser.add_argument(
        "--reference-repeats", type=int, default=3, help="LIBERO: passes of the reference rows (best of)"
    )
    args = parser.parse_args()
    if args.env == "robotwin2":
        suite, chunk = args.suite or "robotwin2_stack_blocks_two", args.chunk or 25
        for workers in args.workers:
            figures = measure_robotwin(
                suite, workers, chunk, args.seed, args.assets_root, args.point_light_shadows
            )
            line = {"bench": "env_throughput", "env": "robotwin2", "suite": suite, "workers": workers}
            print(json.dumps({**line, "chunk": chunk, **figures}), flush=True)
        return
    args.chunk = args.chunk or 8
    suite = args.suite or ("libero_object" if args.env == "libero" else get_env_spec(args.env).suites[0])
    for workers in args.workers:
        every, _ = measure(args.env, suite, workers, args.chunk, "every_step", args.seed)
        at_chunk, rss = measure(args.env, suite, workers, args.chunk, "chunk", args.seed)
        no_camera, _ = measure(args.env, suite, workers, args.chunk, "none", args.seed)
        line = {
            "bench": "env_throughput",
            "env": args.env,
            "suite": suite,
            "workers": workers,
            "chunk": args.chunk,
            "steps_per_s_render_every_step": round(every, 2),
            "steps_per_s_render_at_chunk": round(at_chunk, 2),
            "steps_per_s_no_camera": round(no_camera, 2),
            "rss_mib_per_worker": round(rss, 1),
        }
        print(json.dumps(line), flush=True)
    if args.env == "libero" and not args.no_reference:
        from libero_reference import measure_reference, measure_rss  # scripts/bench/, next to this file

        print(json.dumps(measure_reference(suite, args.chunk, args.seed, args.reference_repeats)), flush=True)
        rss = measure_rss(suite, args.chunk, args.rss_episodes, 5, 3, args.seed)
        print(json.dumps(rss), flush=True)


if __name__ == "__main__":
    main()
