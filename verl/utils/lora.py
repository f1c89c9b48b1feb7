"""Folding peft LoRA weights of a full state dict into the base weights (any peft-adapted model)."""

from __future__ import annotations

import torch


def merge_lora_state(state: dict[str, torch.Tensor], scale: float) -> dict[str, torch.Tensor]:
    """State dict with peft key names (`.base_layer.`, `.lora_A.<adapter>.`, `.lora_B.<adapter>.`) ->
    plain key names with W + scale * B A in every adapted weight (scale = alpha / rank)."""
    if not any(".lora_A." in k for k in state):
        return state
    merged = {}
    for key, tensor in state.items():
        if ".lora_" in key:
            continue
        if key.endswith(".base_layer.weight"):
            prefix = key[: -len(".base_layer.weight")]
            lora_a = next(
                v for k, v in state.items() if k.startswith(prefix + ".lora_A.") and k.endswith(".weight")
            )
            lora_b = next(
                v for k, v in state.items() if k.startswith(prefix + ".lora_B.") and k.endswith(".weight")
            )
            tensor = tensor + (lora_b.float() @ lora_a.float()).to(tensor.dtype) * scale
        merged[key.replace(".base_layer.", ".")] = tensor
    return merged
