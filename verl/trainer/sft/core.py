"""The SFT objective and learning-rate schedule: pure functions.

OpenVLA-OFT with parallel decoding predicts all `A = chunk * dim` action tokens of a chunk in one
forward; supervised training is a 256-way cross-entropy at every one of the A positions against
the tokenised demonstration chunk, averaged over tokens.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def action_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token-mean cross-entropy and accuracy.

    Args:
        logits: [N, A, V] float action logits (V = 256 bins).
        targets: [N, A] int64 action indices in 0..V-1.
        label_smoothing: mass spread uniformly over the V classes (torch's definition).
    Returns:
        (loss scalar with grad, accuracy scalar: fraction of positions whose argmax is the target).
    """
    if logits.shape[:2] != targets.shape:
        raise ValueError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} disagree on [N, A]"
        )
    flat = logits.reshape(-1, logits.shape[-1]).float()
    loss = F.cross_entropy(flat, targets.reshape(-1), label_smoothing=label_smoothing)
    with torch.no_grad():
        accuracy = (logits.argmax(dim=-1) == targets).float().mean()
    return loss, accuracy


def lr_factor(step: int, warmup_steps: int, total_steps: int, style: str, min_ratio: float = 0.0) -> float:
    """Multiplier of the peak learning rate at optimiser step `step` (0-based).

    Linear warm-up from 1/warmup to 1 over `warmup_steps`; then 1 ("constant") or a half cosine from
    1 down to `min_ratio` at `total_steps` ("cosine").
    """
    if style not in ("constant", "cosine"):
        raise ValueError(f"optim.warmup_style={style!r}; allowed: constant, cosine")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if style == "constant":
        return 1.0
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
