"""Train-state files that load without running code, whoever wrote them.

A resumed run reads two kinds of files besides the safetensors weights:
- `extra_state_rank<k>.pt` (scheduler, RNG streams): saved with tensors, numbers, strings, lists and
  dicts only, and loaded with `torch.load(weights_only=True)`, which refuses anything else. NumPy
  arrays (NumPy's RNG state) are stored as tensors and turned back on load.
- `train_state/.metadata` of torch.distributed.checkpoint: torch reads it with a plain `pickle.load`,
  so a tampered file could run code. `safe_dcp_reader` reads it with an unpickler that accepts only the
  classes torch writes there. The tensor and byte payloads (`*.distcp`) torch already loads with
  `weights_only=True`.

A file that fails these checks raises `TrainStateError` naming the file: it is foreign, tampered with or
truncated, and nothing from it was executed or applied.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

_NDARRAY = "__ndarray__"
# What torch.distributed.checkpoint writes into `.metadata` (torch 2.x): its metadata dataclasses,
# sizes, dtypes and layouts, and the paths of the storage files.
_DCP_ALLOWED = {
    ("torch", "Size"),
    ("torch.serialization", "_get_layout"),
    ("pathlib", "PosixPath"),
    ("pathlib", "WindowsPath"),
    ("pathlib", "PurePosixPath"),
    ("collections", "OrderedDict"),
}
_DCP_MODULES = ("torch.distributed.checkpoint.metadata", "torch.distributed.checkpoint.filesystem")
_DCP_CLASS_NAMES = {
    "Metadata",
    "MetadataIndex",
    "StorageMeta",
    "TensorProperties",
    "TensorStorageMetadata",
    "BytesStorageMetadata",
    "ChunkStorageMetadata",
    "_MEM_FORMAT_ENCODING",
    "_StorageInfo",
}


class TrainStateError(ValueError):
    """A train-state file that is not what this software writes (foreign, tampered or truncated)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return {
            _NDARRAY: torch.from_numpy(obj.astype(np.int64) if obj.dtype == np.uint32 else obj.copy()),
            "dtype": str(obj.dtype),
        }
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_encode(v) for v in obj)
    return obj


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _NDARRAY in obj:
            return obj[_NDARRAY].numpy().astype(obj["dtype"])
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_decode(v) for v in obj)
    return obj


def save_extra_state(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` (tensors, numbers, strings, NumPy arrays, nested lists/tuples/dicts) atomically."""
    from verl.utils.checkpoint import atomic_torch_save

    atomic_torch_save(_encode(state), path)


def load_extra_state(path: str | Path, required: tuple[str, ...] = ("scheduler", "rng")) -> dict[str, Any]:
    """Load a file written by `save_extra_state` without executing anything it holds."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"train-state file {str(path)!r} is missing; the checkpoint is incomplete")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (zip), EOFError: all mean "not ours"
        raise TrainStateError(
            f"train-state file {str(path)!r} does not load as tensors and plain data only "
            f"({type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}); it is foreign, "
            "tampered with or truncated. Nothing in it was executed. Resume from another checkpoint "
            "(trainer.resume_from_path) or start over (trainer.resume_mode=disable)"
        ) from None
    if not isinstance(state, dict) or any(k not in state for k in required):
        raise TrainStateError(
            f"train-state file {str(path)!r} lacks the entries {list(required)}; it was not written by "
            "this software"
        )
    return _decode(state)


class _MetadataUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        allowed = (module, name) in _DCP_ALLOWED or (module in _DCP_MODULES and name in _DCP_CLASS_NAMES)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            allowed = True
        if module == "builtins" and name in ("set", "frozenset", "slice", "complex"):
            allowed = True
        if not allowed:
            raise TrainStateError(
                f"checkpoint metadata {self.source!r} refers to {module}.{name}, which torch's checkpoint "
                "metadata never holds; the file is foreign or tampered with and was not loaded"
            )
        return super().find_class(module, name)


def read_dcp_metadata(path: str | Path) -> Any:
    """Unpickle a torch.distributed.checkpoint `.metadata` file, accepting only torch's own classes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint metadata {str(path)!r} is missing; the checkpoint is incomplete")
    data = path.read_bytes()
    try:
        return _MetadataUnpickler(io.BytesIO(data), str(path)).load()
    except TrainStateError:
        raise
    except Exception as err:
        raise TrainStateError(
            f"checkpoint metadata {str(path)!r} is unreadable ({type(err).__name__}); truncated or not a "
            "torch.distributed.checkpoint file"
        ) from None


def safe_dcp_reader(checkpoint_dir: str | Path):
    """A `FileSystemReader` for `dcp.load(..., storage_reader=...)` whose metadata read is restricted."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class SafeFileSystemReader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any):
            rank = kwargs.get("rank")
            metadata = read_dcp_metadata(self._get_metadata_path(rank))
            if getattr(metadata, "storage_meta", None) is None:
                metadata.storage_meta = StorageMeta()
            metadata.storage_meta.load_id = self.load_id
            return metadata

    return SafeFileSystemReader(str(checkpoint_dir))
