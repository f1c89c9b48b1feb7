"""Sampled rollouts on the real simulator are a function of the weights and the episode seeds alone.

Validation between two GRPO steps leaves other tasks loaded in the simulators, so the scheduler pairs
episodes with workers differently and the policy sees other batches. None of that may change what a
training rollout does: otherwise how often a run validates would change how it trains.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from verl.envs.libero.config import PerturbationConfig, libero_env_config
from verl.envs.pool import EnvPool
from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
from verl.workers.rollout.env_rollout import Episode, policy_actor, run_episodes

pytestmark = pytest.mark.sim

SHIPPED = Path(__file__).resolve().parents[2] / "examples" / "checkpoints" / "tiny-sft-libero-object"


def test_sampled_rollouts_ignore_batching_scheduling_and_simulator_history():
    policy = OpenVLAOFTPolicy.from_pretrained(str(SHIPPED)).eval()

    act = policy_actor(policy, 1.6, greedy=False, base_key=(3, 5))

    episodes = [Episode("libero_object", 1 + i % 2, 40 + i, seed=7000 + i) for i in range(4)]
    cfg = libero_env_config(
        max_steps=40, num_workers=2, perturbation=PerturbationConfig(pos_noise_m=0.01, yaw_noise_rad=0.05)
    )
    with EnvPool(cfg) as pool:
        first, _ = run_episodes(act, pool, episodes, micro_batch_size=4, stages=1)
        # Another order, other batches (one observation per call, two pipelined groups), and simulators
        # that now hold whichever task their last episode left loaded.
        loaded_before = pool.loaded_tasks()
        second, _ = run_episodes(act, pool, episodes[::-1], micro_batch_size=1, stages=2)
    second = second[::-1]
    assert loaded_before != [None, None]
    for a, b in zip(first, second):
        assert not a.failed and not b.failed, (a.error, b.error)
        assert len(a.action_tokens) == len(b.action_tokens) == 5  # 40 steps in chunks of 8
        assert np.array_equal(np.stack(a.action_tokens), np.stack(b.action_tokens))
        # batched matmuls differ in the last bits between batch sizes
        np.testing.assert_allclose(np.stack(a.log_probs), np.stack(b.log_probs), atol=1e-4)
        assert (a.finish_step, a.success) == (b.finish_step, b.success)
