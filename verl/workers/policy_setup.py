"""Set-up and checkpointing every FSDP worker shares (GRPO and SFT): load a registered policy, add
LoRA, shard it with FSDP2 by the policy's own wrap classes, build AdamW, and save/restore checkpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from verl.trainer.config.common import PolicyModelConfig
from verl.utils.fsdp_utils import apply_fsdp2, full_state_dict
from verl.utils.train_state import load_train_state, save_train_state


def load_worker_policy(model_cfg: PolicyModelConfig, path: str, device: torch.device, **kwargs: Any) -> Any:
    """The registered policy `model_cfg.vla` from `path` on `device`, with LoRA adapters when
    `model_cfg.lora_rank > 0`; kwargs go to the policy's loader."""
    from verl.models.registry import load_policy

    policy = load_policy(model_cfg.vla, path, device=device, **kwargs)
    if model_cfg.lora_rank > 0:
        targets = None if model_cfg.target_modules == "all-linear" else model_cfg.target_modules.split(",")
        policy.enable_lora(model_cfg.lora_rank, model_cfg.lora_alpha, targets)
    return policy


def shard_policy(
    policy: Any,
    device: torch.device,
    mixed_precision: str,
    gradient_checkpointing: bool,
    reshard_after_forward: bool = True,
    param_offload: bool = False,
) -> None:
    """Gradient checkpointing (optional), then FSDP2 over the policy's `fsdp_wrap_classes`;
    `param_offload` keeps the shards on the host between uses (CUDA only)."""
    if gradient_checkpointing:
        policy.gradient_checkpointing_enable()
    apply_fsdp2(
        policy.model,
        policy.fsdp_wrap_classes,
        device.type,
        mixed_precision,
        reshard_after_forward,
        param_offload=param_offload,
    )


def adamw(
    policy: Any, lr: float, betas: list[float], weight_decay: float, foreach: bool | None = None
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters (LoRA: the adapters only)."""
    params = [p for p in policy.model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, foreach=foreach)


def save_worker_checkpoint(
    policy: Any, optimizer: Any, scheduler: Any, rank: int, path: str, extra: dict | None = None
) -> None:
    """The Hugging Face layout under `<path>/actor` (rank 0; LoRA merged) plus the train state an
    exact resume needs. A collective: every rank calls it."""
    state = full_state_dict(policy.model, rank0_only=True)  # a collective: every rank takes part
    out = Path(path)
    if rank == 0:
        policy.save_pretrained(out / "actor", state)
    save_train_state(out, rank, policy.model, optimizer, scheduler, extra)


def load_worker_checkpoint(policy: Any, optimizer: Any, scheduler: Any, rank: int, path: str) -> dict:
    """Restore what `save_worker_checkpoint` wrote; returns this rank's extra state."""
    return load_train_state(Path(path), rank, policy.model, optimizer, scheduler)
