"""Fault injection on the real simulator and the real driver; one JSON line per fault family.

kill_sim / hang_sim  simulator workers SIGKILLed / SIGSTOPped at random moments while the scripted
                     expert runs episodes through the EnvPool. Counts: signals, episodes reported
                     failed, false successes (an episode reported successful that carries an error,
                     or that failed in the fault-free reference), calls that outlived their
                     timeout, simulator processes left running.
bad_input            a catalogue of bad configs, files, simulator requests, resume checkpoints and
                     resource requests (scripts/bench/faults_catalogue.py); each must raise an error
                     naming the field or file, and leave the files it touched unchanged.
secrets              a short GRPO run (validation videos, WandB offline) with fake keys in the
                     environment and align.json; counts the files of the run directory, the WandB
                     directory, Ray's session logs and the console log that contain a key.
kill_driver          N runs SIGKILLed at random points (some while a checkpoint is written), each
                     resumed; the final checkpoint is compared with an uninterrupted run's (max abs
                     difference of weights, optimiser and scheduler state; the data order).

python scripts/bench/faults.py --families bad_input,secrets,kill_sim,hang_sim --kill-driver-runs 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

FAMILIES = ("bad_input", "secrets", "kill_sim", "hang_sim", "kill_driver")
FAKE = {"WANDB_API_KEY": "fakewandbkey-9c2e71d04b", "HF_TOKEN": "hf_fakehftoken_5ae3d1"}
FAKE_ALIGN = {"MY_SERVICE_TOKEN": "fakealigntoken-77f0c2"}


def _catalogue():
    path = Path(__file__).with_name("faults_catalogue.py")
    spec = importlib.util.spec_from_file_location("faults_catalogue", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tiny(work: Path) -> Path:
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    path = work / "tiny"
    return (
        path if (path / "config.json").is_file() else write_tiny_checkpoint(path, unnorm_key="libero_object")
    )


def _check(name: str, expect: list[str], fn, *args, watch: Path | None = None) -> dict:
    cat = _catalogue()
    before = cat.fingerprint(watch) if watch else None
    try:
        fn(*args)
        message, raised = "no error", False
    except BaseException as err:  # noqa: BLE001 - every exception is a candidate answer
        message, raised = f"{type(err).__name__}: {err}", True
    clear = raised and all(s in message for s in expect)
    intact = watch is None or cat.fingerprint(watch) == before
    return {"case": name, "clear": clear, "intact": intact, "message": message.splitlines()[0][:200]}


# ------------------------------------------------------------------------------------------ bad_input
def bad_input(work: Path) -> dict:
    from verl.envs.libero.config import libero_env_config
    from verl.envs.pool import EnvPool

    cat = _catalogue()
    work.mkdir(parents=True, exist_ok=True)
    tiny = _tiny(work)
    results = [_check(n, e, f) for n, e, f in cat.config_cases(work)]
    results += [_check(n, e, f, watch=w) for n, e, f, w in cat.checkpoint_cases(tiny, work)]
    results += [_check(n, e, f, watch=w) for n, e, f, w in cat.resume_cases(work)]
    results += [_check(n, e, f) for n, e, f in cat.runtime_cases(work)]
    with EnvPool(libero_env_config(render_mode="none", reset_timeout_s=120.0), num_workers=1) as pool:
        results += [_check(n, e, f, pool) for n, e, f in cat.simulator_cases()]
    results.append(
        {"case": "code ran from a tampered file", "clear": not (work / "pwned").exists(), "intact": True}
    )
    unclear = [r for r in results if not (r["clear"] and r["intact"])]
    for r in results:
        print(
            ("ok   " if r in results and r not in unclear else "FAIL ")
            + r["case"]
            + ": "
            + r.get("message", ""),
            file=sys.stderr,
        )
    return {
        "bench": "faults",
        "family": "bad_input",
        "cases": len(results),
        "clear_errors": sum(r["clear"] for r in results),
        "files_changed": sum(not r["intact"] for r in results),
        "unclear": [r["case"] for r in unclear],
    }


# ------------------------------------------------------------------------------------------ kill_sim / hang_sim
class _WatchedPool:
    """Forwards to an EnvPool; times every call and remembers every simulator pid it has seen."""

    def __init__(self, pool) -> None:
        self.pool, self.pids, self.slowest, self.calls = pool, set(pool.worker_pids()), 0.0, 0
        self.num_workers = pool.num_workers

    def _timed(self, method, requests, limit: float):
        start = time.monotonic()
        out = method(requests)
        elapsed = time.monotonic() - start
        self.slowest = max(self.slowest, elapsed - limit)
        self.calls += 1
        self.pids.update(self.pool.worker_pids())
        return out

    def reset(self, requests):
        return self._timed(self.pool.reset, requests, self.pool.cfg.reset_timeout_s)

    def step(self, requests):
        return self._timed(self.pool.step, requests, self.pool.cfg.step_timeout_s)


_REFERENCE: dict[tuple, dict] = {}


def sim_faults(mode: str, episodes: int, workers: int, faults: int, seed: int) -> dict:
    from verl.envs.libero.config import libero_env_config
    from verl.envs.libero.expert_rollout import ExpertJob, run_expert
    from verl.envs.pool import EnvPool

    cfg = libero_env_config(render_mode="none", privileged_obs=True, step_timeout_s=5.0, reset_timeout_s=60.0)
    jobs = [ExpertJob("libero_object", (t // 5) % 10, t % 5 + 5 * (t // 50), seed) for t in range(episodes)]
    key = (episodes, workers, seed)
    if key not in _REFERENCE:  # the fault-free outcome of every episode, shared by both families
        with EnvPool(cfg, num_workers=workers) as pool:
            _REFERENCE[key] = {ep.job: ep.success for ep in run_expert(pool, jobs)}
    reference = _REFERENCE[key]
    rng = random.Random(seed)
    sig = signal.SIGKILL if mode == "kill_sim" else signal.SIGSTOP
    sent: list[int] = []
    with EnvPool(cfg, num_workers=workers) as raw:
        pool = _WatchedPool(raw)
        done = threading.Event()

        def inject() -> None:
            # Only a worker with a request in flight, signalled once: every signal then hits one episode.
            while len(sent) < faults and not done.wait(rng.uniform(0.3, 2.5)):
                busy = [raw._workers[i].proc for i in list(raw._inflight)]
                busy = [p for p in busy if p.pid not in sent and p.poll() is None]
                if busy:
                    proc = rng.choice(busy)
                    proc.send_signal(sig)
                    sent.append(proc.pid)

        injector = threading.Thread(target=inject, daemon=True)
        start = time.monotonic()
        injector.start()
        results = list(run_expert(pool, jobs))
        done.set()
        injector.join()
        elapsed = time.monotonic() - start
        pool.pids.update(raw.worker_pids())
    time.sleep(1.0)
    alive = [
        p for p in pool.pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    failed = [ep for ep in results if ep.error]
    false_success = [ep for ep in results if ep.success and (ep.error or not reference[ep.job])]
    return {
        "bench": "faults",
        "family": mode,
        "episodes": len(results),
        "signals": len(sent),
        "episodes_failed_by_fault": len(failed),
        "false_successes": len(false_success),
        "successes": sum(ep.success for ep in results),
        "reference_successes": sum(reference.values()),
        "hangs": int(pool.slowest > 5.0),
        "max_call_over_timeout_s": round(max(0.0, pool.slowest), 2),
        "orphans": len(alive),
        "seconds": round(elapsed, 1),
    }


# ------------------------------------------------------------------------------------------ driver runs
def _overrides(tiny: Path, out: Path, steps: int) -> list[str]:
    return [
        f"actor_rollout_ref.model.path={tiny}",
        "data.task_suite_name=libero_object",
        "data.task_ids=[0]",
        "data.train_init_states=0-5",
        "data.val_init_states=45",
        "data.n_samples=2",
        "data.train_batch_size=1",
        "data.accuracy_lower_bound=0.0",
        "actor_rollout_ref.actor.ppo_mini_batch_size=2",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
        "actor_rollout_ref.actor.traj_mini_batch_size=2",
        "env.max_steps=16",
        "env.num_workers=1",
        "trainer.n_gpus_per_node=1",
        f"trainer.total_training_steps={steps}",
        "trainer.save_freq=1",
        "trainer.test_freq=-1",
        "trainer.val_before_train=false",
        "trainer.progress_bar=false",
        f"trainer.default_local_dir={out}",
    ]


def _cli(args: list[str], cwd: Path, env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "verl.trainer.main_ppo", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kw,
    )


def secrets(work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    tiny = _tiny(work)
    # Ray's session directory (logs, runtime-env agent records) of this run only; short for socket paths.
    out, ray_tmp = work / "run", Path(tempfile.mkdtemp(prefix="vf_ray_", dir="/tmp"))
    align = work.parent / "secrets_align.json"  # the user's input: outside the scanned directories
    align.write_text(json.dumps({"env_vars": FAKE_ALIGN}))
    args = _overrides(tiny, out, 1) + [
        "trainer.logger=[console,jsonl,wandb]",
        "trainer.wandb_mode=offline",
        "trainer.test_freq=1",
        "actor_rollout_ref.rollout.val_videos_per_task=1",
        f"trainer.runtime_env={align}",
    ]
    proc = _cli(args, work, env={**FAKE, "RAY_TMPDIR": str(ray_tmp)})
    console, _ = proc.communicate(timeout=1800)
    (work / "console.log").write_text(console)
    values = [v.encode() for v in (*FAKE.values(), *FAKE_ALIGN.values())]
    files = [p for root in (work, ray_tmp) if root.exists() for p in root.rglob("*") if p.is_file()]
    hits = [str(p) for p in files if any(v in p.read_bytes() or v.decode() in str(p) for v in values)]
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return {
        "bench": "faults",
        "family": "secrets",
        "run_ok": proc.returncode == 0,
        "files_scanned": len(files),
        "wandb_files": sum("wandb" in str(p) for p in files),
        "ray_session_files": sum(str(p).startswith(str(ray_tmp)) for p in files),
        "videos": sum(p.suffix == ".mp4" for p in files),
        "secrets_found": len(hits),
        "where": hits[:5],
    }


def _last_prompts(out: Path) -> dict:
    records = [json.loads(x) for x in (out / "prompts.jsonl").read_text().splitlines()]
    return {(r["step"], r["round"]): r["prompts"] for r in records}


def kill_driver(work: Path, runs: int, steps: int, seed: int) -> dict:
    from verl.utils.checkpoint_diff import max_abs_diff

    work.mkdir(parents=True, exist_ok=True)
    tiny, rng = _tiny(work), random.Random(seed)
    ref = work / "ref"
    start = time.monotonic()
    proc = _cli(_overrides(tiny, ref, steps), work)
    log, _ = proc.communicate(timeout=3600)
    ref_seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"reference run failed: {log[-2000:]}")
    worst = {"weights": 0.0, "optimizer": 0.0, "scheduler": 0.0}
    phases: dict[str, int] = {}
    order_mismatches = half_written = failed_resumes = orphans = 0
    for i in range(runs):
        out = work / f"run{i}"
        victim = _cli(_overrides(tiny, out, steps), work)
        at_save = i % 3 == 2  # every third run is killed while a checkpoint is being written
        deadline = time.monotonic() + (rng.uniform(0.15, 0.95) * ref_seconds)
        while victim.poll() is None and time.monotonic() < deadline + (600 if at_save else 0):
            partial = list(out.glob("*.partial"))
            if (at_save and partial) or (not at_save and time.monotonic() >= deadline):
                break
            time.sleep(0.02)
        phase = (
            "checkpoint_write"
            if list(out.glob("*.partial"))
            else ("before_first_checkpoint" if not list(out.glob("global_step_*")) else "rollout_or_update")
        )
        session = [p for p in psutil.process_iter(["pid"]) if _sid(p.pid) == victim.pid]
        os.killpg(victim.pid, signal.SIGKILL)
        victim.communicate()
        phases[phase] = phases.get(phase, 0) + 1
        _, alive = psutil.wait_procs(session, timeout=30)
        orphans += len(alive)
        for p in alive:
            p.kill()
        resumed = _cli(_overrides(tiny, out, steps), work)
        rlog, _ = resumed.communicate(timeout=3600)
        if resumed.returncode != 0:
            failed_resumes += 1
            print(rlog[-2000:], file=sys.stderr)
            continue
        diff = max_abs_diff(ref / f"global_step_{steps}", out / f"global_step_{steps}")
        worst = {k: max(worst[k], v) for k, v in diff.items()}
        order_mismatches += int(_last_prompts(out) != _last_prompts(ref))
        half_written += len(list(out.glob("*.partial"))) + sum(
            not (d / "COMPLETE").is_file() for d in out.glob("global_step_*") if d.is_dir()
        )
        print(f"run {i}: killed in {phase}, resumed; diff {diff}", file=sys.stderr)
    return {
        "bench": "faults",
        "family": "kill_driver",
        "runs": runs,
        "steps": steps,
        "killed_in": phases,
        "resumed_ok": runs - failed_resumes,
        "max_abs_diff": worst,
        "data_order_mismatches": order_mismatches,
        "half_written_checkpoints": half_written,
        "orphans": orphans,
        "reference_seconds": round(ref_seconds, 1),
    }


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated subset of {FAMILIES}"
    )
    parser.add_argument("--work-dir", default="outputs/faults")
    parser.add_argument("--kill-driver-runs", type=int, default=10)
    parser.add_argument("--kill-driver-steps", type=int, default=3)
    parser.add_argument("--sim-episodes", type=int, default=20)
    parser.add_argument("--sim-workers", type=int, default=2)
    parser.add_argument("--sim-faults", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance (see SETUP.md)
    work = Path(args.work_dir).resolve()
    for family in args.families.split(","):
        if family not in FAMILIES:
            raise SystemExit(f"--families: unknown family {family!r}; allowed: {FAMILIES}")
        if family == "bad_input":
            line = bad_input(work / family)
        elif family == "secrets":
            line = secrets(work / family)
        elif family == "kill_driver":
            line = kill_driver(work / family, args.kill_driver_runs, args.kill_driver_steps, args.seed)
        else:
            line = sim_faults(family, args.sim_episodes, args.sim_workers, args.sim_faults, args.seed)
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
