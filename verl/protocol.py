"""`DataProto`: the batch container that travels between the driver and the workers.

A `DataProto` holds three things that share one leading batch dimension:

- `batch`: a `TensorDict` of tensors (token ids, masks, log-probs, advantages, ...);
- `non_tensor_batch`: a dict of numpy arrays, `dtype=object` allowed (task names, JPEG bytes, ...);
- `meta_info`: a plain dict of scalars and settings that apply to the whole batch (temperature, step).

Every operation keeps the three aligned. Instances are plain picklable objects, so they pass
through Ray's object store unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

__all__ = ["DataProto"]


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    arr = np.empty(len(value), dtype=object)
    arr[:] = list(value)
    return arr


def _object_nbytes(x: Any) -> int:
    if isinstance(x, (bytes, bytearray)):
        return len(x)
    if isinstance(x, (list, tuple)):
        return sum(_object_nbytes(v) for v in x)
    return np.asarray(x).nbytes


def _batch_size_of(
    tensors: dict[str, torch.Tensor] | TensorDict | None, non_tensors: dict[str, np.ndarray]
) -> int:
    sizes = set()
    if tensors is not None:
        for key, value in tensors.items():
            if value.dim() == 0:
                raise ValueError(
                    f"DataProto.batch[{key!r}] is a scalar; batch entries need a leading batch dim"
                )
            sizes.add(value.shape[0])
    for value in non_tensors.values():
        sizes.add(len(value))
    if len(sizes) > 1:
        raise ValueError(f"DataProto entries disagree on the batch size: {sorted(sizes)}")
    return sizes.pop() if sizes else 0


@dataclass
class DataProto:
    """Tensor batch + numpy non-tensor batch + meta, aligned on dim 0."""

    batch: TensorDict | None = None
    non_tensor_batch: dict[str, np.ndarray] = field(default_factory=dict)
    meta_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.non_tensor_batch = {k: _as_numpy(v) for k, v in self.non_tensor_batch.items()}
        n = _batch_size_of(self.batch, self.non_tensor_batch)
        if self.batch is not None and tuple(self.batch.batch_size) != (n,):
            self.batch = TensorDict(dict(self.batch.items()), batch_size=[n])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(
        cls,
        tensors: dict[str, torch.Tensor] | None = None,
        non_tensors: dict[str, Any] | None = None,
        meta_info: dict[str, Any] | None = None,
    ) -> DataProto:
        non_tensors = {k: _as_numpy(v) for k, v in (non_tensors or {}).items()}
        n = _batch_size_of(tensors, non_tensors)
        batch = TensorDict(dict(tensors), batch_size=[n]) if tensors else None
        return cls(batch=batch, non_tensor_batch=non_tensors, meta_info=dict(meta_info or {}))

    def __len__(self) -> int:
        if self.batch is not None:
            return int(self.batch.batch_size[0])
        for value in self.non_tensor_batch.values():
            return len(value)
        return 0

    def __getitem__(self, key: str) -> torch.Tensor | np.ndarray:
        if self.batch is not None and key in self.batch.keys():
            return self.batch[key]
        if key in self.non_tensor_batch:
            return self.non_tensor_batch[key]
        raise KeyError(
            f"{key!r} is in neither batch ({self.tensor_keys()}) nor non_tensor_batch "
            f"({sorted(self.non_tensor_batch)})"
        )

    def tensor_keys(self) -> list[str]:
        return sorted(self.batch.keys()) if self.batch is not None else []

    # ------------------------------------------------------------------ selection
    def select(
        self,
        batch_keys: Sequence[str] | None = None,
        non_tensor_keys: Sequence[str] | None = None,
        meta_keys: Sequence[str] | None = None,
    ) -> DataProto:
        """A new DataProto with only the named keys (None keeps all of that kind)."""
        batch = self.batch
        if batch is not None and batch_keys is not None:
            missing = set(batch_keys) - set(batch.keys())
            if missing:
                raise KeyError(f"select: unknown batch keys {sorted(missing)}; known: {self.tensor_keys()}")
            batch = batch.select(*batch_keys)
        non_tensors = self.non_tensor_batch
        if non_tensor_keys is not None:
            missing = set(non_tensor_keys) - set(non_tensors)
            if missing:
                raise KeyError(
                    f"select: unknown non-tensor keys {sorted(missing)}; known: {sorted(non_tensors)}"
                )
            non_tensors = {k: non_tensors[k] for k in non_tensor_keys}
        meta = self.meta_info if meta_keys is None else {k: self.meta_info[k] for k in meta_keys}
        return DataProto(batch=batch, non_tensor_batch=dict(non_tensors), meta_info=dict(meta))

    def index(self, idx: torch.Tensor | np.ndarray | Sequence[int] | slice) -> DataProto:
        """Rows by integer indices, a boolean mask of length `len(self)`, or a slice."""
        if isinstance(idx, slice):
            rows = np.arange(len(self))[idx]
        else:
            rows = idx.cpu().numpy() if isinstance(idx, torch.Tensor) else np.asarray(idx)
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise ValueError(f"boolean index has shape {rows.shape}, expected ({len(self)},)")
                rows = np.nonzero(rows)[0]
        rows = rows.astype(np.int64)
        batch = self.batch[torch.as_tensor(rows)] if self.batch is not None else None
        non_tensors = {k: v[rows] for k, v in self.non_tensor_batch.items()}
        return DataProto(batch=batch, non_tensor_batch=non_tensors, meta_info=dict(self.meta_info))

    # ------------------------------------------------------------------ combination
    def union(self, other: DataProto) -> DataProto:
        """Merge the keys of `other` into a new DataProto; shared keys must hold equal values."""
        if len(self) != len(other):
            raise ValueError(f"union: batch sizes differ ({len(self)} vs {len(other)})")
        tensors = dict(self.batch.items()) if self.batch is not None else {}
        for key, value in other.batch.items() if other.batch is not None else []:
            if key in tensors and not torch.equal(tensors[key], value):
                raise ValueError(f"union: batch key {key!r} exists in both with different values")
            tensors[key] = value
        non_tensors = dict(self.non_tensor_batch)
        for key, value in other.non_tensor_batch.items():
            if key in non_tensors and not np.array_equal(non_tensors[key], value):
                raise ValueError(f"union: non-tensor key {key!r} exists in both with different values")
            non_tensors[key] = value
        meta = dict(self.meta_info)
        for key, value in other.meta_info.items():
            if key in meta and meta[key] != value:
                raise ValueError(f"union: meta_info key {key!r} exists in both with different values")
            meta[key] = value
        return DataProto.from_dict(tensors or None, non_tensors, meta)

    @staticmethod
    def concat(items: Sequence[DataProto]) -> DataProto:
        """Concatenate along dim 0; all items need the same keys. Meta comes from the first item."""
        if not items:
            raise ValueError("concat: need at least one DataProto")
        keys = [set(it.tensor_keys()) for it in items]
        if any(k != keys[0] for k in keys):
            raise ValueError(f"concat: tensor keys differ across items: {[sorted(k) for k in keys]}")
        batch = None
        if items[0].batch is not None:
            batch = torch.cat([it.batch for it in items], dim=0)
        non_tensors = {}
        for key in items[0].non_tensor_batch:
            non_tensors[key] = np.concatenate([it.non_tensor_batch[key] for it in items], axis=0)
        return DataProto(batch=batch, non_tensor_batch=non_tensors, meta_info=dict(items[0].meta_info))

    def chunk(self, chunks: int) -> list[DataProto]:
        """Split into `chunks` contiguous parts of equal size; `len(self)` must divide evenly."""
        if chunks <= 0 or len(self) % chunks != 0:
            raise ValueError(f"chunk: batch size {len(self)} is not divisible by chunks={chunks}")
        return self.split(len(self) // chunks)

    def split(self, size: int) -> list[DataProto]:
        """Contiguous parts of `size` rows (the last may be shorter)."""
        if size <= 0:
            raise ValueError(f"split: size must be > 0, got {size}")
        return [self.index(slice(start, start + size)) for start in range(0, len(self), size)]

    def repeat(self, repeat_times: int, interleave: bool = True) -> DataProto:
        """Repeat every row. Interleaved keeps copies adjacent: [a, a, b, b] (GRPO groups)."""
        if repeat_times < 1:
            raise ValueError(f"repeat: repeat_times must be >= 1, got {repeat_times}")
        n = len(self)
        rows = np.repeat(np.arange(n), repeat_times) if interleave else np.tile(np.arange(n), repeat_times)
        return self.index(rows)

    def to(self, device: str | torch.device) -> DataProto:
        batch = self.batch.to(device) if self.batch is not None else None
        return DataProto(batch=batch, non_tensor_batch=self.non_tensor_batch, meta_info=self.meta_info)

    def nbytes(self) -> int:
        """Host bytes held by the batch (tensors, numpy arrays and the bytes objects they hold)."""
        total = 0
        if self.batch is not None:
            total += sum(v.numel() * v.element_size() for v in self.batch.values())
        for value in self.non_tensor_batch.values():
            if value.dtype == object:
                total += sum(_object_nbytes(x) for x in value)
            else:
                total += value.nbytes
        return total
