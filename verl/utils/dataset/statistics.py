"""Dataset statistics, no-op filtering and action chunking for demonstration episodes.

Statistics follow OpenVLA-OFT's ``dataset_statistics.json``: per-dimension mean, std (population),
max, min, q01, q99 of every step's action and proprio, a normalisation mask on the action
(``[True] * 6 + [False]``: the gripper is not normalised), and the transition / trajectory counts,
all under one ``unnorm_key`` such as ``libero_spatial_no_noops``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np

ACTION_MASK = [True] * 6 + [False]


def _summary(x: np.ndarray) -> dict[str, list[float]]:
    return {
        "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(),
        "max": x.max(0).tolist(),
        "min": x.min(0).tolist(),
        "q01": np.quantile(x, 0.01, axis=0).tolist(),
        "q99": np.quantile(x, 0.99, axis=0).tolist(),
    }


def compute_statistics(actions: Sequence[np.ndarray], proprios: Sequence[np.ndarray]) -> dict:
    """Statistics of one dataset.

    Args:
        actions: per episode, [T_i, A] actions in the training convention.
        proprios: per episode, [T_i, P] proprio, aligned with ``actions``.
    Returns:
        {"action": {mean, std, max, min, q01, q99, mask}, "proprio": {...}, "num_transitions",
        "num_trajectories"}; every value a plain list / int (json-ready).
    """
    if not actions:
        raise ValueError("actions: need at least one episode, got 0")
    if len(actions) != len(proprios):
        raise ValueError(
            f"proprios: expected {len(actions)} episodes (one per action array), got {len(proprios)}"
        )
    act = np.concatenate([np.asarray(a, dtype=np.float64) for a in actions])
    pro = np.concatenate([np.asarray(p, dtype=np.float64) for p in proprios])
    action_stats = _summary(act)
    if act.shape[1] == len(ACTION_MASK):
        action_stats["mask"] = list(ACTION_MASK)
    return {
        "action": action_stats,
        "proprio": _summary(pro),
        "num_transitions": int(act.shape[0]),
        "num_trajectories": len(actions),
    }


def save_dataset_statistics(stats: dict, unnorm_key: str, path: str) -> None:
    """Writes ``{unnorm_key: stats}`` as ``dataset_statistics.json`` (atomically: temp file + rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump({unnorm_key: stats}, f, indent=2)
    os.replace(tmp, path)


def noop_mask(actions: np.ndarray, threshold: float = 1e-4) -> np.ndarray:
    """bool [T]: True for OFT's "no-op" steps, to be dropped for the ``*_no_noops`` datasets.

    A step is a no-op when its 6 motion dims have norm < ``threshold`` and its gripper command equals
    the previous kept step's (the first step only needs the motion criterion). Comparing against the
    previous *kept* step matters when several no-ops follow each other.
    """
    keep_prev = None
    out = np.zeros(len(actions), dtype=bool)
    for t, a in enumerate(np.asarray(actions)):
        still = np.linalg.norm(a[:-1]) < threshold
        out[t] = still if keep_prev is None else (still and a[-1] == keep_prev[-1])
        if not out[t]:
            keep_prev = a
    return out


def chunk_actions(actions: np.ndarray, chunk: int, pad_end: bool = False) -> np.ndarray:
    """Action-chunk targets: row t holds actions t .. t+chunk-1.

    Args:
        actions: [T, A].
        chunk: chunk length (8 for OpenVLA-OFT on LIBERO).
        pad_end: False (OpenVLA-OFT's pipeline): only start steps whose chunk lies inside the episode,
            T - chunk + 1 rows (none when T < chunk). True: one row per step; chunks running past
            the end repeat the last action.
    Returns:
        [N, chunk, A] with N = T - chunk + 1 (pad_end False) or T (pad_end True).
    """
    if chunk < 1:
        raise ValueError(f"chunk: must be >= 1, got {chunk}")
    actions = np.asarray(actions)
    t_len = len(actions)
    rows = t_len if pad_end else max(t_len - chunk + 1, 0)
    idx = np.arange(rows)[:, None] + np.arange(chunk)[None, :]
    return actions[np.minimum(idx, t_len - 1)] if rows else actions[:0, None].repeat(chunk, 1)
