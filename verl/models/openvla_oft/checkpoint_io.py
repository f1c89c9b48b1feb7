"""Safetensors weights in the Hugging Face layout: `model.safetensors`, or shards
`model-0000k-of-0000N.safetensors` with `model.safetensors.index.json`.

Loading materialises a model built on the meta device. Parameters the forward never uses (the
last block, final norm and pooling head of each timm tower) may be absent from a checkpoint; they
are filled with zeros. Any other missing or unexpected key is an error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from torch import nn

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
_SHARD_PATTERN = re.compile(r"model(-\d{5}-of-\d{5})?\.safetensors$")


def _unused_vision_keys(model: nn.Module) -> re.Pattern:
    """Keys of the towers that the forward skips (the forward stops after block depth-2)."""
    parts = []
    for tower in ("featurizer", "fused_featurizer"):
        last = len(getattr(model.vision_backbone, tower).blocks) - 1
        parts.append(rf"vision_backbone\.{tower}\.(blocks\.{last}\.|norm\.|fc_norm\.|attn_pool\.|head\.)")
    return re.compile("|".join(parts))


def checkpoint_files(path: str | Path) -> list[Path]:
    """The safetensors files of a checkpoint directory, in shard order."""
    path = Path(path)
    if (path / INDEX_FILE).exists():
        with open(path / INDEX_FILE) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
        return [path / name for name in names]
    if (path / SINGLE_FILE).exists():
        return [path / SINGLE_FILE]
    raise FileNotFoundError(f"no {SINGLE_FILE} or {INDEX_FILE} in {path}")


def _rename(key: str) -> str:
    # timm names the LayerScale parameter `gamma`; the released checkpoints use `scale_factor`
    return re.sub(r"(\.ls[12])\.gamma$", r"\1.scale_factor", key)


def load_state_dict_into(
    model: nn.Module, path: str | Path, dtype: torch.dtype, device: str | torch.device
) -> None:
    """Assign the checkpoint's tensors to `model`'s parameters (cast to `dtype`, moved to `device`)."""
    from safetensors.torch import load_file

    state = {}
    for file in checkpoint_files(path):
        try:
            tensors = load_file(str(file), device="cpu")
        except Exception as err:  # SafetensorError names neither the file nor the checkpoint
            raise ValueError(f"{file}: unreadable safetensors file ({err})") from None
        for key, tensor in tensors.items():
            state[_rename(key)] = tensor.to(
                device=device, dtype=dtype if tensor.is_floating_point() else None
            )
    try:
        result = model.load_state_dict(state, strict=False, assign=True)
    except RuntimeError as err:  # size mismatches: the message names the keys, not the checkpoint
        raise ValueError(f"checkpoint {path} does not fit the model of its config.json: {err}") from None
    if result.unexpected_keys:
        raise KeyError(f"checkpoint {path} has keys the model does not: {result.unexpected_keys[:10]}")
    unused = _unused_vision_keys(model)
    missing = [k for k in result.missing_keys if not unused.match(k)]
    if missing:
        raise KeyError(f"checkpoint {path} lacks keys the forward needs: {missing[:10]}")
    for key in result.missing_keys:
        module_name, _, name = key.rpartition(".")
        module = model.get_submodule(module_name)
        meta = module._parameters[name]
        module._parameters[name] = nn.Parameter(torch.zeros(meta.shape, dtype=dtype, device=device))


def save_state_dict(state_dict: dict[str, torch.Tensor], path: str | Path, max_shard_size: int) -> None:
    """Write `state_dict` as one file, or as shards of at most `max_shard_size` bytes plus an index."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for old in list(path.glob("model*.safetensors")) + [path / INDEX_FILE]:
        if old.exists() and (old.name == INDEX_FILE or _SHARD_PATTERN.match(old.name)):
            old.unlink()

    shards: list[dict[str, torch.Tensor]] = [{}]
    shard_bytes = 0
    for key, tensor in state_dict.items():
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and shard_bytes + size > max_shard_size:
            shards.append({})
            shard_bytes = 0
        shards[-1][key] = tensor.detach().to("cpu").contiguous().clone()
        shard_bytes += size

    if len(shards) == 1:
        save_file(shards[0], str(path / SINGLE_FILE), metadata={"format": "pt"})
        return
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
        total += sum(t.numel() * t.element_size() for t in shard.values())
    with open(path / INDEX_FILE, "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
