"""End to end on CPU: 2 Ray workers with FSDP2 (gloo), the tiny OpenVLA-OFT policy and the real LIBERO
simulator. GRPO steps, a checkpoint, a SIGKILLed run that resumes at the right step with the same data
order, val_only on the checkpoint, and a 2-node run on `ray.cluster_utils.Cluster`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.sim, pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", unnorm_key="libero_object")


def overrides(ckpt: Path, out: Path, steps: int = 2, workers: int = 2) -> list[str]:
    return [
        f"actor_rollout_ref.model.path={ckpt}",
        "data.task_suite_name=libero_object",
        "data.task_ids=[0,1]",
        "data.train_init_states=0-5",
        "data.val_init_states=45",
        "data.n_samples=4",
        "data.train_batch_size=2",
        # The random tiny policy never succeeds: keep all-fail groups so every step has data.
        "data.accuracy_lower_bound=0.0",
        "actor_rollout_ref.actor.ppo_mini_batch_size=8",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
        "actor_rollout_ref.actor.traj_mini_batch_size=4",
        "env.max_steps=16",
        "env.num_workers=1",
        f"trainer.n_gpus_per_node={workers}",
        f"trainer.total_training_steps={steps}",
        "trainer.save_freq=1",
        "trainer.test_freq=-1",
        "trainer.val_before_train=false",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
    ]


def run_cli(args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )


def prompts_by_step(out: Path) -> dict[int, list]:
    records = [json.loads(line) for line in (out / "prompts.jsonl").read_text().splitlines()]
    return {r["step"]: r["prompts"] for r in records}


def metrics_by_step(out: Path) -> dict[int, dict]:
    return {r["step"]: r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())}


def test_grpo_checkpoint_kill_resume_and_val_only(tiny_ckpt, tmp_path):
    # Reference run: 2 uninterrupted steps.
    ref = tmp_path / "ref"
    proc = run_cli(overrides(tiny_ckpt, ref))
    assert proc.returncode == 0, proc.stderr[-4000:]
    ref_metrics = metrics_by_step(ref)
    assert set(ref_metrics) == {1, 2}
    for step in (1, 2):
        m = ref_metrics[step]
        for key in (
            "actor/pg_loss",
            "actor/pg_clipfrac",
            "actor/ppo_kl",
            "actor/grad_norm",
            "timing/gen",
            "timing/update_actor",
            "train_verify_score/all",
            "train_verify_score/libero_object",
            "perf/env_steps_per_s",
        ):
            assert key in m, key
        # Per-task training success: the step's rollouts cover at least one of tasks 0 and 1.
        assert any(f"train_verify_score/libero_object/task_{t}" in m for t in (0, 1))
        assert m["rollout/bytes_per_decision_step"] < 150_000
        # The images (2 decision steps x ~26 KB) stay in the object store; the driver holds refs and
        # the per-token tensors (~3 KB a trajectory).
        assert m["perf/driver_bytes_per_trajectory"] < 10_000
        assert m["rollout/image_bytes_per_decision_step"] > 5_000
    assert (ref / "global_step_2" / "COMPLETE").is_file()
    actor_dir = ref / "global_step_2" / "actor"
    for name in (
        "config.json",
        "model.safetensors",
        "dataset_statistics.json",
        "preprocessor_config.json",
        "tokenizer.json",
    ):
        assert (actor_dir / name).is_file(), name

    # The checkpoint loads with the model's own from_pretrained.
    from verl.models.registry import load_policy

    policy = load_policy("openvla-oft", actor_dir)
    assert policy.config.num_actions_chunk == 8

    # A run killed with SIGKILL right after its first checkpoint, then restarted with the same command.
    run = tmp_path / "killed"
    args = overrides(tiny_ckpt, run)
    victim = subprocess.Popen(
        [sys.executable, "-m", "verl.trainer.main_ppo", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    while not (run / "global_step_1" / "COMPLETE").is_file():
        assert victim.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint within 600 s"
        time.sleep(0.5)
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=60)
    assert not (run / "global_step_2").exists()

    proc = run_cli(args)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = proc.stdout + proc.stderr
    assert "resumed from" in log and "at step 1" in log
    assert (run / "global_step_2" / "COMPLETE").is_file()
    # Same data order as the uninterrupted run, for the step before and the step after the kill.
    assert prompts_by_step(run)[1] == prompts_by_step(ref)[1]
    assert prompts_by_step(run)[2] == prompts_by_step(ref)[2]
    # Same weights, optimiser moments and scheduler state as the uninterrupted run, at both steps.
    from verl.utils.checkpoint_diff import max_abs_diff

    for step in (1, 2):
        diff = max_abs_diff(ref / f"global_step_{step}", run / f"global_step_{step}")
        assert diff == {"weights": 0.0, "optimizer": 0.0, "scheduler": 0.0}, (step, diff)
    assert not list(run.glob("*.partial"))

    # val_only evaluates the checkpoint and exits.
    val_out = tmp_path / "val"
    proc = run_cli(overrides(actor_dir, val_out) + ["trainer.val_only=true"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    val = metrics_by_step(val_out)[0]
    assert val["val/episodes"] == 2 and "val/test_score/libero_object/task_1" in val
    videos = list((val_out / "videos").rglob("*.mp4"))
    assert len(videos) == 2 and all(
        "libero_object_task0" in v.name or "libero_object_task1" in v.name for v in videos
    )
    assert not list(val_out.glob("global_step_*"))


def test_two_node_cluster(tiny_ckpt, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from verl.trainer.config.compose import compose_config
    from verl.trainer.ppo.ray_trainer import RayTrainer

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        ray.init(address=cluster.address, runtime_env={"env_vars": {"MUJOCO_GL": os.environ["MUJOCO_GL"]}})
        out = tmp_path / "multinode"
        # The random tiny policy never succeeds, so every advantage is zero: an entropy bonus gives the
        # update a gradient on both nodes. (Exact 1-vs-2-rank equality with non-zero advantages is
        # tests/workers/test_multi_rank_update.py.)
        cfg = compose_config(
            overrides(tiny_ckpt, out, steps=1, workers=1)
            + ["trainer.nnodes=2", "actor_rollout_ref.actor.entropy_coeff=0.01"]
        )
        trainer = RayTrainer(cfg)
        try:
            placement = trainer.wg.call("ping")
            trainer.fit()
        finally:
            trainer.shutdown()
        assert [p["rank"] for p in placement] == [0, 1]
        assert len({p["node_id"] for p in placement}) == 2  # one worker on each node
        assert (out / "global_step_1" / "COMPLETE").is_file()
        assert metrics_by_step(out)[1]["actor/grad_norm"] > 0.0
        from safetensors.torch import load_file

        before = load_file(tiny_ckpt / "model.safetensors")
        after = load_file(out / "global_step_1" / "actor" / "model.safetensors")
        assert any(not torch.equal(before[k], after[k]) for k in before)  # the update changed the weights
    finally:
        ray.shutdown()
        cluster.shutdown()
