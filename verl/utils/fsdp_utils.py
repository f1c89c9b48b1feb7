"""FSDP2 helpers: shard a model over a 1-D device mesh, gather and load full state dicts.

FSDP2 (`torch.distributed.fsdp.fully_shard`) runs on NCCL and on gloo (CPU), so the same code path is
tested on CPU machines and used on GPU clusters.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import nn


def fsdp_mesh(device_type: str):
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device_type, (dist.get_world_size(),), mesh_dim_names=("fsdp",))


def apply_fsdp2(
    model: nn.Module,
    wrap_class_names: Iterable[str],
    device_type: str,
    mixed_precision: str = "fp32",
    reshard_after_forward: bool = True,
    param_offload: bool = False,
) -> nn.Module:
    """Shard every submodule whose class name is in `wrap_class_names`, then the root.

    mixed_precision "bf16" keeps fp32 master weights and computes in bf16 (GPU); "fp32" computes in fp32.
    `param_offload` keeps the sharded parameters, their gradients and hence the optimiser step on
    the host (FSDP2 CPUOffloadPolicy); each unit is copied to the GPU for its forward and backward.
    On CPU there is nothing to offload and it is ignored.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

    mesh = fsdp_mesh(device_type)
    mp = None
    if mixed_precision == "bf16" and device_type == "cuda":
        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
    kwargs = {"mesh": mesh, "reshard_after_forward": reshard_after_forward}
    if mp is not None:
        kwargs["mp_policy"] = mp
    if param_offload and device_type == "cuda":
        kwargs["offload_policy"] = CPUOffloadPolicy(pin_memory=True)
    names = set(wrap_class_names)
    for module in list(model.modules()):
        if module is not model and type(module).__name__ in names:
            fully_shard(module, **kwargs)
    fully_shard(model, **kwargs)
    return model


def full_state_dict(model: nn.Module, rank0_only: bool = False) -> dict[str, torch.Tensor]:
    """The full (unsharded) state dict on CPU. A collective under FSDP: call it on all ranks.

    Entries are gathered one at a time and moved to the host at once, so the device transient is one
    full tensor (a 7B model's largest is 0.5 GB in fp32), never the whole fp32 state dict.
    `rank0_only` keeps the result on rank 0 only (other ranks return {}): one host copy per node
    instead of one per rank, e.g. for saving.
    """
    from torch.distributed.tensor import DTensor

    keep = not rank0_only or not dist.is_initialized() or dist.get_rank() == 0
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach()
        if isinstance(value, DTensor):
            value = gather_full(value)
        if keep:
            out[key] = value.cpu()
        del value
    return out


def gather_full(value, dtype: torch.dtype | None = None) -> torch.Tensor:
    """All-gather a sharded DTensor into a full tensor on the mesh's device, cast to `dtype` first.

    The local shard is moved to the mesh's device before the collective, so shards kept on the host
    (param_offload) gather over NCCL too; casting first halves the traffic and the transient for bf16.
    """
    from torch.distributed.tensor import DTensor

    local = value.to_local().to(value.device_mesh.device_type, dtype or value.dtype)
    shard = DTensor.from_local(
        local, value.device_mesh, value.placements, run_check=False, shape=value.shape, stride=value.stride()
    )
    return shard.full_tensor()


def load_full_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor]) -> None:
    """Load a full state dict into a sharded (or plain) model. A collective under FSDP."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    if not dist.is_initialized():
        model.load_state_dict(state_dict)
        return
    set_model_state_dict(model, state_dict, options=StateDictOptions(full_state_dict=True, strict=True))


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global gradient-norm clipping that works on DTensor (sharded) gradients."""
    params = [p for p in parameters if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    if hasattr(norm, "full_tensor"):
        norm = norm.full_tensor()
    return norm
