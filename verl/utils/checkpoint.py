"""Checkpoint directories that are complete or absent, never half-written.

A checkpoint is written into `<root>/global_step_<k>.partial/` by every rank, then the driver marks it
complete and renames it to `<root>/global_step_<k>/` (a rename is atomic on POSIX file systems) and
updates `latest_checkpointed_iteration.txt` atomically. Resume looks only at complete directories, so a
run killed mid-save resumes from the previous checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch

STEP_DIR = re.compile(r"^global_step_(\d+)$")
COMPLETE_MARKER = "COMPLETE"
LATEST_FILE = "latest_checkpointed_iteration.txt"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True))


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def partial_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"global_step_{step}.partial"


def final_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"global_step_{step}"


def begin_checkpoint(root: str | Path, step: int) -> Path:
    """A fresh, empty partial directory for step `step` (a stale one from a killed save is removed)."""
    path = partial_dir(root, step)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def commit_checkpoint(root: str | Path, step: int, max_to_keep: int | None = None) -> Path:
    """Mark the partial directory complete, move it into place and update the latest pointer."""
    src, dst = partial_dir(root, step), final_dir(root, step)
    atomic_write_text(src / COMPLETE_MARKER, str(step))
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
    atomic_write_text(Path(root) / LATEST_FILE, str(step))
    if max_to_keep is not None and max_to_keep > 0:
        for old in complete_checkpoints(root)[:-max_to_keep]:
            shutil.rmtree(old[1], ignore_errors=True)
    return dst


def complete_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every complete checkpoint under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        m = STEP_DIR.match(child.name)
        if m and child.is_dir() and (child / COMPLETE_MARKER).is_file():
            found.append((int(m.group(1)), child))
    return sorted(found)


def latest_checkpoint(root: str | Path) -> Path | None:
    found = complete_checkpoints(root)
    return found[-1][1] if found else None


def resolve_resume_checkpoint(
    resume_mode: str, resume_from_path: str | None, root: str | Path, required: tuple[str, ...] = ()
) -> Path | None:
    """The checkpoint a run continues from, or None to start fresh.

    `resume_mode` is `trainer.resume_mode`: "disable" starts fresh, "auto" takes the newest complete
    checkpoint under `root` (none yet: start fresh), "resume_path" takes `resume_from_path`, which must be
    a complete checkpoint holding every entry of `required`.
    """
    if resume_mode == "disable":
        return None
    if resume_mode == "resume_path":
        path = Path(str(resume_from_path))
    else:
        path = latest_checkpoint(root)
        if path is None:
            return None
    missing = [name for name in (COMPLETE_MARKER, *required) if not (path / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"trainer.resume_from_path={str(path)!r} is not a complete checkpoint (missing: "
            f"{', '.join(missing)}); point trainer.resume_from_path at one, or set "
            "trainer.resume_mode=disable to start over"
        )
    return path


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def experiment_run_id(root: str | Path) -> str:
    """A tracker run id stored with the experiment (`wandb_run_id.txt`), so a resumed run continues the
    same WandB run."""
    path = Path(root) / "wandb_run_id.txt"
    if path.is_file():
        return path.read_text().strip()
    run_id = uuid.uuid4().hex[:12]
    atomic_write_text(path, run_id)
    return run_id
