"""The shuffled-advantages control deals each group's advantages out among the group's trajectories."""

import importlib.util
from pathlib import Path

import numpy as np
import torch

from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

ROOT = Path(__file__).resolve().parents[2]


def _module():
    path = ROOT / "scripts" / "bench" / "shuffled_advantages.py"
    spec = importlib.util.spec_from_file_location("shuffled_advantages", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_permutation_within_each_group():
    shuffle = _module().shuffle_within_groups
    lengths = [5, 3, 7, 2, 6, 4, 8, 1]
    mask = torch.zeros(8, 10)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    success = torch.tensor([1.0, 0, 0, 0, 1, 1, 0, 0])
    rewards = torch.zeros(8, 10)
    rewards[torch.arange(8), torch.tensor(lengths) - 1] = success
    groups = np.array(["a"] * 4 + ["b"] * 4)
    adv = compute_grpo_outcome_advantage(rewards, mask, groups)
    out = shuffle(adv, mask, groups, np.random.default_rng(0))
    per_row = lambda x: x.sum(-1) / mask.sum(-1)  # noqa: E731
    assert torch.equal(out * (1 - mask), torch.zeros_like(out))  # nothing outside a trajectory
    for row in range(8):  # one value on all of a trajectory's tokens
        values = out[row, : lengths[row]]
        assert torch.allclose(values, values[0].expand_as(values))
    for rows in (slice(0, 4), slice(4, 8)):  # the group's values, dealt out again
        np.testing.assert_allclose(
            sorted(per_row(out)[rows].tolist()), sorted(per_row(adv)[rows].tolist()), rtol=1e-5
        )
    # Some seed moves a success's advantage to another trajectory; the same seed, the same deal.
    moved = [
        s for s in range(20) if not torch.allclose(shuffle(adv, mask, groups, np.random.default_rng(s)), adv)
    ]
    assert moved
    again = shuffle(adv, mask, groups, np.random.default_rng(moved[0]))
    assert torch.equal(again, shuffle(adv, mask, groups, np.random.default_rng(moved[0])))
