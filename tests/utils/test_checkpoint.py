"""Checkpoint directories: complete or absent, the newest complete one is found, resume settings resolve."""

from __future__ import annotations

import pytest

from verl.utils import checkpoint as ckpt


def _save(root, step, max_to_keep=None):
    path = ckpt.begin_checkpoint(root, step)
    (path / "trainer_state.json").write_text("{}")
    return ckpt.commit_checkpoint(root, step, max_to_keep=max_to_keep)


def test_killed_save_is_invisible_and_latest_is_the_newest_complete(tmp_path):
    _save(tmp_path, 2)
    _save(tmp_path, 10)
    # A save killed before its commit leaves only a partial directory behind.
    ckpt.begin_checkpoint(tmp_path, 12)
    assert [s for s, _ in ckpt.complete_checkpoints(tmp_path)] == [2, 10]
    assert ckpt.latest_checkpoint(tmp_path) == tmp_path / "global_step_10"
    assert (tmp_path / ckpt.LATEST_FILE).read_text() == "10"
    # The next save of that step starts from an empty directory.
    assert not any(ckpt.begin_checkpoint(tmp_path, 12).iterdir())


def test_max_to_keep_removes_the_oldest(tmp_path):
    for step in (1, 2, 3):
        _save(tmp_path, step, max_to_keep=2)
    assert [s for s, _ in ckpt.complete_checkpoints(tmp_path)] == [2, 3]


def test_resolve_resume_checkpoint_modes(tmp_path):
    assert ckpt.resolve_resume_checkpoint("auto", None, tmp_path) is None  # nothing saved yet
    _save(tmp_path, 4)
    newest = _save(tmp_path, 8)
    assert ckpt.resolve_resume_checkpoint("auto", None, tmp_path) == newest
    assert ckpt.resolve_resume_checkpoint("disable", None, tmp_path) is None
    older = tmp_path / "global_step_4"
    assert ckpt.resolve_resume_checkpoint("resume_path", str(older), tmp_path) == older


def test_resolve_resume_checkpoint_rejects_incomplete_paths(tmp_path):
    partial = ckpt.begin_checkpoint(tmp_path, 3)
    with pytest.raises(FileNotFoundError, match=r"trainer.resume_from_path=.*missing: COMPLETE"):
        ckpt.resolve_resume_checkpoint("resume_path", str(partial), tmp_path)
    done = _save(tmp_path, 5)
    with pytest.raises(FileNotFoundError, match="missing: train_state"):
        ckpt.resolve_resume_checkpoint("auto", None, tmp_path, required=("trainer_state.json", "train_state"))
    (done / "train_state").mkdir()
    assert ckpt.resolve_resume_checkpoint("auto", None, tmp_path, required=("train_state",)) == done
