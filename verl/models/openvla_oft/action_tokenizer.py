"""Discrete action tokens of OpenVLA-OFT and the dataset statistics that give them units.

Three spaces are involved:
- action index j in 0..255: the position in the 256-way slice of the vocabulary the policy samples
  from; the vocabulary id is `action_token_begin + j` (31744 + j for Llama-2);
- normalised value in [-1, 1]: 256 uniform bin edges, 255 bin centres; id 31999 (j = 255) is the
  lowest centre, ids 31744 and 31745 (j = 0, 1) both decode to the highest centre;
- robot units: un-normalised per dimension with q01/q99 ("bounds_q99") or min/max ("bounds"),
  only where the statistics' mask is true (the gripper stays in [0, 1]).

Statistics are read from `dataset_statistics.json`, which is authoritative over `config.norm_stats`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DATASET_STATISTICS_NAME = "dataset_statistics.json"
_EPS = 1e-8


class ActionTokenizer:
    """Maps action indices (0..n_bins-1) to normalised values and back."""

    def __init__(self, n_bins: int = 256):
        self.n_bins = n_bins
        self.bins = np.linspace(-1.0, 1.0, n_bins)  # [n_bins] edges
        self.bin_centers = (self.bins[:-1] + self.bins[1:]) / 2.0  # [n_bins - 1]

    def index_to_bin(self, index: np.ndarray) -> np.ndarray:
        """Action index j -> bin-centre index k = clip(n_bins - 1 - j, 0, n_bins - 2)."""
        return np.clip(self.n_bins - 1 - np.asarray(index, dtype=np.int64), 0, self.n_bins - 2)

    def decode(self, index: np.ndarray) -> np.ndarray:
        """Action indices [...] -> normalised values [...] in (-1, 1)."""
        return self.bin_centers[self.index_to_bin(index)]

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Normalised values [...] -> action indices [...] (int64), clipping to [-1, 1] first.

        The bin number d = digitize(v, edges) is in 1..n_bins, and the vocabulary id is
        `vocab_size - d`, so the index is n_bins - d: -1 -> 255, 0 -> 128, 1 -> 0.
        """
        clipped = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
        return (self.n_bins - np.digitize(clipped, self.bins)).astype(np.int64)


@dataclass
class NormStats:
    """Low/high bounds and mask of one dataset key's "action" (or "proprio") statistics."""

    low: np.ndarray  # [D]
    high: np.ndarray  # [D]
    mask: np.ndarray  # [D] bool: dimensions that are normalised

    @classmethod
    def from_stats(cls, stats: dict[str, Any], normalization_type: str) -> NormStats:
        if normalization_type == "bounds_q99":
            low, high = stats["q01"], stats["q99"]
        elif normalization_type == "bounds":
            low, high = stats["min"], stats["max"]
        else:
            raise ValueError(
                f"normalization_type must be 'bounds_q99' or 'bounds', got {normalization_type!r}"
            )
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        mask = np.asarray(stats.get("mask", [True] * len(low)), dtype=bool)  # absent mask = all normalised
        return cls(low=low, high=high, mask=mask)

    @property
    def dim(self) -> int:
        return int(self.low.shape[0])


def unnormalize(normalized: np.ndarray, stats: NormStats, eps: float = _EPS) -> np.ndarray:
    """[..., D] values in [-1, 1] -> robot units: 0.5 (n + 1)(high - low + eps) + low where masked.

    OFT adds eps = 1e-8; the original OpenVLA's `predict_action` adds nothing (eps = 0).
    """
    n = np.asarray(normalized, dtype=np.float64)
    scaled = 0.5 * (n + 1.0) * (stats.high - stats.low + eps) + stats.low
    return np.where(stats.mask, scaled, n)


def normalize(values: np.ndarray, stats: NormStats) -> np.ndarray:
    """[..., D] robot units -> clip(2 (x - low)/(high - low + 1e-8) - 1, -1, 1) where masked."""
    x = np.asarray(values, dtype=np.float64)
    scaled = np.clip(2.0 * (x - stats.low) / (stats.high - stats.low + _EPS) - 1.0, -1.0, 1.0)
    return np.where(stats.mask, scaled, x)


def libero_gripper_postprocess(actions: np.ndarray) -> np.ndarray:
    """Policy gripper (last dim, 1 = open, 0 = close) -> LIBERO's (-1 = open, +1 = close).

    Binarise g <- sign(2g - 1), then invert g <- -g. The env layer applies this; kept here as the
    pure reference.
    """
    out = np.array(actions, dtype=np.float64, copy=True)
    out[..., -1] = -np.sign(2.0 * out[..., -1] - 1.0)
    return out


def load_dataset_statistics(path: str | Path) -> dict[str, Any] | None:
    """Read `<path>/dataset_statistics.json`, or None when the checkpoint has none."""
    file = Path(path) / DATASET_STATISTICS_NAME
    if not file.exists():
        return None
    with open(file) as f:
        return json.load(f)


def select_unnorm_key(statistics: dict[str, Any], unnorm_key: str | None) -> str:
    """Pick the statistics entry: `unnorm_key`, then `unnorm_key + "_no_noops"`, or the only key."""
    if unnorm_key is None:
        if len(statistics) != 1:
            raise ValueError(
                f"unnorm_key must be given when the statistics hold several keys: {sorted(statistics)}"
            )
        return next(iter(statistics))
    for candidate in (unnorm_key, f"{unnorm_key}_no_noops"):
        if candidate in statistics:
            return candidate
    raise ValueError(
        f"unnorm_key {unnorm_key!r} not in the dataset statistics; known keys: {sorted(statistics)}"
    )
