"""Control run: the main job with each group's advantages dealt out at random among its trajectories.

    python scripts/bench/shuffled_advantages.py --out outputs/shuffled [scripts/demo.py arguments]

Every GRPO step then has the gradient structure of the real one (the same trajectories, the same
advantage values per group, the same number and size of optimiser steps) but no relation between a
trajectory and its outcome. Comparing its held-out success with the real run's tells what the
direction of GRPO's update is worth at this batch size; comparing both with a size-matched noise
control (`policy_drift.py --noise-std`) tells what the size of the change costs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def shuffle_within_groups(
    advantages: torch.Tensor, response_mask: torch.Tensor, group_index, rng: np.random.Generator
) -> torch.Tensor:
    """advantages [B, T] (one value per trajectory on its valid tokens) -> the same values permuted
    among the trajectories of each group, on each trajectory's own valid tokens."""
    mask = response_mask.to(advantages.dtype)
    per_row = advantages.sum(-1) / mask.sum(-1).clamp(min=1.0)
    out = per_row.clone()
    ids = np.asarray(group_index)
    for gid in np.unique(ids):
        rows = np.nonzero(ids == gid)[0]
        out[torch.as_tensor(rows)] = per_row[torch.as_tensor(rng.permutation(rows))]
    return out.unsqueeze(-1) * mask


def main(argv: list[str]) -> None:
    from verl.trainer.ppo import core_algos

    grpo = core_algos.compute_grpo_outcome_advantage
    rng = np.random.default_rng(12345)

    def shuffled(token_rewards, response_mask, group_index, **kwargs):
        adv = grpo(token_rewards, response_mask, group_index, **kwargs)
        return shuffle_within_groups(adv, response_mask, group_index, rng)

    # The driver looks the function up in core_algos at every step, so this replaces it there.
    core_algos.compute_grpo_outcome_advantage = shuffled
    sys.path.insert(0, str(ROOT / "scripts"))
    import demo

    demo.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
