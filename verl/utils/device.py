"""Device selection: the same code runs on CUDA clusters and on CPU-only machines."""

from __future__ import annotations

import contextlib

import torch


def resolve_device(preference: str = "auto") -> torch.device:
    """ "auto" -> cuda when a GPU is visible, else cpu; "cuda" without a GPU is an error."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("trainer.device=cuda but no CUDA device is visible; allowed here: auto, cpu")
    if preference not in ("cuda", "cpu"):
        raise ValueError(f"trainer.device={preference!r}; allowed: auto, cuda, cpu")
    return torch.device(preference)


def local_gpu_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cluster_device(preference: str, cluster_gpus: float) -> str:
    """Where the workers train, decided from the Ray cluster's GPU count, not the driver's own GPU.

    "auto" -> "cuda" when the cluster has GPUs (a CPU-only head node must not make a GPU cluster
    train on CPU), else "cpu"; "cuda" on a cluster without GPUs is an error.
    """
    if preference not in ("auto", "cuda", "cpu"):
        raise ValueError(f"trainer.device={preference!r}; allowed: auto, cuda, cpu")
    if preference == "cuda" and cluster_gpus <= 0:
        raise ValueError("trainer.device=cuda but the Ray cluster has no GPUs; allowed here: auto, cpu")
    if preference == "auto":
        return "cuda" if cluster_gpus > 0 else "cpu"
    return preference


def autocast(device: torch.device, mixed_precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA when asked for; fp32 (no autocast) on CPU."""
    if device.type == "cuda" and mixed_precision == "bf16":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
