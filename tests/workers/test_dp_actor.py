"""The PPO actor on the tiny policy (single process): recomputed log-probs equal the rollout's,
and an update moves the policy in the direction of the advantages."""

import numpy as np
import pytest
import torch

from verl.workers.actor.dp_actor import ActorSettings, DataParallelPPOActor
from verl.workers.rollout.env_rollout import Episode, Trajectory
from verl.workers.rollout.trajectories import trajectories_to_proto


@pytest.fixture(scope="module")
def policy(tmp_path_factory):
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    path = write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", unnorm_key="libero_object")
    return OpenVLAOFTPolicy.from_pretrained(path)


def rollout_batch(policy, n_traj=4, steps=(3, 2, 1, 3), seed=0):
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    trajs = []
    for i in range(n_traj):
        t = Trajectory(Episode("libero_object", i % 2, i, i, uid=f"g{i // 2}"))
        t.instruction = ["pick up the ketchup and place it in the basket", "pick up the milk"][i % 2]
        for _ in range(steps[i]):
            obs = {
                "images": {"agentview": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)},
                "instruction": t.instruction,
            }
            out = policy.act([obs], temperature=1.6, generator=gen)
            t.jpegs.append(out.jpegs[0])
            t.action_tokens.append(out.action_tokens[0].numpy().astype(np.uint8))
            t.log_probs.append(out.log_probs[0].numpy())
        t.finish_step = steps[i] * 8 - 3  # the last chunk stopped early
        t.success = i % 2 == 0
        trajs.append(t)
    return trajectories_to_proto(trajs, chunk=8, action_dim=7, horizon=None, max_decisions=3)


def make_actor(policy, mode="seq-mean-token-mean"):
    settings = ActorSettings(
        clip_ratio_low=0.2,
        clip_ratio_high=0.28,
        clip_ratio_c=None,
        loss_agg_mode=mode,
        entropy_coeff=0.0,
        kl_loss_coef=0.0,
        kl_loss_type="low_var_kl",
        grad_clip=1.0,
        ppo_epochs=1,
        mini_batch_per_rank=4,
        micro_batch_per_rank=2,
        steps_per_forward=2,
        mixed_precision="fp32",
        shuffle=True,
        seed=0,
    )
    opt = torch.optim.AdamW(policy.model.parameters(), lr=1e-3)
    return DataParallelPPOActor(policy, opt, None, settings, torch.device("cpu"))


def test_recomputed_log_probs_equal_the_rollouts(policy):
    data = rollout_batch(policy)
    actor = make_actor(policy)
    log_probs, entropy = actor.compute_log_prob(data, temperature=1.6, steps_per_forward=2)
    taken = data.batch["num_decision_steps"]
    for i in range(len(data)):
        n = int(taken[i]) * 56
        torch.testing.assert_close(
            log_probs[i, :n], data.batch["rollout_log_probs"][i, :n], atol=1e-5, rtol=0
        )
        assert torch.all(log_probs[i, n:] == 0)
    assert float(entropy.max()) <= np.log(256) + 1e-4


def test_update_raises_log_prob_of_positive_advantage_actions(policy):
    data = rollout_batch(policy, seed=1)
    actor = make_actor(policy)
    old, _ = actor.compute_log_prob(data, 1.6, 2)
    mask = data.batch["response_mask"].float()
    sign = torch.tensor([1.0, -1.0, 1.0, -1.0])[:, None]
    data.batch["old_log_probs"] = old
    data.batch["advantages"] = sign * mask
    metrics = actor.update_policy(data, temperature=1.6)
    assert (
        metrics["actor/pg_clipfrac"] == 0.0 and abs(metrics["actor/ppo_kl"]) < 1e-6
    )  # first step is on-policy
    assert metrics["actor/grad_norm"] > 0
    new, _ = actor.compute_log_prob(data, 1.6, 2)
    delta = ((new - old) * mask).sum(-1) / mask.sum(-1)
    assert delta[0] > 0 and delta[2] > 0  # positive advantage: more likely
    assert delta[1] < 0 and delta[3] < 0  # negative advantage: less likely
