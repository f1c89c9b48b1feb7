"""The `bad_input` family of scripts/bench/faults.py: a catalogue of bad inputs, each expected to end in
an error whose message names the field or file at fault, with no file lost or overwritten.

Each case is (name, [substrings the message must hold], callable that must raise). A case "passes"
when it raises, every substring is in the message, and the fingerprint of the files it touched is
unchanged (a failed resume must not delete or rewrite a checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

PATH = "actor_rollout_ref.model.path"


def fingerprint(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _compose(*overrides: str) -> Callable[[], object]:
    def run() -> object:
        from verl.trainer.config.compose import compose_config
        from verl.trainer.preflight import check_prompts

        config = compose_config([f"{PATH}=/ckpt", *overrides])
        check_prompts(config)
        return config

    return run


def _cli(overrides: list[str], cwd: Path) -> Callable[[], None]:
    """The real entry point; must fail before Ray starts."""

    def run() -> None:
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "verl.trainer.main_ppo", *overrides],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "HYDRA_FULL_ERROR": "1"},
            timeout=300,
        )
        log = proc.stdout + proc.stderr
        if proc.returncode == 0:
            return
        if "Started a local Ray instance" in log:
            raise RuntimeError(
                f"found only after Ray started ({time.monotonic() - start:.0f} s): {log[-300:]}"
            )
        raise RuntimeError(log.strip().splitlines()[-1])

    return run


def config_cases(work: Path) -> list[tuple[str, list[str], Callable[[], object]]]:
    return [
        ("mistyped key", ["n_sample"], _compose("data.n_sample=4")),
        ("unknown key", ["totl_training_steps"], _compose("trainer.totl_training_steps=3")),
        ("wrong type", ["n_samples"], _compose("data.n_samples=eight")),
        ("zero group size", ["data.n_samples"], _compose("data.n_samples=0")),
        ("accuracy bound > 1", ["data.accuracy_lower_bound"], _compose("data.accuracy_lower_bound=1.5")),
        ("unknown resume mode", ["trainer.resume_mode", "auto"], _compose("trainer.resume_mode=sometimes")),
        ("resume_path without path", ["trainer.resume_from_path"], _compose("trainer.resume_mode=resume_path")),
        ("unknown attention", ["attn_implementation", "sdpa"], _compose("actor_rollout_ref.model.attn_implementation=flash")),
        ("unknown logger", ["trainer.logger", "jsonl"], _compose("trainer.logger=[console,tensorboard]")),
        ("negative deadline", ["trainer.worker_call_timeout_s"], _compose("trainer.worker_call_timeout_s=-1")),
        ("zero CPUs per worker", ["trainer.num_cpus_per_worker"], _compose("trainer.num_cpus_per_worker=0")),
        ("LIBERO key that moved to its node", ["env.camera_size", "env.libero.camera_size"], _compose("env.camera_size=128")),
        ("removed KL-in-reward key", ["algorithm.kl_ctrl.kl_coef", "kl_loss_coef"], _compose("algorithm.kl_ctrl.kl_coef=0.1")),
        ("negative temperature", ["actor_rollout_ref.rollout.temperature"], _compose("actor_rollout_ref.rollout.temperature=-1")),
        ("mini-batch not dividing", ["ppo_mini_batch_size"], _compose("actor_rollout_ref.actor.ppo_mini_batch_size=7")),
        ("unknown suite", ["data.task_suite_name", "libero_object"], _compose("data.task_suite_name=libero_100")),
        ("unknown task id", ["data.task_ids", "0..9"], _compose("data.task_suite_name=libero_object", "data.task_ids=[99]")),
        ("init state out of range", ["data.train_init_states", "0-49"], _compose("data.train_init_states=0-80")),
        ("empty init-state range", ["data.train_init_states"], _compose("data.train_init_states=5-2")),
        ("empty prompt list", ["data.task_ids"], _compose("data.task_ids=[]")),
        ("unknown render mode", ["env.render_mode", "chunk"], _compose("env.render_mode=fast")),
        ("more pipeline stages than simulators", ["env.pipeline_stages"], _compose("env.pipeline_stages=9")),
        ("mistyped key (CLI)", ["n_sample"], _cli([f"{PATH}=/ckpt", "data.n_sample=4"], work)),
        ("missing checkpoint path (CLI, before Ray)", [PATH, "no such directory"], _cli([f"{PATH}={work}/nope", "data.task_suite_name=libero_object", "data.task_ids=[0]"], work)),
    ]  # fmt: skip


def checkpoint_cases(tiny: Path, work: Path) -> list[tuple[str, list[str], Callable[[], object], Path]]:
    """Cases on copies of a good tiny checkpoint; the 4th item is the directory to fingerprint."""
    from safetensors.torch import load_file, save_file

    from verl.models.registry import load_policy
    from verl.trainer.preflight import check_model_dir

    def copy(name: str) -> Path:
        dst = work / name
        shutil.copytree(tiny, dst)
        return dst

    no_weights = copy("no_weights")
    (no_weights / "model.safetensors").unlink()
    truncated = copy("truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    wrong_shape = copy("wrong_shape")
    state = load_file(str(wrong_shape / "model.safetensors"))
    state["language_model.lm_head.weight"] = torch.zeros(3, 3)
    save_file(state, str(wrong_shape / "model.safetensors"))
    no_stats = copy("no_stats")
    (no_stats / "dataset_statistics.json").unlink()
    config = json.loads((no_stats / "config.json").read_text())
    config["norm_stats"] = None
    (no_stats / "config.json").write_text(json.dumps(config))
    bad_json = copy("bad_config_json")
    (bad_json / "config.json").write_text('{"truncated": ')

    def check(path: Path, key: str | None = None) -> Callable[[], None]:
        return lambda: check_model_dir(str(path), PATH, key, "actor_rollout_ref.model.unnorm_key")

    return [
        ("checkpoint without safetensors", [PATH, "model.safetensors"], check(no_weights), no_weights),
        ("truncated safetensors", ["truncated/model.safetensors", "truncated"], check(truncated), truncated),
        ("truncated safetensors at load", ["truncated/model.safetensors"], lambda: load_policy("openvla-oft", truncated), truncated),
        ("wrong-shape safetensors", ["wrong_shape", "lm_head.weight"], lambda: load_policy("openvla-oft", wrong_shape), wrong_shape),
        ("no statistics, no norm_stats", [PATH, "norm_stats", "dataset_statistics.json"], check(no_stats), no_stats),
        ("wrong unnorm_key", ["actor_rollout_ref.model.unnorm_key", "libero_object"], check(tiny, "libero_99"), tiny),
        ("config.json not JSON", ["bad_config_json/config.json"], check(bad_json), bad_json),
    ]  # fmt: skip


def resume_cases(work: Path) -> list[tuple[str, list[str], Callable[[], object], Path]]:
    from verl.trainer.preflight import check_resume
    from verl.utils import checkpoint as ckpt
    from verl.utils.safe_load import save_extra_state

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(work / "pwned"),))

    def run_dir(name: str) -> Path:
        root = work / name
        path = ckpt.begin_checkpoint(root, 2)
        (path / "trainer_state.json").write_text("{}")
        save_extra_state({"scheduler": {}, "rng": {}}, path / "extra_state_rank0.pt")
        ckpt.commit_checkpoint(root, 2)
        return root

    partial = work / "partial_run"
    ckpt.begin_checkpoint(partial, 3)
    tampered = run_dir("tampered_extra")
    torch.save({"scheduler": {}, "rng": Payload()}, tampered / "global_step_2" / "extra_state_rank0.pt")
    tampered_meta = run_dir("tampered_metadata")
    (tampered_meta / "global_step_2" / "train_state").mkdir()
    (tampered_meta / "global_step_2" / "train_state" / ".metadata").write_bytes(pickle.dumps(Payload()))
    return [
        (".partial checkpoint to resume from", ["trainer.resume_from_path", "COMPLETE"], lambda: check_resume("resume_path", str(partial / "global_step_3.partial"), partial), partial),
        ("tampered train-state file", ["extra_state_rank0.pt", "tampered"], lambda: check_resume("auto", None, tampered), tampered),
        ("tampered checkpoint metadata", [".metadata", "tampered"], lambda: check_resume("auto", None, tampered_meta), tampered_meta),
    ]  # fmt: skip


def runtime_cases(work: Path) -> list[tuple[str, list[str], Callable[[], object]]]:
    from verl.trainer.ray_session import load_runtime_env

    bad = work / "bad_align.json"
    bad.write_text("{not json")

    def unsatisfiable() -> None:
        import ray

        from verl.single_controller import RayResourcePool

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            start = time.monotonic()
            try:
                RayResourcePool([1], use_gpu=False, num_cpus_per_worker=8).create()
            finally:
                if time.monotonic() - start > 30:
                    raise RuntimeError("took more than 30 s")
        finally:
            ray.shutdown()

    return [
        ("runtime env file missing", ["trainer.runtime_env"], lambda: load_runtime_env(str(work / "nope.json"))),
        ("runtime env not JSON", ["trainer.runtime_env"], lambda: load_runtime_env(str(bad))),
        ("resources the cluster lacks", ["trainer.num_cpus_per_worker", "8 CPU", "2 CPU"], unsatisfiable),
    ]  # fmt: skip


def simulator_cases() -> list[tuple[str, list[str], Callable[[object], object]]]:
    """Cases on a live EnvPool (passed in); each callable takes the pool."""
    from verl.envs import ResetRequest

    def non_finite(pool) -> None:
        pool.reset([(0, ResetRequest("libero_object", 0, 0))])
        actions = np.zeros((8, 7))
        actions[3, 2] = np.nan
        result = pool.step([(0, actions)])[0]
        if result.failed and not result.success:
            raise RuntimeError(f"episode failed: {result.error}")

    return [
        ("non-finite actions", ["finite"], non_finite),
        ("wrong-shape actions", ["shape", "[k >= 1, 7]"], lambda pool: pool.step([(0, np.zeros((8, 6)))])),
        ("unknown suite", ["libero_100"], lambda pool: pool.reset([(0, ResetRequest("libero_100", 0, 0))])),
        ("unknown task id", ["task", "12"], lambda pool: pool.reset([(0, ResetRequest("libero_object", 12, 0))])),
        ("unknown init state", ["init", "77"], lambda pool: pool.reset([(0, ResetRequest("libero_object", 0, 77))])),
    ]  # fmt: skip
