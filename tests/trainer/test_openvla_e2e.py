"""The original OpenVLA through the real drivers on CPU: one GRPO step (2 Ray workers with FSDP2, the
real LIBERO simulator, one action of 7 autoregressive tokens per policy call) and val_only on its
checkpoint; SFT with model.vla=openvla on scripted demonstrations."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.trainer.test_sft import demo_dir, metrics_by_step, sft_overrides  # noqa: F401 (fixture)


@pytest.fixture(scope="module")
def openvla_ckpt(tmp_path_factory) -> Path:
    from verl.models.openvla_oft.configuration import tiny
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    path = tmp_path_factory.mktemp("tiny-openvla") / "ckpt"
    return write_tiny_checkpoint(path, tiny(num_actions_chunk=1), unnorm_key="libero_object")


def run_cli(module: str, args: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HYDRA_FULL_ERROR": "1"},
    )


def common(ckpt: Path, out: Path) -> list[str]:
    return [
        "actor_rollout_ref.model.vla=openvla",
        f"actor_rollout_ref.model.path={ckpt}",
        "data.task_suite_name=libero_object",
        "data.task_ids=[0,1]",
        "data.val_init_states=45",
        "env.max_steps=12",
        "env.num_workers=1",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
        "trainer.resume_mode=disable",
    ]


@pytest.mark.sim
@pytest.mark.ray
@pytest.mark.slow
def test_openvla_grpo_step_and_val_only(openvla_ckpt, tmp_path):
    out = tmp_path / "grpo"
    proc = run_cli(
        "verl.trainer.main_ppo",
        [
            *common(openvla_ckpt, out),
            "actor_rollout_ref.model.action_chunks_len=1",
            "data.train_init_states=0-5",
            "data.n_samples=4",
            "data.train_batch_size=2",
            "data.accuracy_lower_bound=0.0",  # the random tiny policy never succeeds
            "actor_rollout_ref.actor.ppo_mini_batch_size=8",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=2",
            "actor_rollout_ref.actor.traj_mini_batch_size=8",
            "actor_rollout_ref.actor.optim.lr=1e-4",
            # The random tiny policy never succeeds, so every advantage is 0: an entropy bonus gives the
            # teacher-forced pass a gradient to check.
            "actor_rollout_ref.actor.entropy_coeff=0.01",
            "actor_rollout_ref.actor.fsdp_config.mixed_precision=fp32",
            "trainer.n_gpus_per_node=2",
            "trainer.total_training_steps=1",
            "trainer.save_freq=1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
        ],
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [m] = metrics_by_step(out).values()
    assert m["actor/grad_norm"] > 0 and "actor/pg_loss" in m, m
    assert m["rollout/log_prob_gap_max"] < 1e-5  # the actor's teacher-forced pass == the cached sampling
    assert "train_verify_score/libero_object" in m
    actor = out / "global_step_1" / "actor"

    from verl.models.registry import load_policy

    policy = load_policy("openvla", actor)
    assert (policy.chunk_size, policy.tokens_per_step) == (1, 7)

    val = tmp_path / "val"
    proc = run_cli("verl.trainer.main_ppo", [*common(actor, val), "trainer.val_only=true"])
    assert proc.returncode == 0, proc.stderr[-4000:]
    episodes = [json.loads(line) for line in (val / "val_episodes.jsonl").read_text().splitlines()]
    assert sorted((e["task_id"], e["init_state_id"]) for e in episodes) == [(0, 45), (1, 45)]
    assert all(e["env_error"] == "" for e in episodes)
    [result] = metrics_by_step(val).values()
    assert result["val/episodes"] == 2 and "val/test_score/libero_object" in result


@pytest.mark.ray
@pytest.mark.slow
def test_openvla_sft_learns_the_action_tokens(demo_dir, tmp_path, ray_local):  # noqa: F811
    """model.vla=openvla with model.init=tiny: one action per sample, 7 teacher-forced tokens."""
    from verl.models.registry import load_policy
    from verl.trainer.config.sft import compose_sft_config
    from verl.trainer.main_sft import run_sft

    out = tmp_path / "fit"
    cfg = compose_sft_config(
        sft_overrides(demo_dir, out, steps=40, workers=1)
        + ["model.vla=openvla", "trainer.test_freq=-1", "trainer.eval_last=false"]
        + ["optim.lr=2e-3", "optim.lr_warmup_steps=5", "augment.random_shift_px=0"]
    )
    run_sft(cfg)
    m = metrics_by_step(out)
    assert m[0]["data/samples"] == 14 + 12 + 13 + 11 + 15  # one sample per step of the demos
    assert m[10]["train/loss"] > 4.0
    assert m[40]["train/loss"] < 0.7 * math.log(256)
    policy = load_policy("openvla", out / "global_step_40" / "actor")
    assert policy.chunk_size == 1 and policy.config.num_actions_chunk == 1
