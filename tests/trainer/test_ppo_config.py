"""The structured config: defaults, CLI printing, and errors that name the field."""

import subprocess
import sys

import pytest
from hydra.errors import ConfigCompositionException

from verl.trainer.config import ConfigError
from verl.trainer.config.compose import compose_config

BASE = ["actor_rollout_ref.model.path=/ckpt"]


def test_defaults_follow_the_simplevla_recipe():
    c = compose_config(BASE)
    assert c.actor_rollout_ref.actor.clip_ratio_low == 0.2
    assert c.actor_rollout_ref.actor.clip_ratio_high == 0.28
    assert c.actor_rollout_ref.rollout.temperature == 1.6
    assert c.data.n_samples == 8 and c.data.train_batch_size == 64
    assert (c.data.accuracy_lower_bound, c.data.accuracy_upper_bound) == (0.1, 0.9)
    assert c.actor_rollout_ref.actor.optim.lr == 5e-6
    assert c.trainer.val_only is False


def test_override_syntax_of_launch_scripts():
    c = compose_config(
        BASE
        + [
            "actor_rollout_ref.actor.optim.lr=1e-5",
            "data.task_ids=[0,3]",
            "trainer.logger=[console,wandb]",
            "env.max_steps=512",
        ]
    )
    assert c.actor_rollout_ref.actor.optim.lr == 1e-5
    assert c.data.task_ids == [0, 3]
    assert c.trainer.logger == ["console", "wandb"]
    assert c.env.max_steps == 512


def test_unknown_key_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(BASE + ["actor_rollout_ref.actor.clip_ratio_hi=0.3"])
    assert "clip_ratio_hi" in str(err.value) + str(err.value.__cause__)


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigCompositionException) as err:
        compose_config(BASE + ["data.n_samples=eight"])
    assert "n_samples" in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize(
    "override,field,allowed",
    [
        (
            "actor_rollout_ref.actor.loss_agg_mode=sum",
            "actor_rollout_ref.actor.loss_agg_mode",
            "seq-mean-token-mean",
        ),
        ("data.task_suite_name=libero_100", "data.task_suite_name", "libero_spatial"),
        ("actor_rollout_ref.rollout.temperature=0", "actor_rollout_ref.rollout.temperature", "> 0"),
        ("data.accuracy_lower_bound=0.95", "accuracy_lower_bound", "lower <= upper"),
        ("actor_rollout_ref.rollout.weights_dtype=fp16", "actor_rollout_ref.rollout.weights_dtype", "bf16"),
        ("trainer.resume_mode=latest", "trainer.resume_mode", "auto"),
        ("data.refill=half", "data.refill", "missing"),
        ("actor_rollout_ref.model.vla=openvla-9000", "actor_rollout_ref.model.vla", "openvla-oft"),
        ("data.train_init_states=5-2", "data.train_init_states", "ranges"),
        ("actor_rollout_ref.actor.ppo_mini_batch_size=100", "ppo_mini_batch_size", "divide"),
        ("trainer.logger=[console,tensorboard]", "trainer.logger", "wandb"),
    ],
)
def test_bad_values_name_field_and_allowed_values(override, field, allowed):
    with pytest.raises((ConfigError, ValueError)) as err:
        compose_config(BASE + [override])
    assert field in str(err.value) and allowed in str(err.value)


def test_missing_model_path_is_an_error():
    with pytest.raises(ConfigError, match="actor_rollout_ref.model.path"):
        compose_config([])


def test_cli_prints_the_whole_tree():
    out = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for key in ("clip_ratio_high: 0.28", "temperature: 1.6", "n_samples: 8", "val_only: false", "env:"):
        assert key in out


def test_cli_unknown_key_fails_naming_it():
    proc = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", "data.no_such_key=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "no_such_key" in proc.stderr
