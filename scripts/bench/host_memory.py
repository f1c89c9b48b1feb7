"""Host memory per node of a GRPO run: the plan for the launch recipe, and with --measure a real run.

Prints one JSON line per item and one per phase total (`verl/utils/host_memory_plan.py` says what each
item holds):
    {"bench": "host_memory_plan", "config", "dataflow", "phase", "item", "gib"}
Defaults are examples/run_openvla_oft_rl_libero.sh on one 8-GPU node: 64 prompts x 8 samples, 8 ranks,
8 LIBERO simulators per rank, 512 env steps in chunks of 8 (64 decision steps), full refill rounds.

    .venv/bin/python scripts/bench/host_memory.py [--rounds 2] [--sim-rss-mib 978] [--dataflow heavy_stays]
    .venv/bin/python scripts/bench/host_memory.py --measure   # tiny policy, 2 CPU ranks, real LIBERO

--measure runs `verl.trainer.main_ppo` (2 FSDP workers on CPU, the shipped tiny checkpoint) while a
thread samples every 0.5 s the memory of every process of the run (the driver, Ray's daemons, the Ray
workers, the simulators: proportional set size, so shared pages such as the object store's count once)
and /dev/shm; then prints the measured peak by category next to the plan's prediction for that run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from verl.utils.host_memory_plan import GIB, MIB, PHASES, HostPlanSettings, phase_items, total  # noqa: E402

TINY = ROOT / "examples" / "checkpoints" / "tiny-sft-libero-object"
# The 7B OpenVLA-OFT (Llama-2-7B + two ViTs + projector), counted by scripts/bench/memory_plan.py.
PARAMS_7B = 7_541_237_184
# Image bytes per decision step: one 256 px LIBERO agent-view frame as the rollout stores it (JPEG),
# whatever the policy's input size (num_images_in_input=1 as in the recipe); measured by --measure
# (rollout/image_bytes_per_decision_step of libero_object episodes).
IMAGE_BYTES = 26_029

# Resident sizes (MiB) of the 8-GPU node's processes: LIBERO's simulator (env_throughput's env_rss, the
# largest RSS over 50 episodes, both cameras); a GPU
# worker's host side (python, torch, CUDA context, pinned buffers) and the driver are assumptions; Ray's
# daemons from ENVIRONMENT.md, its other workers as measured here.
RECIPE_DEFAULTS = dict(
    sim_rss_mib=978, worker_rss_mib=4096, driver_rss_mib=1024, ray_rss_mib=370, ray_other_rss_mib=1024
)
# This machine with --measure's run (2 CPU ranks holding the 4.4 M-parameter tiny policy): the simulator
# as above; the worker, the driver and Ray as measured without batches (the first --measure run).
MEASURE_DEFAULTS = dict(
    sim_rss_mib=978, worker_rss_mib=850, driver_rss_mib=600, ray_rss_mib=300, ray_other_rss_mib=1050
)


def per_decision_tensors(action_tokens: int, proprio_dim: int) -> tuple[int, int]:
    """(light, driver-added) bytes per decision step: int32 tokens, fp32 rollout log-probs, bool mask,
    fp32 proprio; the driver adds fp32 old log-probs, old entropy, rewards and advantages."""
    return action_tokens * (4 + 4 + 1) + 4 * proprio_dim, action_tokens * 4 * 4


def recipe_settings(args: argparse.Namespace) -> HostPlanSettings:
    light, added = per_decision_tensors(56, 0)
    return HostPlanSettings(
        ranks_per_node=8,
        nodes=1,
        env_workers_per_rank=8,
        trajectories_per_round=64 * 8,
        trajectories_per_step=64 * 8,
        sampling_rounds=args.rounds,
        decision_steps=math.ceil(512 / 8),
        heavy_per_decision=args.jpeg_bytes,
        light_per_decision=light,
        driver_added_per_decision=added,
        decoded_per_decision=224 * 224 * 3,
        params=PARAMS_7B,
        **process_sizes(args),
    )


def process_sizes(args: argparse.Namespace) -> dict:
    """The plan's resident sizes of the node's processes and its data flow, from the command line."""
    return dict(
        sim_rss=args.sim_rss_mib * MIB,
        worker_rss=args.worker_rss_mib * MIB,
        driver_rss=args.driver_rss_mib * MIB,
        ray_daemons_rss=args.ray_rss_mib * MIB,
        ray_other_rss=args.ray_other_rss_mib * MIB,
        dataflow=args.dataflow,
    )


def print_plan(settings: HostPlanSettings, config: str) -> None:
    head = {"bench": "host_memory_plan", "config": config, "dataflow": settings.dataflow}
    for phase in PHASES:
        items = phase_items(settings, phase)
        for item, nbytes in items.items():
            print(json.dumps({**head, "phase": phase, "item": item, "gib": round(nbytes / GIB, 3)}))
        print(json.dumps({**head, "phase": phase, "item": "total", "gib": round(total(items) / GIB, 2)}))


# ---------------------------------------------------------------------- measurement
def _smaps(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of a process from /proc/<pid>/smaps_rollup; (0, 0) when it is gone."""
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return rss, pss


def categorise(root: int) -> dict[str, list[int]]:
    """The run's processes by category: driver, ray_daemons, workers (the FSDP actors), simulators
    (their children), ray_other (Ray's idle workers and small actors)."""
    import psutil

    cats: dict[str, list[int]] = {
        k: [] for k in ("driver", "ray_daemons", "workers", "simulators", "ray_other")
    }
    try:
        procs = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        return cats
    worker_pids = set()
    for p in procs:
        try:
            cmd = " ".join(p.cmdline())
            if p.pid == root:
                cats["driver"].append(p.pid)
            elif cmd.startswith("ray::ActorRolloutWorker"):
                cats["workers"].append(p.pid)
                worker_pids.add(p.pid)
            elif any(pp.pid in worker_pids for pp in p.parents()):
                cats["simulators"].append(p.pid)
            elif cmd.startswith("ray::") or "default_worker.py" in cmd:
                cats["ray_other"].append(p.pid)
            else:
                cats["ray_daemons"].append(p.pid)
        except psutil.NoSuchProcess:
            continue
    return cats


class Sampler(threading.Thread):
    def __init__(self, root: int, period: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.root, self.period = root, period
        self.stop = threading.Event()
        self.shm0 = _shm_used()
        self.peak: dict[str, int] = {}
        self.peak_total = self.peak_rss_total = 0
        self.samples = 0

    def run(self) -> None:
        while not self.stop.is_set():
            sample = {}
            rss_total = 0
            for cat, pids in categorise(self.root).items():
                pairs = [_smaps(pid) for pid in pids]
                sample[cat] = sum(p for _, p in pairs)
                rss_total += sum(r for r, _ in pairs)
            sample["dev_shm"] = max(0, _shm_used() - self.shm0)
            for k, v in sample.items():
                self.peak[k] = max(self.peak.get(k, 0), v)
            self.peak_total = max(self.peak_total, sum(v for k, v in sample.items() if k != "dev_shm"))
            self.peak_rss_total = max(self.peak_rss_total, rss_total)
            self.samples += 1
            self.stop.wait(self.period)


def _shm_used() -> int:
    import shutil

    return shutil.disk_usage("/dev/shm").used


def run_overrides(args: argparse.Namespace, tasks: list[int], out: Path) -> list[str]:
    """The scaled-down run: the tiny policy on libero_object, one prompt per task, every group kept."""
    trajectories = len(tasks) * args.n_samples
    return [
        f"actor_rollout_ref.model.path={TINY}",
        "data.task_suite_name=libero_object",
        f"data.task_ids=[{','.join(str(t) for t in tasks)}]",
        "data.train_init_states=0-9",
        f"data.n_samples={args.n_samples}",
        f"data.train_batch_size={len(tasks)}",
        "data.filter_accuracy=false",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={trajectories}",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.actor.traj_mini_batch_size=4",
        f"env.max_steps={args.max_steps}",
        f"env.num_workers={args.env_workers}",
        f"trainer.n_gpus_per_node={args.workers}",
        f"trainer.total_training_steps={args.steps}",
        "trainer.val_before_train=false",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.save_last=true",
        "trainer.progress_bar=false",
        "trainer.logger=[jsonl]",
        f"trainer.default_local_dir={out}",
    ]


def run_sampled(overrides: list[str], log: Path) -> Sampler:
    """Run the trainer CLI to its end while a `Sampler` records its processes; the sampler."""
    env = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "RAY_AUTH_MODE": "disabled"}
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "verl.trainer.main_ppo", *overrides],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        sampler = Sampler(proc.pid)
        sampler.start()
        rc = proc.wait()
    sampler.stop.set()
    sampler.join()
    if rc != 0:
        raise SystemExit(f"the run failed (exit {rc}); see {log}")
    return sampler


def measured_settings(
    args: argparse.Namespace, trajectories: int, image_bytes: float, rounds: int
) -> HostPlanSettings:
    """The plan's settings for the scaled-down run (tiny policy: 112 px images, 8 x 7 tokens, proprio 8)."""
    light, added = per_decision_tensors(8 * 7, 8)
    return HostPlanSettings(
        ranks_per_node=args.workers,
        nodes=1,
        env_workers_per_rank=args.env_workers,
        trajectories_per_round=trajectories,
        trajectories_per_step=trajectories,
        sampling_rounds=rounds,
        decision_steps=math.ceil(args.max_steps / 8),
        heavy_per_decision=int(image_bytes),
        light_per_decision=light,
        driver_added_per_decision=added,
        decoded_per_decision=112 * 112 * 3,
        params=4_360_000,
        **process_sizes(args),
    )


def measure(args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp(prefix="host_memory_")) / "run"
    tasks = [int(t) for t in args.tasks.split(",")]
    trajectories = len(tasks) * args.n_samples
    start = time.time()
    sampler = run_sampled(run_overrides(args, tasks, out), out.parent / "stderr.log")
    metrics = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    m = metrics[-1]
    image = m["rollout/image_bytes_per_decision_step"]
    rounds = max(int(x.get("sampling/rounds", 1)) for x in metrics)
    settings = measured_settings(args, trajectories, image, rounds)
    plan = phase_items(settings, "step")
    # Tensors are padded to the longest episode, images kept for the steps taken: the plan counts every
    # episode at full length; at the run's mean length for the comparison.
    tensors = settings.decision_steps * (settings.light_per_decision + settings.driver_added_per_decision)
    images_through_driver = args.dataflow == "round_trip"
    driver_bytes = {
        "measured": round(m["perf/driver_bytes_per_trajectory"]),
        "plan_at_measured_length": round(
            tensors + (image * m["rollout/decision_steps_mean"] if images_through_driver else 0)
        ),
        "plan_worst_case": tensors + (int(image) * settings.decision_steps if images_through_driver else 0),
    }
    predicted = {
        "driver": plan["driver"] + plan["trajectories_driver"],
        "workers": plan["workers"] + plan["trajectories_workers"] + plan["decoded_images"],
        "simulators": plan["simulators"],
        "ray_daemons": plan["ray_daemons"],
        "ray_other": plan["ray_other"],
        "object_store": plan["trajectories_object_store"],
    }
    record = {
        "bench": "host_memory_measure",
        "dataflow": args.dataflow,
        "seconds": round(time.time() - start, 1),
        "samples": sampler.samples,
        "measured_peak_mib": {k: round(v / MIB) for k, v in sampler.peak.items()},
        "measured_peak_total_pss_mib": round(sampler.peak_total / MIB),
        "measured_peak_total_rss_mib": round(sampler.peak_rss_total / MIB),
        "predicted_mib": {k: round(v / MIB, 1) for k, v in predicted.items()},
        "predicted_total_mib": round(total(plan) / MIB),
        "trajectory_bytes_predicted": {k: plan[k] for k in plan if k.startswith("trajectories")},
        "driver_bytes_per_trajectory": driver_bytes,
        "image_bytes_per_decision_step": round(image),
        "bytes_per_decision_step": round(m["rollout/bytes_per_decision_step"]),
        "decision_steps_mean": m["rollout/decision_steps_mean"],
        "sampling_rounds": rounds,
        "trajectories": trajectories,
        "workers": args.workers,
        "env_workers_per_worker": args.env_workers,
        "max_steps": args.max_steps,
        "steps": args.steps,
        "run_dir": str(out),
    }
    print(json.dumps(record))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true", help="run a scaled-down GRPO run and measure it")
    parser.add_argument("--dataflow", default="heavy_stays", choices=["round_trip", "heavy_stays"])
    parser.add_argument("--rounds", type=int, default=2, help="dynamic-sampling rounds in the step (plan)")
    parser.add_argument("--jpeg-bytes", type=int, default=IMAGE_BYTES, help="image bytes per decision step")
    parser.add_argument("--sim-rss-mib", type=int, help="one simulator process")
    parser.add_argument("--worker-rss-mib", type=int, help="one worker process, no batches")
    parser.add_argument("--driver-rss-mib", type=int, help="the driver, no batches")
    parser.add_argument("--ray-rss-mib", type=int, help="Ray's daemons on one node")
    parser.add_argument("--ray-other-rss-mib", type=int, help="Ray's idle workers and small actors")
    parser.add_argument("--workers", type=int, default=2, help="--measure: FSDP ranks on CPU")
    parser.add_argument("--env-workers", type=int, default=2, help="--measure: simulators per rank")
    parser.add_argument("--tasks", default="0,1", help="--measure: libero_object task ids, one prompt each")
    parser.add_argument("--n-samples", type=int, default=4, help="--measure: group size")
    parser.add_argument("--max-steps", type=int, default=64, help="--measure: env steps per episode")
    parser.add_argument("--steps", type=int, default=2, help="--measure: RL steps")
    args = parser.parse_args()
    for key, value in (MEASURE_DEFAULTS if args.measure else RECIPE_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.measure:
        measure(args)
    else:
        print_plan(recipe_settings(args), "launch recipe, one 8-GPU node")


if __name__ == "__main__":
    main()
