"""The main job's script: its default configuration is a valid GRPO config, and its statistics."""

import importlib.util
from pathlib import Path

import pytest

from verl.trainer.config.compose import compose_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo():
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_run_composes_to_a_valid_config(demo, tmp_path):
    args = demo.parse_args([])
    cfg = compose_config(demo.overrides(args, tmp_path / "run"))
    assert (Path(cfg.actor_rollout_ref.model.path) / "config.json").is_file()  # the shipped checkpoint
    assert cfg.actor_rollout_ref.rollout.temperature == 1.6
    assert (cfg.actor_rollout_ref.actor.clip_ratio_low, cfg.actor_rollout_ref.actor.clip_ratio_high) == (
        0.2,
        0.28,
    )
    assert cfg.data.filter_accuracy and cfg.trainer.val_before_train
    # Held-out evaluation: at least 100 episodes, disjoint from the training initial states.
    tasks = len(args.tasks.split(","))
    assert tasks * 10 * cfg.data.val_n_samples >= 100
    assert (cfg.data.train_init_states, cfg.data.val_init_states) == ("0-39", "40-49")
    assert (
        cfg.actor_rollout_ref.actor.ppo_mini_batch_size * args.mini_batches == args.prompts * args.n_samples
    )


def test_bad_mini_batch_split_is_refused(demo, tmp_path):
    with pytest.raises(SystemExit, match="--mini-batches 3 must divide"):
        demo.overrides(demo.parse_args(["--mini-batches", "3"]), tmp_path)


def test_wilson_interval(demo):
    lo, hi = demo.wilson(48, 100)
    assert round(lo, 3) == 0.385 and round(hi, 3) == 0.577
    assert demo.wilson(0, 0) == (0.0, 0.0)
    assert demo.wilson(0, 10)[0] == 0.0
