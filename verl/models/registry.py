"""Registry of policy models: a name -> a loader of a checkpoint directory.

    policy = load_policy("openvla-oft", "/ckpts/tiny", unnorm_key="libero_spatial")

Registered here: `openvla-oft` (parallel decoding of a chunk), `openvla` (the original OpenVLA: one
action of 7 autoregressive tokens per call, sampled over the 256 action ids) and `openvla-full-vocab`
(the same over the whole vocabulary, as the official evaluation and SimpleVLA-RL do).

Loaders import their model code lazily, so importing the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_LOADERS: dict[str, Callable[..., Any]] = {}
_LAYOUTS: dict[str, str] = {}
_CHUNK_SIZES: dict[str, int | None] = {}
# The released OpenVLA / OpenVLA-OFT layout: config.json, (sharded) safetensors, dataset_statistics.json.
PRISMATIC_LAYOUT = "prismatic"


def register_model(
    name: str, layout: str = "", chunk_size: int | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `loader(path, **kwargs) -> policy` under `name`. `layout` names the on-disk checkpoint
    layout the driver can check before Ray starts ("" = only the directory is checked); `chunk_size`
    is the number of actions the model predicts per call whatever the checkpoint says (None = read
    from the checkpoint)."""

    def decorator(loader: Callable[..., Any]) -> Callable[..., Any]:
        if name in _LOADERS:
            raise ValueError(f"model {name!r} is already registered")
        _LOADERS[name] = loader
        _LAYOUTS[name] = layout
        _CHUNK_SIZES[name] = chunk_size
        return loader

    return decorator


def checkpoint_layout(name: str) -> str:
    """The checkpoint layout registered with model `name`."""
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; known models: {available_models()}")
    return _LAYOUTS[name]


def model_chunk_size(name: str) -> int | None:
    """The fixed actions-per-call of model `name` (OpenVLA: 1), or None when its checkpoint says."""
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; known models: {available_models()}")
    return _CHUNK_SIZES[name]


def available_models() -> list[str]:
    return sorted(_LOADERS)


def load_policy(name: str, path: str | Path, **kwargs: Any) -> Any:
    """Load the policy `name` from the checkpoint directory `path`; kwargs go to its loader."""
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; known models: {available_models()}")
    return _LOADERS[name](path, **kwargs)


@register_model("openvla-oft", layout=PRISMATIC_LAYOUT)
def _load_openvla_oft(path: str | Path, **kwargs: Any) -> Any:
    """`OpenVLAOFTPolicy.from_pretrained(path, **kwargs)`."""
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy

    return OpenVLAOFTPolicy.from_pretrained(path, **kwargs)


@register_model("openvla", layout=PRISMATIC_LAYOUT, chunk_size=1)
def _load_openvla(path: str | Path, **kwargs: Any) -> Any:
    """`OpenVLAPolicy.from_pretrained(path, **kwargs)`: softmax over the 256 action ids (as RLinf)."""
    from verl.models.openvla.policy import OpenVLAPolicy

    return OpenVLAPolicy.from_pretrained(path, **kwargs)


@register_model("openvla-full-vocab", layout=PRISMATIC_LAYOUT, chunk_size=1)
def _load_openvla_full_vocab(path: str | Path, **kwargs: Any) -> Any:
    """OpenVLA sampling and scoring over the whole vocabulary (the official evaluation, SimpleVLA-RL)."""
    from verl.models.openvla.policy import OpenVLAPolicy

    return OpenVLAPolicy.from_pretrained(path, vocabulary="full", **kwargs)
