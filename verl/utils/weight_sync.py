"""Rollout weights: a plain (unsharded) replica of the actor in the rollout dtype, refreshed by streaming.

With several ranks the rollout cannot sample through the FSDP-sharded actor: every sharded forward
is a collective, and ranks run different numbers of policy calls during a rollout. Each rank
therefore samples from a replica. To fit 80 GB GPUs at 7.5 B parameters the replica is kept in the
rollout dtype (bf16 when the actor computes in bf16: 15 GB instead of 30 GB), and it is refreshed
parameter by parameter: each sharded parameter is cast to the rollout dtype on its shard, gathered
across ranks and copied into the replica, so the transient is one parameter in the rollout dtype
(the largest, the 32064 x 4096 embedding, is 0.25 GiB in bf16), never the full fp32 state dict.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

ROLLOUT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def rollout_dtype(name: str, device_type: str, mixed_precision: str) -> torch.dtype:
    """`actor_rollout_ref.rollout.weights_dtype` -> a torch dtype.

    "auto" is bf16 when the actor computes in bf16 (mixed_precision=bf16 on CUDA), else fp32: the
    rollout then samples at the precision the actor's forward uses.
    """
    if name == "auto":
        return torch.bfloat16 if (device_type == "cuda" and mixed_precision == "bf16") else torch.float32
    if name not in ROLLOUT_DTYPES:
        raise ValueError(
            f"actor_rollout_ref.rollout.weights_dtype={name!r}; allowed: auto, {', '.join(ROLLOUT_DTYPES)}"
        )
    return ROLLOUT_DTYPES[name]


def build_replica(owner: nn.Module, dtype: torch.dtype, device: torch.device | str) -> nn.Module:
    """A frozen deep copy of `owner` with every parameter in `dtype` on `device`.

    Parameters are copied one at a time (the deep copy itself holds meta placeholders), so building
    the replica never holds a second full copy in the source dtype. Buffers keep their dtype. Call it
    before the source is sharded.
    """
    placeholders: dict[int, nn.Parameter] = {}
    source_of: dict[int, nn.Parameter] = {}
    for p in owner.parameters():
        meta = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=False)
        placeholders[id(p)] = meta
        source_of[id(meta)] = p
    replica = copy.deepcopy(owner, memo=dict(placeholders))
    copies: dict[int, nn.Parameter] = {}  # tied parameters stay tied
    for module in replica.modules():
        for name, meta in list(module._parameters.items()):
            if meta is None or id(meta) not in source_of:
                continue
            src = source_of[id(meta)]
            if id(src) not in copies:
                copies[id(src)] = nn.Parameter(src.detach().to(device, dtype), requires_grad=False)
            module._parameters[name] = copies[id(src)]
    return replica.to(device).requires_grad_(False)


@torch.no_grad()
def sync_replica(source: nn.Module, replica: nn.Module, trainable_only: bool = False) -> int:
    """Copy the parameters of `source` (sharded with FSDP2 or plain) into `replica`, one at a time.

    A collective under FSDP: every rank calls it with the same `trainable_only`. Each sharded
    parameter is cast to the replica's dtype on its shard before the all-gather, so the transient is
    one full parameter in the replica's dtype. `trainable_only` skips frozen parameters (LoRA: only
    the adapters change). Returns the largest transient in bytes.
    """
    from torch.distributed.tensor import DTensor

    from verl.utils.fsdp_utils import gather_full

    targets = dict(replica.named_parameters())
    peak = 0
    for name, param in source.named_parameters():
        if trainable_only and not param.requires_grad:
            continue
        if name not in targets:
            raise KeyError(f"replica has no parameter {name!r}: it must be built from the same module")
        target = targets[name]
        value = param.detach()
        if isinstance(value, DTensor):
            value = gather_full(value, target.dtype)
        target.copy_(value)
        peak = max(peak, value.numel() * target.element_size())
        del value
    return peak
