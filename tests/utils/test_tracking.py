import json
import time

import pytest

from verl.utils.tracking import Tracking, redact


def test_console_and_jsonl(tmp_path, capsys):
    tracker = Tracking("proj", "exp", ["console", "jsonl"], tmp_path)
    tracker.log({"actor/pg_loss": 0.5, "val/test_score/all": 1}, step=3)
    tracker.log({"actor/pg_loss": float("nan")}, step=4)
    tracker.finish()
    out = capsys.readouterr().out
    assert "step:3" in out and "actor/pg_loss:0.5" in out
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == 3 and lines[0]["actor/pg_loss"] == 0.5 and lines[0]["val/test_score/all"] == 1
    assert lines[1]["actor/pg_loss"] == "nan"


def test_wandb_offline_writes_run_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    tracker = Tracking(
        "proj", "exp", ["wandb"], tmp_path, config={"trainer": {"x": 1}, "WANDB_API_KEY": "s3cret"}
    )
    assert tracker.loggers["wandb"].mode == "offline"
    tracker.log({"train_verify_score/all": 0.25}, step=1)
    tracker.finish()
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    data_files = list(runs[0].glob("*.wandb"))
    assert data_files, "offline run has no .wandb data file"
    # wandb-core writes the file from its own process; give it a moment to flush after finish().
    deadline = time.time() + 20
    while b"train_verify_score/all" not in data_files[0].read_bytes() and time.time() < deadline:
        time.sleep(0.2)
    raw = data_files[0].read_bytes()
    assert b"train_verify_score/all" in raw and b"WANDB_API_KEY" in raw
    assert b"s3cret" not in raw  # the secret was redacted before it reached WandB


def test_unknown_backend_named():
    with pytest.raises(ValueError, match="tensorboard"):
        Tracking("p", "e", ["console", "tensorboard"], "/tmp/unused")


def test_redact_nested():
    cfg = {"env_vars": {"WANDB_API_KEY": "abc", "NCCL_DEBUG": "WARN"}, "list": [{"hf_token": "x"}]}
    assert redact(cfg) == {
        "env_vars": {"WANDB_API_KEY": "***", "NCCL_DEBUG": "WARN"},
        "list": [{"hf_token": "***"}],
    }
