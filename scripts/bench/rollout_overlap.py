"""Rollout at GPU-node scale on CPU: the policy's device time hidden behind real LIBERO simulators.

The policy is `DeviceLatencyPolicy` (scripts/bench/device_latency.py): the real tiny OpenVLA-OFT's
input preparation on this CPU, then a wait of the modelled device time of the 7B on one GPU (the CPU
is free meanwhile), then a pre-recorded action chunk per (episode seed, decision step). Every
configuration runs the same episodes (tasks, initial states, seeds, actions, step limit), in one run:

- `sim_limit <n>`: the simulator-only limit: the same episodes on n simulators, the recorded actions
  sent back as soon as a chunk returns (no policy, no device time).
- `lockstep <n>x1`: the stand-in with every simulator in one group (`env.pipeline_stages=1`).
- `pipelined <n>x<k>`: the stand-in with k groups: the device works on one group while the others step.
- `continuous <n>x0`: the stand-in with no fixed groups (`env.pipeline_stages=0`): each device call
  takes every simulator whose chunk has returned by then.
- `baseline <n>x1`: SimpleVLA-RL's way with the framework's own switches: lockstep, cameras rendered
  every step (`env.render_mode=every_step`), a new simulator process per episode
  (`env.fresh_simulator_per_episode=true`).

One JSON line per configuration, then a summary:
    {"bench": "rollout_overlap", "config", "device_ms_per_batch", "env_steps_per_s",
     "fraction_of_sim_limit", "speedup_vs_baseline", ...}
`fraction_of_sim_limit` divides by the best simulator-only rate of the run (any simulator count),
`fraction_of_sim_limit_same_simulators` by the limit with as many simulators, `speedup_vs_baseline` by
the baseline's rate. Each configuration runs once per pass (`--repeats` passes, in turn) and reports its
fastest pass: this machine's CPU time is shared with other tenants, and its rates drift by 10-20%. `main_cpu_s` is the CPU time of this process (input
preparation, the pool's messages), `prepare_cpu_s` its input-preparation part.

    MUJOCO_GL=egl .venv/bin/python scripts/bench/rollout_overlap.py [--episodes 12] [--configs 4x1 6x2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.bench.device_latency import DEFAULT_A_MS, DEFAULT_B_MS, DeviceLatencyPolicy, DeviceModel  # noqa: E402


def host() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def parse_config(text: str) -> tuple[int, int]:
    try:
        workers, stages = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"{text!r}: allowed form <simulators>x<stages>, e.g. 6x2") from None
    if not 0 <= stages <= workers:
        raise SystemExit(f"{text!r}: stages must be 0..simulators (0: no fixed groups)")
    return workers, stages


def run(kind: str, workers: int, stages: int, episodes, act, args, render_mode="chunk", fresh=False) -> dict:
    """Roll out `episodes` once on a new pool and return the configuration's figures."""
    from verl.envs.base import ResetRequest
    from verl.envs.libero.config import libero_env_config
    from verl.envs.pool import EnvPool
    from verl.workers.rollout.env_rollout import run_episodes

    cfg = libero_env_config(
        max_steps=args.max_steps,
        num_workers=workers,
        pipeline_stages=stages,
        render_mode=render_mode,
        fresh_simulator_per_episode=fresh,
    )
    with EnvPool(cfg) as pool:
        if not fresh:  # build each simulator for its first task outside the timed run
            pool.reset(
                [
                    (w, ResetRequest(e.suite, e.task_id, e.init_state_id, e.seed))
                    for w, e in enumerate(episodes[:workers])
                ]
            )
        cpu, start = time.process_time(), time.perf_counter()
        trajectories, stats = run_episodes(
            act, pool, episodes, micro_batch_size=args.micro_batch, stages=stages
        )
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    failed = [t.error for t in trajectories if t.failed]
    if failed:
        raise RuntimeError(f"{kind} {workers}x{stages}: {len(failed)} episodes failed: {failed[0]}")
    calls = max(stats.policy_calls, 1)
    return {
        "bench": "rollout_overlap",
        "config": f"{kind} {workers}x{stages}" if kind != "sim_limit" else f"sim_limit {workers}",
        "simulators": workers,
        "stages": stages,
        "render_mode": render_mode,
        "fresh_simulator_per_episode": fresh,
        "device_ms_per_batch": round(1000 * act.device_s / calls, 1),
        "mean_batch": round(stats.policy_batch_sum / calls, 2),
        "env_steps_per_s": round(stats.env_steps / seconds, 2),
        "env_steps": stats.env_steps,
        "episodes": len(trajectories),
        "seconds": round(seconds, 1),
        "main_cpu_s": round(cpu, 1),
        "prepare_cpu_s": round(act.prepare_cpu_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", default="", help="policy whose input preparation runs (default: shipped tiny)"
    )
    parser.add_argument("--suite", default="libero_object")
    parser.add_argument("--tasks", default="0,1,2,3")
    parser.add_argument("--episodes", type=int, default=12, help="episodes per configuration")
    parser.add_argument("--max-steps", type=int, default=160, help="env steps per episode")
    parser.add_argument("--micro-batch", type=int, default=16, help="observations per policy call at most")
    parser.add_argument("--device-a-ms", type=float, default=DEFAULT_A_MS, help="device time per call")
    parser.add_argument("--device-b-ms", type=float, default=DEFAULT_B_MS, help="device time per observation")
    parser.add_argument("--sim-limits", type=int, nargs="*", default=[2, 4, 6], help="simulator counts")
    parser.add_argument(
        "--configs",
        nargs="*",
        default=["4x1", "4x2", "6x2", "6x3", "4x0", "6x0"],
        help="<simulators>x<stages>",
    )
    parser.add_argument(
        "--baseline", default="4x1", help='<simulators>x1 of the SimpleVLA-RL-style run ("" to skip it)'
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a Ray actor gets 1 CPU)")
    parser.add_argument("--repeats", type=int, default=2, help="passes over every configuration (best of)")
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    configs = [parse_config(c) for c in args.configs]
    base = parse_config(args.baseline) if args.baseline else None

    import torch

    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
    from verl.workers.rollout.env_rollout import Episode

    torch.set_num_threads(args.threads)
    ckpt = args.checkpoint or str(ROOT / "examples" / "checkpoints" / "tiny-sft-libero-object")
    policy = OpenVLAOFTPolicy.from_pretrained(ckpt).eval()
    chunk, dim = policy.chunk_size, policy.action_dim
    tasks = [int(t) for t in args.tasks.split(",")]
    episodes = [Episode(args.suite, tasks[i % len(tasks)], i, 1000 + i) for i in range(args.episodes)]
    device = DeviceModel(args.device_a_ms, args.device_b_ms)

    def stand_in() -> DeviceLatencyPolicy:
        return DeviceLatencyPolicy(policy.prepare, device, chunk, dim)

    best: dict[str, dict] = {}  # config -> its fastest repeat

    def record(line: dict) -> None:
        print(f"[rollout_overlap] {line['config']}: {line['env_steps_per_s']} env steps/s", file=sys.stderr)
        if line["config"] not in best or line["env_steps_per_s"] > best[line["config"]]["env_steps_per_s"]:
            best[line["config"]] = {**line, "repeats": args.repeats}

    with torch.no_grad():
        # Every configuration once per pass, passes in turn: a burst of load from elsewhere lands on
        # one repeat of a few configurations, and each figure is its configuration's best repeat.
        for _ in range(args.repeats):
            for n in args.sim_limits:
                record(
                    run(
                        "sim_limit",
                        n,
                        n,
                        episodes,
                        DeviceLatencyPolicy(None, DeviceModel(0, 0), chunk, dim),
                        args,
                    )
                )
            for workers, stages in configs:
                kind = {0: "continuous", 1: "lockstep"}.get(stages, "pipelined")
                record(run(kind, workers, stages, episodes, stand_in(), args))
            if base is not None:
                record(
                    run("baseline", *base, episodes, stand_in(), args, render_mode="every_step", fresh=True)
                )
    records = list(best.values())
    limits = {r["simulators"]: r["env_steps_per_s"] for r in records if r["config"].startswith("sim_limit")}
    limit = max(limits.values(), default=None)
    baseline = next((r for r in records if r["config"].startswith("baseline")), None)
    for line in records:
        same = limits.get(line["simulators"])
        line["fraction_of_sim_limit"] = round(line["env_steps_per_s"] / limit, 3) if limit else None
        line["fraction_of_sim_limit_same_simulators"] = (
            round(line["env_steps_per_s"] / same, 3) if same else None
        )
        line["speedup_vs_baseline"] = (
            round(line["env_steps_per_s"] / baseline["env_steps_per_s"], 2) if baseline else None
        )
        print(json.dumps(line), flush=True)
    policy_runs = [r for r in records if not r["config"].startswith(("sim_limit", "baseline"))]
    top = max(policy_runs, key=lambda r: r["env_steps_per_s"]) if policy_runs else None
    summary = {
        "bench": "rollout_overlap_summary",
        "host": host(),
        "device_model": {"a_ms": device.a_ms, "b_ms": device.b_ms},
        "episodes": len(episodes),
        "max_steps": args.max_steps,
        "sim_limit": limit,
        "best": top and top["config"],
        "fraction_of_sim_limit": top and top["fraction_of_sim_limit"],
        "fraction_of_sim_limit_same_simulators": top and top["fraction_of_sim_limit_same_simulators"],
        "speedup_vs_baseline": top and top["speedup_vs_baseline"],
        "targets": {"fraction_of_sim_limit": 0.9, "speedup_vs_baseline": 7.0},
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
