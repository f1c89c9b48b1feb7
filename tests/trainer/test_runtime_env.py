import json

import pytest

from verl.trainer.ray_session import load_runtime_env, split_driver_only


def test_align_json_env_vars_reach_runtime_env_but_the_wandb_key_stays_with_the_driver(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    path = tmp_path / "align.json"
    path.write_text(json.dumps({"env_vars": {"NCCL_DEBUG": "INFO", "WANDB_API_KEY": "abc123"}}))
    env, driver_only = split_driver_only(load_runtime_env(str(path)))
    assert env["env_vars"]["NCCL_DEBUG"] == "INFO"
    assert env["env_vars"]["TOKENIZERS_PARALLELISM"] == "true"
    assert "WANDB_API_KEY" not in env["env_vars"] and driver_only == {"WANDB_API_KEY": "abc123"}


def test_ray_authentication_is_left_to_ray(monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert "RAY_AUTH_MODE" not in load_runtime_env("")["env_vars"]


def test_placeholder_key_is_dropped(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    env = load_runtime_env("align.json")  # the repository's template holds a placeholder
    assert "WANDB_API_KEY" not in env["env_vars"]


def test_missing_and_invalid_files_name_the_field(tmp_path):
    with pytest.raises(FileNotFoundError, match="trainer.runtime_env"):
        load_runtime_env(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="trainer.runtime_env") as err:
        load_runtime_env(str(bad))
    assert "not json" not in str(err.value)  # file contents (possibly secrets) are not echoed
