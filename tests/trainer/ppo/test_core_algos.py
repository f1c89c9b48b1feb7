"""GRPO maths against slow loop references and hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from verl.trainer.ppo.core_algos import (
    agg_loss,
    agg_weights,
    compute_grpo_outcome_advantage,
    compute_policy_loss,
    group_accuracy_filter,
    kl_penalty,
    outcome_token_rewards,
)


def slow_grpo(scores, groups, eps=1e-6):
    out = []
    for i, s in enumerate(scores):
        members = [scores[j] for j in range(len(scores)) if groups[j] == groups[i]]
        if len(members) == 1:
            mean, std = 0.0, 1.0
        else:
            mean = sum(members) / len(members)
            std = math.sqrt(sum((m - mean) ** 2 for m in members) / (len(members) - 1))
        out.append((s - mean) / (std + eps))
    return out


def test_outcome_reward_on_last_valid_token():
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 0]])
    r = outcome_token_rewards(torch.tensor([1.0, 1.0, 1.0]), mask, reward_coef=5.0)
    assert r.tolist() == [[0, 0, 5, 0], [0, 0, 0, 5], [0, 0, 0, 0]]


def test_grpo_hand_computed_group_of_eight():
    # k successes of 8: A_succ = (1 - k/8) / sqrt(k(8-k)/56), A_fail = -(k/8) / sqrt(k(8-k)/56).
    k = 3
    success = torch.tensor([1.0] * k + [0.0] * (8 - k))
    mask = torch.ones(8, 4)
    adv = compute_grpo_outcome_advantage(outcome_token_rewards(success, mask, 5.0), mask, np.zeros(8))
    denom = math.sqrt(k * (8 - k) / 56)
    assert adv[0, 0].item() == pytest.approx((1 - k / 8) / denom, rel=1e-5)
    assert adv[-1, 0].item() == pytest.approx(-(k / 8) / denom, rel=1e-5)
    assert torch.allclose(adv, adv[:, :1].expand_as(adv))  # constant over the trajectory


def test_grpo_matches_slow_reference_and_respects_mask():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 2, (24,), generator=g).float() * 5
    groups = np.repeat(np.arange(6), 4)
    groups[-1] = 99  # a group of one
    mask = (torch.rand(24, 10, generator=g) > 0.3).float()
    mask[:, 0] = 1
    rewards = torch.zeros(24, 10)
    rewards[:, 0] = scores
    adv = compute_grpo_outcome_advantage(rewards, mask, groups)
    expected = slow_grpo(scores.tolist(), groups.tolist())
    for i in range(24):
        assert torch.allclose(adv[i], torch.tensor(expected[i]) * mask[i], atol=1e-5)
    assert adv[-1, 0].item() == pytest.approx(scores[-1].item())  # group of one: the score itself


def test_grpo_all_equal_group_gives_zero():
    mask = torch.ones(4, 3)
    adv = compute_grpo_outcome_advantage(outcome_token_rewards(torch.ones(4), mask, 5.0), mask, np.zeros(4))
    assert torch.count_nonzero(adv) == 0


def test_grpo_without_std_normalisation():
    mask = torch.ones(4, 2)
    adv = compute_grpo_outcome_advantage(
        outcome_token_rewards(torch.tensor([1.0, 0, 0, 0]), mask, 1.0),
        mask,
        np.zeros(4),
        norm_adv_by_std=False,
    )
    assert adv[:, 0].tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25])


def test_group_filter_bounds_inclusive():
    success = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0])
    groups = np.repeat(["a", "b", "c", "d"], 4)
    keep, stats = group_accuracy_filter(success, groups, 0.25, 0.75)
    assert keep.tolist() == [False] * 8 + [True] * 8
    assert stats == {"kept": 2.0, "all_fail": 1.0, "all_success": 1.0, "other_dropped": 0.0}
    keep, stats = group_accuracy_filter(success, groups, 0.3, 0.7)
    assert keep.sum() == 0 and stats["other_dropped"] == 2.0


def slow_policy_loss(old, new, adv, mask, lo, hi):
    rows = []
    clipped = total = 0
    for i in range(len(old)):
        terms = []
        for t in range(len(old[0])):
            if not mask[i][t]:
                continue
            ratio = math.exp(new[i][t] - old[i][t])
            a = adv[i][t]
            unclipped, cl = -a * ratio, -a * min(max(ratio, 1 - lo), 1 + hi)
            terms.append(max(unclipped, cl))
            clipped += cl > unclipped
            total += 1
        rows.append(sum(terms) / max(len(terms), 1))
    return sum(rows) / len(rows), clipped / total


def test_policy_loss_asymmetric_clip_hand_case():
    old = torch.zeros(1, 4)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1, 1.5]]))
    adv = torch.tensor([[1.0, 1.0, -1.0, -1.0]])
    mask = torch.ones(1, 4)
    loss, clipfrac, kl = compute_policy_loss(old, new, adv, mask, 0.2, 0.28)
    # token 0: A>0, ratio 1.5 -> clipped to 1.28 -> -1.28; token 1: ratio 0.5, min(-0.5, -0.8) -> max is -0.5
    # token 2: A<0, ratio 1.1 -> 1.1; token 3: A<0, ratio 1.5 -> max(1.5, 1.28) = 1.5
    assert loss.item() == pytest.approx((-1.28 - 0.5 + 1.1 + 1.5) / 4, rel=1e-5)
    assert clipfrac.item() == pytest.approx(1 / 4)  # only token 0 takes the clipped branch
    assert kl.item() == pytest.approx(-new.mean().item(), rel=1e-5)


def test_policy_loss_matches_slow_reference():
    g = torch.Generator().manual_seed(3)
    old = torch.randn(5, 7, generator=g) * 0.1 - 2
    new = old + torch.randn(5, 7, generator=g) * 0.4
    adv = torch.randn(5, 1, generator=g).expand(5, 7).contiguous()
    mask = (torch.rand(5, 7, generator=g) > 0.25).float()
    loss, clipfrac, _ = compute_policy_loss(old, new, adv, mask, 0.2, 0.28)
    ref_loss, ref_clip = slow_policy_loss(old.tolist(), new.tolist(), adv.tolist(), mask.tolist(), 0.2, 0.28)
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5)
    assert clipfrac.item() == pytest.approx(ref_clip, rel=1e-6)


def test_dual_clip_bounds_negative_advantages():
    old = torch.zeros(1, 1)
    new = torch.log(torch.tensor([[10.0]]))
    adv = torch.tensor([[-1.0]])
    loss, _, _ = compute_policy_loss(
        old, new, adv, torch.ones(1, 1), 0.2, 0.28, "token-mean", clip_ratio_c=3.0
    )
    assert loss.item() == pytest.approx(3.0)


def test_aggregation_modes_hand_case():
    loss = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert agg_loss(loss, mask, "token-mean").item() == pytest.approx(10 / 4)
    assert agg_loss(loss, mask, "seq-mean-token-mean").item() == pytest.approx((2 + 4) / 2)
    assert agg_loss(loss, mask, "seq-mean-token-sum").item() == pytest.approx((6 + 4) / 2)
    assert agg_loss(loss, mask, "seq-mean-token-sum-norm").item() == pytest.approx((6 / 3 + 4 / 3) / 2)
    with pytest.raises(ValueError, match="allowed"):
        agg_loss(loss, mask, "sum")


def test_kl_estimators():
    logp, ref = torch.tensor([-1.0]), torch.tensor([-1.5])
    assert kl_penalty(logp, ref, "kl").item() == pytest.approx(0.5)
    assert kl_penalty(logp, ref, "mse").item() == pytest.approx(0.125)
    assert kl_penalty(logp, ref, "low_var_kl").item() == pytest.approx(math.exp(-0.5) + 0.5 - 1)
    assert kl_penalty(ref, ref, "low_var_kl").item() == 0.0


@pytest.mark.parametrize(
    "mode", ["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
)
def test_agg_weights_reproduce_agg_loss_in_any_slicing(mode):
    g = torch.Generator().manual_seed(5)
    loss = torch.randn(4, 12, generator=g)
    mask = (torch.rand(4, 12, generator=g) > 0.4).float()
    w = agg_weights(mask, mode)
    assert (w * loss).sum().item() == pytest.approx(agg_loss(loss, mask, mode).item(), rel=1e-5)
    # summing over arbitrary column slices gives the same total
    parts = sum((w[:, a:b] * loss[:, a:b]).sum() for a, b in [(0, 5), (5, 7), (7, 12)])
    assert parts.item() == pytest.approx(agg_loss(loss, mask, mode).item(), rel=1e-5)
