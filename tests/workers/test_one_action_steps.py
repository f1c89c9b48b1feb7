"""Trajectory packing, response mask and outcome reward for one-action decision steps (OpenVLA:
chunk 1 x 7 tokens per policy call), and vocabulary-id tokens surviving the packing."""

from __future__ import annotations

import numpy as np
import torch

from verl.trainer.ppo.core_algos import outcome_token_rewards
from verl.workers.rollout.env_rollout import Episode, Trajectory
from verl.workers.rollout.trajectories import trajectories_to_proto


def _trajectory(steps: int, finish: int, success: bool, first_token: int) -> Trajectory:
    t = Trajectory(Episode("libero_object", 0, 0, 1, uid="g"), instruction="pick", success=success)
    for s in range(steps):
        t.jpegs.append([b"jpg"])
        t.action_tokens.append(np.arange(first_token + 7 * s, first_token + 7 * s + 7, dtype=np.int32))
        t.log_probs.append(np.full(7, -0.5, dtype=np.float32))
    t.finish_step = finish
    return t


def test_one_action_steps_mask_and_reward():
    # Episode 0 succeeded after 5 actions (5 policy calls); episode 1 ran out after 8; episode 2 failed
    # at reset. Full-vocabulary ids (>= 32000) must come back unchanged.
    trajs = [_trajectory(5, 5, True, 31990), _trajectory(8, 8, False, 0), _trajectory(0, 0, False, 0)]
    out = trajectories_to_proto(trajs, chunk=1, action_dim=7, horizon=None, max_decisions=10)
    tokens, mask = out.batch["action_tokens"], out.batch["response_mask"]
    assert tokens.shape == (3, 10, 7) and mask.shape == (3, 70)
    assert tokens[0, 4].tolist() == list(range(32018, 32025))
    assert mask.sum(-1).tolist() == [35, 56, 0]
    assert mask[0, :35].all() and not mask[0, 35:].any()
    rewards = outcome_token_rewards(out.batch["success"], mask, reward_coef=5.0)
    # the success reward sits on the last token (a_6) of the last executed action (step 4)
    assert torch.nonzero(rewards).tolist() == [[0, 34]] and rewards[0, 34] == 5.0
    assert out.batch["num_decision_steps"].tolist() == [5, 8, 0]
