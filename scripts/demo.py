"""The main job on CPU: SFT checkpoint -> GRPO -> greedy evaluation on held-out initial states.

Stages, each with its own progress bar or log line:
  1. the SFT checkpoint of the tiny OpenVLA-OFT policy (shipped in examples/checkpoints/, or given);
  2. greedy evaluation of the SFT policy on held-out initial states (`val/test_score` at step 0);
  3. GRPO with dynamic sampling, clip-higher [0.8, 1.28] and temperature 1.6 (--temperature);
  4. greedy evaluation of the RL policy on the same held-out episodes;
  5. report: before/after table with 95% confidence intervals, success-versus-step plot (PNG),
     videos before and after, metrics in JSONL and an offline WandB run.

    .venv/bin/python scripts/demo.py                    # the embedded default
    .venv/bin/python scripts/demo.py --steps 40 --out outputs/long
    .venv/bin/python scripts/demo.py --out outputs/long --report-only   # table, plot, JSON of a (stopped) run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CHECKPOINT = ROOT / "examples" / "checkpoints" / "tiny-sft-libero-object"


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate."""
    if n == 0:
        return 0.0, 0.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="SFT checkpoint (HF layout)")
    p.add_argument(
        "--out", default=str(ROOT / "outputs" / "demo"), help="run directory (metrics, plot, videos)"
    )
    p.add_argument("--suite", default="libero_object")
    p.add_argument("--tasks", default="1,2", help="task ids, comma-separated")
    p.add_argument("--train-init-states", default="0-39")
    p.add_argument("--val-init-states", default="40-49")
    p.add_argument("--val-repeats", type=int, default=5, help="episodes per held-out initial state (seeds)")
    p.add_argument("--pos-noise", type=float, default=0.01, help="initial object position noise (m)")
    p.add_argument("--yaw-noise", type=float, default=0.05, help="initial object yaw noise (rad)")
    p.add_argument("--steps", type=int, default=6, help="GRPO steps")
    p.add_argument(
        "--test-freq", type=int, default=0, help="validate every N steps (0: only before and after)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON line at the end")
    p.add_argument(
        "--report-only",
        action="store_true",
        help="no training: rebuild the table, plot and JSON from the files of a finished or stopped run in --out",
    )
    p.add_argument("--prompts", type=int, default=4, help="groups per GRPO step")
    p.add_argument("--n-samples", type=int, default=8, help="rollouts per group")
    p.add_argument("--lr", type=float, default=5e-5, help="actor learning rate (peak, after the warm-up)")
    p.add_argument(
        "--warmup", type=int, default=6, help="optimiser steps of linear learning-rate warm-up (0: none)"
    )
    p.add_argument("--max-rounds", type=int, default=2, help="dynamic-sampling rounds per GRPO step at most")
    p.add_argument(
        "--refill",
        default="missing",
        choices=("missing", "full"),
        help="what a dynamic-sampling refill round rolls out: only the missing groups, or a full batch",
    )
    p.add_argument("--temperature", type=float, default=1.6, help="rollout sampling temperature")
    p.add_argument("--ppo-epochs", type=int, default=1, help="passes over each step's rollouts")
    p.add_argument("--mini-batches", type=int, default=2, help="optimiser steps per pass")
    p.add_argument("--max-steps", type=int, default=160, help="env steps per episode")
    p.add_argument("--env-workers", type=int, default=4, help="simulator processes")
    p.add_argument(
        "--pipeline-stages", type=int, default=2, help="simulator groups stepping while the policy acts"
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--extra", nargs="*", default=[], help="further Hydra overrides")
    return p.parse_args(argv)


def overrides(a: argparse.Namespace, out: Path) -> list[str]:
    total = a.prompts * a.n_samples
    if total % a.mini_batches:
        raise SystemExit(f"--mini-batches {a.mini_batches} must divide prompts * n_samples = {total}")
    mini = total // a.mini_batches
    return [
        f"actor_rollout_ref.model.path={a.checkpoint}",
        f"data.task_suite_name={a.suite}",
        f"data.task_ids=[{a.tasks}]",
        f"data.train_init_states={a.train_init_states}",
        f"data.val_init_states={a.val_init_states}",
        f"data.val_n_samples={a.val_repeats}",
        f"data.n_samples={a.n_samples}",
        f"data.train_batch_size={a.prompts}",
        f"data.max_sampling_rounds={a.max_rounds}",
        f"data.refill={a.refill}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={mini}",
        f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={mini}",
        f"actor_rollout_ref.actor.ppo_epochs={a.ppo_epochs}",
        "actor_rollout_ref.actor.traj_mini_batch_size=32",
        f"actor_rollout_ref.actor.optim.lr={a.lr}",
        f"actor_rollout_ref.actor.optim.lr_warmup_steps={a.warmup}",
        "actor_rollout_ref.actor.fsdp_config.mixed_precision=fp32",
        f"actor_rollout_ref.rollout.temperature={a.temperature}",
        "actor_rollout_ref.rollout.val_videos_per_task=1",
        f"env.max_steps={a.max_steps}",
        f"env.num_workers={a.env_workers}",
        f"env.pipeline_stages={a.pipeline_stages}",
        f"env.libero.perturbation.pos_noise_m={a.pos_noise}",
        f"env.libero.perturbation.yaw_noise_rad={a.yaw_noise}",
        "trainer.device=cpu",
        "trainer.n_gpus_per_node=1",
        f"trainer.total_training_steps={a.steps}",
        f"trainer.test_freq={a.test_freq or a.steps}",
        f"trainer.save_freq={a.steps}",
        "trainer.val_before_train=true",
        "trainer.resume_mode=disable",
        "trainer.logger=[console,jsonl,wandb]",
        "trainer.project_name=verl-vla-demo",
        f"trainer.experiment_name={out.name}",
        f"trainer.default_local_dir={out}",
        f"trainer.seed={a.seed}",
        *a.extra,
    ]


def evaluations(episodes: list[dict]) -> list[dict]:
    """One row per evaluation step: episodes, successes, rate, 95% Wilson interval and videos."""
    rows = []
    for step in sorted({e["step"] for e in episodes}):
        eps = [e for e in episodes if e["step"] == step]
        k = sum(e["success"] for e in eps)
        lo, hi = wilson(k, len(eps))
        per_task = {}
        for task in sorted({e["task_id"] for e in eps}):
            of_task = [e for e in eps if e["task_id"] == task]
            k_task = sum(e["success"] for e in of_task)
            per_task[str(task)] = {
                "episodes": len(of_task),
                "successes": k_task,
                "success_rate": k_task / len(of_task),
                "ci95": list(wilson(k_task, len(of_task))),
            }
        rows.append(
            {
                "step": step,
                "episodes": len(eps),
                "successes": k,
                "success_rate": k / len(eps),
                "ci95": [lo, hi],
                "per_task": per_task,
                "videos": sorted({e["video"] for e in eps if e["video"]}),
            }
        )
    return rows


def run_started(out: Path, key: str = "args") -> dict:
    """What run_started.json of the run in `out` records under `key` ("args" or "host"), {} if unknown."""
    marker = out / "run_started.json"
    return json.loads(marker.read_text()).get(key, {}) if marker.is_file() else {}


def host_info() -> dict:
    """The machine a run ran on. CPU runs are deterministic on one kind of CPU, but a CPU with other vector
    instructions (torch picks AVX2, AVX-512 or AMX kernels) rounds differently, so its rollouts diverge."""
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            x.split(":", 1)[1].strip() for x in cpuinfo.read_text().splitlines() if x.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
    }


def report(out: Path, wall_time_s: float) -> dict:
    """Before/after table, plot and summary from the run's JSONL files (also of a stopped run)."""
    val_file = out / "val_episodes.jsonl"
    if not val_file.is_file() or not val_file.read_text().strip():
        sys.exit(f"--out {out}: no evaluation episodes there (val_episodes.jsonl is missing or empty)")
    episodes = [json.loads(x) for x in val_file.read_text().splitlines() if x.strip()]
    metrics_file = out / "metrics.jsonl"
    metrics = (
        [json.loads(x) for x in metrics_file.read_text().splitlines() if x.strip()]
        if metrics_file.is_file()
        else []
    )
    curve = evaluations(episodes)
    rows = [{"policy": "after SFT", **curve[0]}, {"policy": "after GRPO", **curve[-1]}]
    summary = {
        "before": rows[0],
        "after": rows[1],
        "curve": curve,
        "wall_time_s": wall_time_s,
        "improvement_points": 100 * (rows[1]["success_rate"] - rows[0]["success_rate"]),
        "host": run_started(out, "host"),
    }
    _plot(metrics, episodes, out / "success_vs_step.png", float(run_started(out).get("temperature", 1.6)))
    write_json_atomic(out / "summary.json", summary)
    print("\n| policy | GRPO step | held-out episodes | success | 95% CI |")
    print("|---|---|---|---|---|")
    for r in rows[:1] + [dict(c, policy="after GRPO") for c in curve[1:]]:
        print(
            f"| {r['policy']} | {r['step']} | {r['episodes']} | {100 * r['success_rate']:.1f}% "
            f"| [{100 * r['ci95'][0]:.1f}, {100 * r['ci95'][1]:.1f}] |"
        )
    print(
        f"\nchange: {summary['improvement_points']:+.1f} points; wall time {summary['wall_time_s'] / 60:.1f} min"
    )
    print(
        f"plot: {out / 'success_vs_step.png'}\nvideos before: {rows[0]['videos'][:2]}\n"
        f"videos after: {rows[1]['videos'][:2]}\nmetrics: {out / 'metrics.jsonl'}"
    )
    return summary


def write_json_atomic(path: Path, obj: dict) -> None:
    """Write JSON atomically (a temporary file renamed over the target)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2))
    os.replace(tmp, path)


def stopped_run_wall_time(out: Path) -> float:
    """Wall time of a run from its start marker to its last metrics record."""
    start = (
        json.loads((out / "run_started.json").read_text())["time"]
        if (out / "run_started.json").is_file()
        else None
    )
    metrics = out / "metrics.jsonl"
    lines = metrics.read_text().splitlines() if metrics.is_file() else []
    times = [json.loads(x)["time"] for x in lines if x.strip()]
    if not times:
        return 0.0
    return max(times) - (start if start is not None else min(times))


def _plot(metrics: list[dict], episodes: list[dict], path: Path, temperature: float = 1.6) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    train = [(m["step"], m["train_verify_score/all"]) for m in metrics if "train_verify_score/all" in m]
    if train:
        ax.plot(*zip(*train), marker=".", label=f"training rollouts (T={temperature:g}, before filtering)")
    curve = evaluations(episodes)
    rates = [c["success_rate"] for c in curve]
    errs = [
        [r - c["ci95"][0] for r, c in zip(rates, curve)],
        [c["ci95"][1] - r for r, c in zip(rates, curve)],
    ]
    steps = [c["step"] for c in curve]
    ax.errorbar(steps, rates, yerr=errs, marker="o", capsize=4, label="held-out, greedy (95% CI)")
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("success rate")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    a = parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out = Path(a.out).resolve()
    if a.report_only:
        summary = report(out, stopped_run_wall_time(out))
        if a.json:
            # The run's own suite, tasks, seed and temperature, whatever this command line says.
            print(json.dumps(summary_line(argparse.Namespace(**{**vars(a), **run_started(out)}), summary)))
        return
    if not (Path(a.checkpoint) / "config.json").is_file():
        sys.exit(
            f"--checkpoint {a.checkpoint}: no config.json there. The default checkpoint ships with the "
            "repository (examples/checkpoints/); examples/make_demo_checkpoint.sh rebuilds it."
        )
    for stale in ("val_episodes.jsonl", "metrics.jsonl", "prompts.jsonl"):
        (out / stale).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    args = {"suite": a.suite, "tasks": a.tasks, "seed": a.seed, "temperature": a.temperature}
    write_json_atomic(out / "run_started.json", {"time": started, "args": args, "host": host_info()})
    print(f"[demo] stage 1/4: SFT checkpoint {a.checkpoint}", file=sys.stderr)
    print(
        f"[demo] stage 2-4/4: evaluate SFT, GRPO for {a.steps} steps, evaluate RL -> {out}", file=sys.stderr
    )
    from verl.trainer.config.compose import compose_config
    from verl.trainer.main_ppo import run_ppo

    run_ppo(compose_config(overrides(a, out)))
    print("[demo] report", file=sys.stderr)
    summary = report(out, time.time() - started)
    if a.json:
        print(json.dumps(summary_line(a, summary)))


def summary_line(a: argparse.Namespace, summary: dict) -> dict:
    """The one-line JSON of the learning-curve bench."""
    b, r = summary["before"], summary["after"]
    return {
        "bench": "learning_curve",
        "suite": a.suite,
        "tasks": a.tasks,
        "grpo_steps": r["step"],
        "episodes": r["episodes"],
        "sft_success": round(b["success_rate"], 4),
        "sft_ci95": [round(x, 4) for x in b["ci95"]],
        "rl_success": round(r["success_rate"], 4),
        "rl_ci95": [round(x, 4) for x in r["ci95"]],
        "improvement_points": round(summary["improvement_points"], 2),
        "curve": [
            {
                "step": c["step"],
                "success": round(c["success_rate"], 4),
                "ci95": [round(x, 4) for x in c["ci95"]],
                "per_task": {
                    task: {
                        "success": round(t["success_rate"], 4),
                        "ci95": [round(x, 4) for x in t["ci95"]],
                        "episodes": t["episodes"],
                    }
                    for task, t in c["per_task"].items()
                },
            }
            for c in summary["curve"]
        ],
        "wall_time_s": round(summary["wall_time_s"], 1),
        "seed": a.seed,
        "temperature": a.temperature,
        "host": summary.get("host", {}),
    }


if __name__ == "__main__":
    main()
