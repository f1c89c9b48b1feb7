"""Registry of policy models: a name -> a loader of a checkpoint directory.

    policy = load_policy("openvla-oft", "/ckpts/tiny", unnorm_key="libero_spatial")

Loaders import their model code lazily, so importing the registry stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

_LOADERS: dict[str, Callable[..., Any]] = {}
_LAYOUTS: dict[str, str] = {}
# The released OpenVLA / OpenVLA-OFT layout: config.json, (sharded) safetensors, dataset_statistics.json.
PRISMATIC_LAYOUT = "prismatic"


def register_model(name: str, layout: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `loader(path, **kwargs) -> policy` under `name`; `layout` names the on-disk checkpoint
    layout the driver can check before Ray starts ("" = only the directory is checked)."""

    def decorator(loader: Callable[..., Any]) -> Callable[..., Any]:
        if name in _LOADERS:
            raise ValueError(f"model {name!r} is already registered")
        _LOADERS[name] = loader
        _LAYOUTS[name] = layout
        return loader

    return decorator


def checkpoint_layout(name: str) -> str:
    """The checkpoint layout registered with model `name`."""
    if name not in _LOADERS:
        raise ValueError(f"unknown model {name!r}; known models: {available_models()}")
    return _LAYOUTS[name]


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
