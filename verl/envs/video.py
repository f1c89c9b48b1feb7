"""Rollout videos: mp4 files (imageio/ffmpeg) named by suite, task, initial state and outcome."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

import numpy as np


def video_name(suite: str, task_id: int, init_state_id: int, success: bool, tag: str = "") -> str:
    """File name such as 'libero_goal_task03_init17_success_step100.mp4' (tag appended when given)."""
    outcome = "success" if success else "failure"
    suffix = f"_{tag}" if tag else ""
    return f"{suite}_task{task_id:02d}_init{init_state_id:02d}_{outcome}{suffix}.mp4"


def save_video(frames: Sequence[np.ndarray], path: str, fps: int = 30) -> str:
    """Write uint8 frames [H, W, 3] to an mp4 at `path` atomically (temp file, then rename); returns path."""
    if len(frames) == 0:
        raise ValueError("frames is empty; a video needs at least one frame")
    first = np.asarray(frames[0])
    if first.dtype != np.uint8 or first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(f"frames must be uint8 [H, W, 3], got {first.dtype} {list(first.shape)}")
    import imageio.v2 as imageio

    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=directory)
    os.close(fd)
    try:
        # macro_block_size=1 keeps odd sizes as they are instead of resizing them.
        with imageio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.asarray(frame, dtype=np.uint8))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
