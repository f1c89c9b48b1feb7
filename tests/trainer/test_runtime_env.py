import json

import pytest

from verl.trainer.ray_session import load_runtime_env


def test_align_json_env_vars_reach_runtime_env(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    path = tmp_path / "align.json"
    path.write_text(json.dumps({"env_vars": {"NCCL_DEBUG": "INFO", "WANDB_API_KEY": "abc123"}}))
    env = load_runtime_env(str(path))
    assert env["env_vars"]["NCCL_DEBUG"] == "INFO"
    assert env["env_vars"]["WANDB_API_KEY"] == "abc123"
    assert env["env_vars"]["TOKENIZERS_PARALLELISM"] == "true"


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
