"""Images stay in the object store: a stashed batch is small, survives the driver's filtering and
concatenation, and fetches back to the very values the rollout stored, once per step."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from verl.protocol import DataProto
from verl.workers.heavy_fields import FetchMemo, is_stashed, stash

pytestmark = [pytest.mark.ray]


def rollout_batch(n: int = 6, steps: int = 5) -> DataProto:
    rng = np.random.default_rng(0)
    jpegs = np.empty(n, dtype=object)
    for i in range(n):
        jpegs[i] = [[rng.bytes(20_000)] for _ in range(steps)]
    return DataProto.from_dict(
        tensors={"success": torch.arange(n, dtype=torch.float32), "action_tokens": torch.zeros(n, steps, 56)},
        non_tensors={"jpegs": jpegs, "uid": [f"g{i // 2}" for i in range(n)]},
    )


def test_stash_then_fetch_gives_the_same_rows_and_travels_light(ray_local):
    data = rollout_batch()
    stashed = stash(data)
    assert is_stashed(stashed, "jpegs") and not is_stashed(data, "jpegs")
    # What a worker returns to the driver: the images' refs instead of 6 x 5 x 20 KB of images.
    assert len(pickle.dumps(data)) > 600_000
    assert len(pickle.dumps(stashed)) < 40_000
    # The driver filters groups, concatenates rounds and splits for the ranks; the refs follow their rows.
    kept = DataProto.concat([stashed.index(np.array([0, 1, 4, 5])), stashed.index(np.array([2, 3]))])
    memo = FetchMemo()
    fetched = memo.fetch(kept.index(slice(1, 5)))
    expected = DataProto.concat([data.index(np.array([0, 1, 4, 5])), data.index(np.array([2, 3]))])
    for got, want in zip(
        fetched.non_tensor_batch["jpegs"], expected.index(slice(1, 5)).non_tensor_batch["jpegs"]
    ):
        assert got == want
    assert torch.equal(fetched.batch["success"], torch.tensor([1.0, 4.0, 5.0, 2.0]))
    # A second pass of the same step fetches nothing new; columns holding values pass through.
    again = memo.fetch(kept.index(slice(1, 5)))
    assert len(memo) == 4
    assert all(a is b for a, b in zip(again.non_tensor_batch["jpegs"], fetched.non_tensor_batch["jpegs"]))
    assert memo.fetch(data).non_tensor_batch["jpegs"] is data.non_tensor_batch["jpegs"]
    memo.clear()
    assert len(memo) == 0
