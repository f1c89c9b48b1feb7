"""ManiSkill3 through the real CLI driver: one GRPO step (Ray worker, FSDP2, the tiny OpenVLA-OFT
policy, ManiSkill simulator workers), its checkpoint, and a val_only run on held-out seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.maniskill, pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def write_maniskill_checkpoint(path: Path) -> Path:
    """A random tiny OpenVLA-OFT checkpoint whose action statistics cover ManiSkill's action range."""
    from verl.envs.maniskill import action_statistics
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    write_tiny_checkpoint(path, unnorm_key="maniskill")
    statistics = {"maniskill": action_statistics()}
    (path / "dataset_statistics.json").write_text(json.dumps(statistics, indent=2))
    config = json.loads((path / "config.json").read_text())
    config["norm_stats"] = statistics
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *args],
        capture_output=True,
        text=True,
        timeout=1200,
        env=env,
        cwd=ROOT,
    )


def common(ckpt: Path, out: Path) -> list[str]:
    return [
        "env.name=maniskill",
        "env.maniskill.camera_size=64",
        "env.max_steps=16",
        "env.num_workers=2",
        f"actor_rollout_ref.model.path={ckpt}",
        "data.task_suite_name=maniskill",
        "data.task_ids=[0]",
        "data.train_init_states=0-5",
        "data.val_init_states=90000-90001",
        "trainer.device=cpu",
        "trainer.n_gpus_per_node=1",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
        "trainer.resume_mode=disable",
    ]


def test_grpo_step_and_val_only(tmp_path):
    ckpt = write_maniskill_checkpoint(tmp_path / "tiny")
    out = tmp_path / "grpo"
    proc = run_cli(
        [
            *common(ckpt, out),
            "data.n_samples=4",
            "data.train_batch_size=2",
            # The random policy never succeeds: keep all-fail groups so the step has data.
            "data.accuracy_lower_bound=0.0",
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
            "trainer.total_training_steps=1",
            "trainer.save_freq=1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [step] = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "train_verify_score/maniskill" in step and "actor/pg_loss" in step
    assert step["rollout/log_prob_gap_max"] < 1e-4
    saved = out / "global_step_1" / "actor"
    assert json.loads((saved / "dataset_statistics.json").read_text()).keys() == {"maniskill"}

    val = tmp_path / "val"
    proc = run_cli(
        [*common(saved, val), "trainer.val_only=true", "actor_rollout_ref.rollout.val_videos_per_task=1"]
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    episodes = [json.loads(line) for line in (val / "val_episodes.jsonl").read_text().splitlines()]
    assert sorted((e["task_id"], e["init_state_id"]) for e in episodes) == [(0, 90000), (0, 90001)]
    assert all(e["env_error"] == "" for e in episodes)
    assert all(e["steps"] == 16 or e["success"] for e in episodes), episodes
    assert len(list((val / "videos" / "step_0").glob("*.mp4"))) == 1
