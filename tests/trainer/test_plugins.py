"""A simulator and a policy defined entirely under tests/plugins/ (nothing in verl/ names them) run one
GRPO step and a val_only evaluation through the real CLI driver, Ray workers with FSDP2 and the
simulator pool: the extension points are "a package plus one registration"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = "trainer.plugins=[tests.plugins.toy_sim,tests.plugins.toy_policy]"


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HYDRA_FULL_ERROR": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=ROOT,
    )


def common(ckpt: Path, out: Path) -> list[str]:
    return [
        PLUGINS,
        "env.name=toy",
        "env.toy.success_radius=0.35",  # the simulator's own config node
        "env.num_workers=2",
        "actor_rollout_ref.model.vla=toy-mlp",
        f"actor_rollout_ref.model.path={ckpt}",
        "data.task_suite_name=toy_reach",
        "data.train_init_states=0-5",
        "data.val_init_states=6-7",
        "trainer.device=cpu",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
        "trainer.resume_mode=disable",
    ]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_plugin_simulator_and_policy_train_and_evaluate(tmp_path):
    from tests.plugins.toy_policy import write_toy_checkpoint

    ckpt = write_toy_checkpoint(tmp_path / "toy-init")
    out = tmp_path / "grpo"
    proc = run_cli(
        [
            *common(ckpt, out),
            "data.n_samples=8",
            "data.train_batch_size=2",
            "data.max_sampling_rounds=4",
            "actor_rollout_ref.actor.ppo_mini_batch_size=16",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
            "actor_rollout_ref.actor.optim.lr=1e-2",
            "actor_rollout_ref.actor.fsdp_config.mixed_precision=fp32",
            "trainer.n_gpus_per_node=2",
            "trainer.total_training_steps=1",
            "trainer.save_freq=1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    [step] = metrics(out)
    # A real learning signal: kept groups had both outcomes, so advantages were non-zero.
    assert step["sampling/kept_groups"] >= 2
    assert step["critic/advantages/max"] > 0 > step["critic/advantages/min"]
    assert step["actor/grad_norm"] > 0
    assert "train_verify_score/toy_reach" in step
    # Recomputed log-probs equal the sampling pass's (same policy contract on both sides).
    assert step["rollout/log_prob_gap_max"] < 1e-5
    saved = out / "global_step_1" / "actor"
    before, after = load_file(str(ckpt / "model.safetensors")), load_file(str(saved / "model.safetensors"))
    assert before.keys() == after.keys()
    assert any((before[k] - after[k]).abs().max() > 0 for k in before)

    # val_only on the trained checkpoint: every validation prompt once, videos of the primary camera.
    val = tmp_path / "val"
    proc = run_cli(
        [
            *common(saved, val),
            "trainer.val_only=true",
            "actor_rollout_ref.rollout.val_videos_per_task=1",
            "trainer.n_gpus_per_node=1",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    episodes = [json.loads(line) for line in (val / "val_episodes.jsonl").read_text().splitlines()]
    assert sorted((e["task_id"], e["init_state_id"]) for e in episodes) == [(0, 6), (0, 7), (1, 6), (1, 7)]
    assert all(e["env_error"] == "" for e in episodes)
    [val_metrics] = metrics(val)
    assert "val/test_score/toy_reach" in val_metrics
    assert len(list((val / "videos" / "step_0").glob("*.mp4"))) == 2


def test_plugin_config_errors_name_the_key():
    from verl.trainer.config.compose import compose_config
    from verl.utils.config_values import ConfigError

    base = [PLUGINS, "env.name=toy", "actor_rollout_ref.model.vla=toy-mlp", "actor_rollout_ref.model.path=/x"]
    with pytest.raises(Exception, match="env.toy.succes_radius"):
        compose_config([*base, "env.toy.succes_radius=0.3"], validate=False)
    with pytest.raises(ConfigError, match=r"env.toy.success_radius=-1.0; allowed: a number > 0"):
        compose_config([*base, "env.toy.success_radius=-1", "data.task_suite_name=toy_reach"])
    with pytest.raises(ConfigError, match="toy_reach"):
        compose_config([*base, "data.task_suite_name=libero_10"])
