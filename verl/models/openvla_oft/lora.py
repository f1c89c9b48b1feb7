"""LoRA adapters on OpenVLA-OFT through peft, and the merged state dict for saving.

Adapters are injected in place (`peft.inject_adapter_in_model`), so parameter names gain
`.base_layer.` / `.lora_A.default.` parts while training. `merged_state_dict` returns the
released key names with W + scale * B A folded into each adapted weight, without touching the
live model, so a LoRA run saves a plain checkpoint that loads without peft.
"""

from __future__ import annotations

import torch
from torch import nn

# "all-linear" means what it means in peft (and in OpenVLA-OFT's and SimpleVLA-RL's LoRA runs): every
# nn.Linear of the model (vision towers, projectors, the LLM) except the output layer. lm_head is never
# a target: the forward reads 256 of its rows directly.
ALL_LINEAR = "all-linear"
# The Llama projections only: `target_modules=q_proj,k_proj,...` selects them.
LLAMA_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER = "default"


def all_linear_modules(model: nn.Module) -> list[str]:
    """Full names of every nn.Linear in `model` except lm_head (peft's "all-linear")."""
    return [
        name
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and name.split(".")[-1] != "lm_head"
    ]


def add_lora(
    model: nn.Module, rank: int, alpha: float, target_modules: list[str] | None = None, dropout: float = 0.0
) -> None:
    """Inject rank-`rank` adapters scaled by alpha / rank; only adapter weights stay trainable.
    `target_modules`: module names (suffixes) to adapt; None or ["all-linear"] = every linear layer."""
    from peft import LoraConfig, inject_adapter_in_model

    if rank < 1:
        raise ValueError(f"lora rank must be >= 1, got {rank}")
    targets = list(target_modules or [ALL_LINEAR])
    if targets == [ALL_LINEAR]:
        targets = all_linear_modules(model)
    if "lm_head" in targets:
        raise ValueError(f"target_modules must not include lm_head (got {targets})")
    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=dropout, bias="none")
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)


def has_lora(model: nn.Module) -> bool:
    return any("lora_" in name for name, _ in model.named_parameters())


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with released key names; adapted weights are W + delta (detached copies)."""
    from peft.tuners.lora import LoraLayer

    state = {}
    merged = {}
    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            base = module.get_base_layer()
            with torch.no_grad():
                merged[f"{name}.weight"] = base.weight + module.get_delta_weight(ADAPTER).to(
                    base.weight.dtype
                )
    for key, tensor in model.state_dict().items():
        if "lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        state[key] = merged.get(key, tensor).detach()
    return state
