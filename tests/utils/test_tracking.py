import json
import sys
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
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "s3cret-value-42")
    monkeypatch.setattr(sys, "argv", ["train.py", "trainer.note=s3cret-value-42"])
    config = {"trainer": {"x": 1, "note": "key=s3cret-value-42"}, "model": {"action_token_len": 7}}
    tracker = Tracking("proj", "exp", ["wandb"], tmp_path, config=config)
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
    assert b"train_verify_score/all" in raw and b"action_token_len" in raw
    assert b"s3cret-value-42" not in raw  # the secret was redacted before it reached WandB


def test_unknown_backend_named():
    with pytest.raises(ValueError, match="tensorboard"):
        Tracking("p", "e", ["console", "tensorboard"], "/tmp/unused")


def test_redact_by_value_not_by_key_name(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-fake-key-0123456789")
    monkeypatch.setenv("MY_PASSWORD", "short")  # below MIN_SECRET_LEN: not scrubbed everywhere
    cfg = {
        "model": {"action_token_len": 7, "tokenizer": "llama", "note": "short"},
        "env_vars": {"NCCL_DEBUG": "WARN", "copied": "wandb-fake-key-0123456789"},
        "list": [{"x": "prefix:wandb-fake-key-0123456789:suffix"}],
        "wandb-fake-key-0123456789": 1,
    }
    assert redact(cfg) == {
        "model": {"action_token_len": 7, "tokenizer": "llama", "note": "short"},
        "env_vars": {"NCCL_DEBUG": "WARN", "copied": "***"},
        "list": [{"x": "prefix:***:suffix"}],
        "***": 1,
    }


def test_secret_never_reaches_console_or_jsonl(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_TOKEN", "hf_fake_secret_abcdef")
    tracker = Tracking("proj", "exp", ["console", "jsonl"], tmp_path)
    tracker.log({"note/hf_fake_secret_abcdef": 1.0, "msg": "token hf_fake_secret_abcdef"}, step=1)
    tracker.finish()
    assert "hf_fake_secret_abcdef" not in capsys.readouterr().out
    assert "hf_fake_secret_abcdef" not in (tmp_path / "metrics.jsonl").read_text()


def test_log_records_are_scrubbed(monkeypatch, caplog):
    import logging

    from verl.utils.secrets import install_log_scrubber

    monkeypatch.setenv("WANDB_API_KEY", "wandb-fake-key-0123456789")
    install_log_scrubber()
    logging.getLogger("verl.test").warning("config holds %s", "wandb-fake-key-0123456789")
    assert "wandb-fake-key-0123456789" not in caplog.text and "config holds ***" in caplog.text
