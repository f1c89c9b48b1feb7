"""Trajectory fields that only the actor reads stay in Ray's object store instead of visiting the driver.

A rollout's images (`jpegs`, ~98% of a trajectory's host bytes) are read by the old-log-prob, reference
and update passes of the rank that trains on the trajectory, never by the driver, which needs only the
outcome, the group ids and the small per-token tensors. So the producing worker puts each trajectory's
images into the object store once (`stash`) and returns an object ref in their place; the driver
filters, concatenates and splits the batch with the refs as opaque values; the training rank fetches
the rows it was given (`fetch`), once per RL step (`FetchMemo`). The values the actor reads are the
very bytes the rollout stored: batches and results are unchanged.

An object lives as long as a ref to it does: the rows dynamic sampling drops are freed with the driver's
copy of the round, the kept ones when the step ends.
"""

from __future__ import annotations

import numpy as np

from verl.protocol import DataProto

HEAVY_KEYS = ("jpegs",)


def stash(data: DataProto, keys: tuple[str, ...] = HEAVY_KEYS) -> DataProto:
    """`data` with each row of the `keys` columns replaced by the object ref of that row's value."""
    import ray

    non_tensors = dict(data.non_tensor_batch)
    for key in keys:
        refs = np.empty(len(data), dtype=object)
        for i, value in enumerate(non_tensors[key]):
            refs[i] = ray.put(value)
        non_tensors[key] = refs
    return DataProto(batch=data.batch, non_tensor_batch=non_tensors, meta_info=dict(data.meta_info))


def is_stashed(data: DataProto, key: str) -> bool:
    import ray

    column = data.non_tensor_batch.get(key)
    return column is not None and len(column) > 0 and isinstance(column[0], ray.ObjectRef)


class FetchMemo:
    """The values fetched for a step, by ref: the passes of one step fetch each row once."""

    def __init__(self) -> None:
        self._values: dict = {}

    def fetch(self, data: DataProto, keys: tuple[str, ...] = HEAVY_KEYS) -> DataProto:
        """`data` with stashed columns replaced by their values (columns holding values pass through)."""
        import ray

        non_tensors = dict(data.non_tensor_batch)
        for key in keys:
            if not is_stashed(data, key):
                continue
            refs = list(non_tensors[key])
            missing = [r for r in dict.fromkeys(refs) if r not in self._values]
            self._values.update(zip(missing, ray.get(missing)))
            values = np.empty(len(refs), dtype=object)
            for i, ref in enumerate(refs):
                values[i] = self._values[ref]
            non_tensors[key] = values
        return DataProto(batch=data.batch, non_tensor_batch=non_tensors, meta_info=dict(data.meta_info))

    def clear(self) -> None:
        self._values.clear()

    def __len__(self) -> int:
        return len(self._values)
