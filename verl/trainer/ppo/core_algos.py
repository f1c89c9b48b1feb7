"""GRPO's pure maths: outcome rewards, group advantages, the group filter and the clipped loss.

Shapes: B trajectories, T action tokens per trajectory (decision steps x chunk x action dim).
Every function is pure and tested against a slow loop reference and hand-computed cases.
"""

from __future__ import annotations

import numpy as np
import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of `values` where `mask` is set; 0 where the mask is empty (never NaN)."""
    mask = mask.to(values.dtype)
    total = (values * mask).sum() if dim is None else (values * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1.0)


def outcome_token_rewards(
    success: torch.Tensor, response_mask: torch.Tensor, reward_coef: float
) -> torch.Tensor:
    """Place `reward_coef * success` on each trajectory's last valid action token.

    success [B] (0/1), response_mask [B, T] -> rewards [B, T]. A trajectory with no valid token
    (failed at reset) gets no reward.
    """
    rewards = torch.zeros_like(response_mask, dtype=torch.float32)
    valid = response_mask.bool()
    has_token = valid.any(dim=1)
    last = valid.shape[1] - 1 - torch.flip(valid, dims=[1]).float().argmax(dim=1)
    rows = torch.nonzero(has_token).squeeze(1)
    rewards[rows, last[rows]] = reward_coef * success[rows].float()
    return rewards


def compute_grpo_outcome_advantage(
    token_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    group_index: np.ndarray,
    eps: float = 1e-6,
    norm_adv_by_std: bool = True,
) -> torch.Tensor:
    """GRPO advantage: each trajectory's total reward z-scored within its group, on every valid token.

    token_rewards [B, T], response_mask [B, T], group_index [B] (any hashable ids) -> advantages [B, T].
    Unbiased (Bessel) std; a group of one has mean 0 and std 1, so its advantage is its score.
    """
    scores = token_rewards.sum(dim=-1)
    adv = torch.zeros_like(scores)
    ids = np.asarray(group_index)
    for gid in np.unique(ids):
        rows = torch.as_tensor(np.nonzero(ids == gid)[0])
        group = scores[rows]
        if len(rows) == 1:
            mean, std = torch.tensor(0.0), torch.tensor(1.0)
        else:
            mean, std = group.mean(), group.std(unbiased=True)
        centred = group - mean
        adv[rows] = centred / (std + eps) if norm_adv_by_std else centred
    return adv.unsqueeze(-1) * response_mask.to(adv.dtype)


def group_accuracy_filter(
    success: np.ndarray, group_index: np.ndarray, lower: float, upper: float
) -> tuple[np.ndarray, dict[str, float]]:
    """Dynamic sampling: keep whole groups whose success rate lies in [lower, upper] (inclusive).

    success [B] (0/1), group_index [B] -> keep mask [B] (bool) and counts of kept / dropped groups.
    """
    success = np.asarray(success, dtype=np.float64)
    ids = np.asarray(group_index)
    keep = np.zeros(len(ids), dtype=bool)
    stats = {"kept": 0, "all_fail": 0, "all_success": 0, "other_dropped": 0}
    for gid in dict.fromkeys(ids.tolist()):  # first-seen order
        rows = ids == gid
        acc = success[rows].mean()
        if lower <= acc <= upper:
            keep[rows] = True
            stats["kept"] += 1
        elif acc == 0.0:
            stats["all_fail"] += 1
        elif acc == 1.0:
            stats["all_success"] += 1
        else:
            stats["other_dropped"] += 1
    return keep, {k: float(v) for k, v in stats.items()}


def agg_loss(loss_mat: torch.Tensor, loss_mask: torch.Tensor, loss_agg_mode: str) -> torch.Tensor:
    """Reduce a [B, T] per-token loss to a scalar.

    - token-mean: mean over all valid tokens of the batch;
    - seq-mean-token-mean: per-trajectory token mean, then mean over trajectories (SimpleVLA-RL);
    - seq-mean-token-sum: per-trajectory token sum, then mean over trajectories;
    - seq-mean-token-sum-norm: per-trajectory token sum / T, then mean over trajectories.
    Trajectories without a valid token count as zero in the seq-mean modes.
    """
    mask = loss_mask.to(loss_mat.dtype)
    if loss_agg_mode == "token-mean":
        return masked_mean(loss_mat, mask)
    if loss_agg_mode == "seq-mean-token-mean":
        per_seq = (loss_mat * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
    elif loss_agg_mode == "seq-mean-token-sum":
        per_seq = (loss_mat * mask).sum(-1)
    elif loss_agg_mode == "seq-mean-token-sum-norm":
        per_seq = (loss_mat * mask).sum(-1) / loss_mat.shape[-1]
    else:
        raise ValueError(
            f"loss_agg_mode={loss_agg_mode!r}; allowed: token-mean, seq-mean-token-mean, "
            "seq-mean-token-sum, seq-mean-token-sum-norm"
        )
    return per_seq.mean()


def agg_weights(
    loss_mask: torch.Tensor,
    loss_agg_mode: str,
    n_tokens: float | None = None,
    n_seqs: int | None = None,
) -> torch.Tensor:
    """Per-token weights W [B, T] with sum(W * loss) == agg_loss(loss, loss_mask, loss_agg_mode).

    They let the actor split a mini-batch into any slices of tokens (bounded memory) and still
    reduce exactly as `agg_loss` does over the whole mini-batch. When the mini-batch is split over
    ranks, `n_tokens` and `n_seqs` are its valid-token and sequence counts over all ranks (default:
    this mask's own); the weights of all ranks then sum to the loss of the whole mini-batch.
    """
    mask = loss_mask.float()
    n_seq = mask.shape[0] if n_seqs is None else n_seqs
    if loss_agg_mode == "token-mean":
        total = mask.sum() if n_tokens is None else torch.tensor(float(n_tokens))
        return mask / total.clamp(min=1.0)
    if loss_agg_mode == "seq-mean-token-mean":
        return mask / (mask.sum(-1, keepdim=True).clamp(min=1.0) * max(n_seq, 1))
    if loss_agg_mode == "seq-mean-token-sum":
        return mask / max(n_seq, 1)
    if loss_agg_mode == "seq-mean-token-sum-norm":
        return mask / (mask.shape[-1] * max(n_seq, 1))
    raise ValueError(
        f"loss_agg_mode={loss_agg_mode!r}; allowed: token-mean, seq-mean-token-mean, "
        "seq-mean-token-sum, seq-mean-token-sum-norm"
    )


def policy_loss_per_token(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    clip_ratio_low: float,
    clip_ratio_high: float,
    clip_ratio_c: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token PPO clipped surrogate with bounds [1 - low, 1 + high]; inputs of one shape.

    Returns (loss, clipped, approx_kl): clipped is 1.0 where the clipped term was the one taken
    (veRL's clip fraction), approx_kl = old - new log-prob.
    """
    neg_approx_kl = (log_prob - old_log_prob).clamp(-20.0, 20.0)
    ratio = torch.exp(neg_approx_kl)
    loss_unclipped = -advantages * ratio
    loss_clipped = -advantages * ratio.clamp(1.0 - clip_ratio_low, 1.0 + clip_ratio_high)
    loss = torch.maximum(loss_unclipped, loss_clipped)
    clipped = torch.gt(loss_clipped, loss_unclipped).float()
    if clip_ratio_c is not None:
        dual = torch.minimum(-advantages * clip_ratio_c, loss)
        loss = torch.where(advantages < 0, dual, loss)
    return loss, clipped, -neg_approx_kl


def compute_policy_loss(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    clip_ratio_low: float,
    clip_ratio_high: float,
    loss_agg_mode: str = "seq-mean-token-mean",
    clip_ratio_c: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PPO clipped loss with asymmetric bounds, aggregated. All inputs [B, T].

    Returns (pg_loss scalar, clip fraction, approx KL old||new), the last two as token means over
    valid tokens. Optional dual clip bounds the loss of negative advantages by -A * clip_ratio_c.
    """
    loss, clipped, approx_kl = policy_loss_per_token(
        old_log_prob, log_prob, advantages, clip_ratio_low, clip_ratio_high, clip_ratio_c
    )
    return (
        agg_loss(loss, response_mask, loss_agg_mode),
        masked_mean(clipped, response_mask),
        masked_mean(approx_kl, response_mask),
    )


def kl_penalty(log_prob: torch.Tensor, ref_log_prob: torch.Tensor, kl_type: str) -> torch.Tensor:
    """Per-token KL estimate between the policy and the reference, [B, T]."""
    diff = log_prob - ref_log_prob
    if kl_type == "kl":
        return diff
    if kl_type == "abs":
        return diff.abs()
    if kl_type == "mse":
        return 0.5 * diff.square()
    if kl_type == "low_var_kl":
        # k3 estimator: exp(ref - logp) - (ref - logp) - 1, clamped for stability.
        kl = torch.exp(-diff) + diff - 1.0
        return kl.clamp(-10.0, 10.0)
    raise ValueError(f"kl_type={kl_type!r}; allowed: kl, abs, mse, low_var_kl")
