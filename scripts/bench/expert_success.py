"""Success rate of the scripted pick-and-place expert, run through the env pool like a policy.

Prints a per-task table and one JSON line per task:
    {"bench": "expert", "suite": ..., "task_id": ..., "successes": ..., "trials": ..., ...}

    python scripts/bench/expert_success.py --suite libero_spatial --tasks 0-9 --init-states 0-49 --workers 2
    python scripts/bench/expert_success.py --env maniskill --tasks 0-3 --init-states 0-49
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="libero", choices=("libero", "maniskill"))
    parser.add_argument("--suite", default="libero_object", help="libero_object or libero_spatial")
    parser.add_argument("--tasks", default="0-9", help="task ids, e.g. 0,1,2 or 0-9")
    parser.add_argument("--init-states", default="0-49", help="initial-state ids, e.g. 0-49")
    parser.add_argument("--workers", type=int, default=2, help="simulator processes")
    parser.add_argument("--chunk", type=int, default=1, help="actions per step call (8 = open loop as in RL)")
    parser.add_argument("--max-steps", type=int, default=None, help="default: the suite's OFT limit")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.env == "maniskill":
        maniskill_main(args)
        return

    from tqdm import tqdm

    from verl.envs.libero.config import libero_env_config
    from verl.envs.libero.expert_rollout import ExpertJob, parse_ids, run_expert
    from verl.envs.pool import EnvPool

    cfg = libero_env_config(
        suite=args.suite,
        max_steps=args.max_steps,
        render_mode="none",
        privileged_obs=True,
        num_workers=args.workers,
    )
    jobs = [
        ExpertJob(args.suite, t, i, args.seed)
        for t in parse_ids(args.tasks)
        for i in parse_ids(args.init_states)
    ]
    results: dict[int, list] = defaultdict(list)
    start = time.time()
    with EnvPool(cfg, num_workers=args.workers) as pool, tqdm(total=len(jobs), unit="ep") as bar:
        for ep in run_expert(pool, jobs, chunk=args.chunk):
            results[ep.job.task_id].append(ep)
            bar.update(1)
            if ep.error:
                bar.write(f"task {ep.job.task_id} init {ep.job.init_state_id}: error {ep.error}")
    elapsed = time.time() - start

    print(f"\n{'task':>4} {'success':>9} {'median steps (success)':>23}")
    for task_id in sorted(results):
        eps = results[task_id]
        wins = [e.steps for e in eps if e.success]
        median = float(np.median(wins)) if wins else float("nan")
        print(f"{task_id:>4} {len(wins):>4}/{len(eps):<4} {median:>23.0f}")
    total = sum(len(v) for v in results.values())
    wins_all = sum(e.success for v in results.values() for e in v)
    print(f" all {wins_all:>4}/{total:<4}  ({elapsed:.0f} s, chunk {args.chunk})\n")
    for task_id in sorted(results):
        eps = results[task_id]
        wins = [e.steps for e in eps if e.success]
        line = {
            "bench": "expert",
            "suite": args.suite,
            "task_id": task_id,
            "successes": len(wins),
            "trials": len(eps),
            "chunk": args.chunk,
            "median_steps": float(np.median(wins)) if wins else None,
            "failed_init_states": sorted(e.job.init_state_id for e in eps if not e.success),
        }
        print(json.dumps(line), flush=True)


def maniskill_main(args: argparse.Namespace) -> None:
    """The ManiSkill expert (verl/envs/maniskill/expert.py), closed loop, no cameras."""
    from verl.envs.libero.expert_rollout import parse_ids
    from verl.envs.maniskill import SUITE, maniskill_env_config, task
    from verl.envs.maniskill.expert_rollout import run_expert
    from verl.envs.pool import EnvPool

    cfg = maniskill_env_config(
        max_steps=args.max_steps, render_mode="none", privileged_obs=True, num_workers=args.workers
    )
    jobs = [(t, s) for t in parse_ids(args.tasks) for s in parse_ids(args.init_states)]
    results: dict[int, list] = defaultdict(list)
    start = time.time()
    with EnvPool(cfg, num_workers=args.workers) as pool:
        for ep in run_expert(pool, jobs):
            results[ep.task_id].append(ep)
    elapsed = time.time() - start
    for task_id in sorted(results):
        eps = results[task_id]
        wins = [e.steps for e in eps if e.success]
        line = {
            "bench": "expert",
            "env": "maniskill",
            "suite": SUITE,
            "task_id": task_id,
            "task": task(task_id).env_id,
            "successes": len(wins),
            "trials": len(eps),
            "median_steps": float(np.median(wins)) if wins else None,
            "failed_seeds": sorted(e.seed for e in eps if not e.success),
            "errors": sorted({e.error for e in eps if e.error}),
            "wall_s": round(elapsed, 1),
        }
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
