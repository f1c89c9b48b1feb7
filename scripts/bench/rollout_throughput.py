"""Closed-loop rollout throughput: the tiny OpenVLA-OFT policy driving real LIBERO simulators.

Runs the same episodes (fixed tasks, initial states and seeds; sampling at temperature 1.6) once per
configuration "<simulators>x<pipeline stages>", in one process and one run so the figures compare,
and prints one JSON line per configuration plus a summary line:
    {"bench": "rollout_throughput", "config": "4x2", "env_steps_per_s", "episodes", "env_steps", "seconds"}
    {"bench": "rollout_throughput_summary", "baseline", "best", "speedup"}

    .venv/bin/python scripts/bench/rollout_throughput.py --configs 2x1 4x2 --episodes 8
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch


def parse_config(text: str) -> tuple[int, int]:
    try:
        workers, stages = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"--configs {text!r}: allowed form <simulators>x<stages>, e.g. 4x2") from None
    if not 1 <= stages <= workers:
        raise SystemExit(f"--configs {text!r}: stages must be 1..simulators")
    return workers, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="", help="policy (default: the shipped tiny SFT checkpoint)")
    parser.add_argument("--suite", default="libero_object")
    parser.add_argument("--tasks", default="1,2")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per configuration")
    parser.add_argument("--max-steps", type=int, default=160, help="env steps per episode")
    parser.add_argument("--configs", nargs="+", default=["2x1", "4x2"], help="<simulators>x<stages>")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a Ray actor gets 1 CPU)")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    torch.set_num_threads(args.threads)
    configs = [parse_config(c) for c in args.configs]

    from verl.envs.base import ResetRequest
    from verl.envs.libero.config import libero_env_config
    from verl.envs.pool import EnvPool
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
    from verl.workers.rollout.env_rollout import Episode, policy_actor, run_episodes

    root = Path(__file__).resolve().parents[2]
    ckpt = args.checkpoint or str(root / "examples" / "checkpoints" / "tiny-sft-libero-object")
    tasks = [int(t) for t in args.tasks.split(",")]
    episodes = [Episode(args.suite, tasks[i % len(tasks)], i, 1000 + i) for i in range(args.episodes)]
    policy = OpenVLAOFTPolicy.from_pretrained(ckpt).eval()
    results = []
    for workers, stages in configs:
        act = policy_actor(policy, 1.6, greedy=False, base_key=(0,))
        cfg = libero_env_config(max_steps=args.max_steps, num_workers=workers, pipeline_stages=stages)
        with EnvPool(cfg) as pool, torch.no_grad():
            # Warm-up: build each simulator for its first task outside the timed run.
            pool.reset(
                [
                    (w, ResetRequest(e.suite, e.task_id, e.init_state_id, e.seed))
                    for w, e in enumerate(episodes[:workers])
                ]
            )
            start = time.perf_counter()
            _, stats = run_episodes(act, pool, episodes, micro_batch_size=32, stages=stages)
            seconds = time.perf_counter() - start
        record = {
            "bench": "rollout_throughput",
            "config": f"{workers}x{stages}",
            "simulators": workers,
            "stages": stages,
            "env_steps_per_s": round(stats.env_steps / seconds, 2),
            "episodes": len(episodes),
            "env_steps": stats.env_steps,
            "seconds": round(seconds, 1),
        }
        results.append(record)
        print(json.dumps(record), flush=True)
    base, best = results[0], max(results, key=lambda r: r["env_steps_per_s"])
    print(
        json.dumps(
            {
                "bench": "rollout_throughput_summary",
                "baseline": base["config"],
                "best": best["config"],
                "speedup": round(best["env_steps_per_s"] / base["env_steps_per_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
