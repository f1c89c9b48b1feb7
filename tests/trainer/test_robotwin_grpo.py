"""One GRPO step and a val_only run through the real CLI driver on RoboTwin 2.0 (stack_blocks_two, the
test-only stand-in Piper, raster shader, clean configuration), with the tiny OpenVLA-OFT policy at
RoboTwin's shapes: chunks of 25 x 14 (350 action tokens), BOUNDS statistics, 14-d proprio."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.robotwin, pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "envs" / "robotwin_standin"


@pytest.fixture(scope="module")
def tiny_twin_ckpt(tmp_path_factory) -> Path:
    setup = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup_robotwin.sh")], capture_output=True, text=True
    )
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-4000:]
    from verl.models.openvla_oft.configuration import tiny
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    config = tiny(num_actions_chunk=25, action_dim=14, use_proprio=True)
    config.proprio_dim = 14  # RoboTwin's joint targets [left 6 + gripper, right 6 + gripper]
    return write_tiny_checkpoint(
        tmp_path_factory.mktemp("twin") / "ckpt", config, unnorm_key="stack_blocks_two_1k"
    )


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
        timeout=1200,
        env=env,
        cwd=ROOT,
    )


def common(ckpt: Path, out: Path) -> list[str]:
    return [
        "env.name=robotwin2",
        f"env.robotwin2.assets_root={STANDIN}",
        "env.robotwin2.shader=default",
        "env.robotwin2.point_light_shadows=false",
        "env.max_steps=50",  # two chunks per episode
        "env.num_workers=2",
        "env.reset_timeout_s=300",
        "env.step_timeout_s=120",
        f"actor_rollout_ref.model.path={ckpt}",
        "actor_rollout_ref.model.image_pipeline=crop_resize",
        "data.task_suite_name=robotwin2_stack_blocks_two",
        "trainer.device=cpu",
        "trainer.logger=[console,jsonl]",
        f"trainer.default_local_dir={out}",
        "trainer.resume_mode=disable",
    ]


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_grpo_step_and_val_only_on_robotwin(tiny_twin_ckpt, tmp_path):
    out = tmp_path / "grpo"
    proc = run_cli(
        [
            *common(tiny_twin_ckpt, out),
            "data.train_init_states=0-3",
            "data.val_init_states=1000-1001",
            "data.n_samples=2",
            "data.train_batch_size=1",
            # The random tiny policy never succeeds: keep all-fail groups so the step has data.
            "data.accuracy_lower_bound=0.0",
            "actor_rollout_ref.actor.ppo_mini_batch_size=2",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
            "actor_rollout_ref.actor.traj_mini_batch_size=2",
            "trainer.n_gpus_per_node=1",
            "trainer.total_training_steps=1",
            "trainer.save_freq=1",
            "trainer.test_freq=-1",
            "trainer.val_before_train=false",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    [step] = metrics(out)
    assert "train_verify_score/robotwin2_stack_blocks_two" in step
    assert step["rollout/log_prob_gap_max"] < 1e-4

    val = tmp_path / "val"
    saved = out / "global_step_1" / "actor"
    proc = run_cli(
        [
            *common(saved, val),
            "data.val_init_states=1000-1001",
            "trainer.val_only=true",
            "trainer.n_gpus_per_node=1",
        ]
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    episodes = [json.loads(line) for line in (val / "val_episodes.jsonl").read_text().splitlines()]
    assert sorted(e["init_state_id"] for e in episodes) == [1000, 1001]
    assert all(e["env_error"] == "" for e in episodes), episodes
    assert "val/test_score/robotwin2_stack_blocks_two" in metrics(val)[0]
