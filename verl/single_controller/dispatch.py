"""How a worker-group call maps its arguments onto ranks and its results back.

- ONE_TO_ALL: every rank gets the same arguments; the result is the list of per-rank results.
- RANK_ZERO: every rank gets the same arguments (collectives need all ranks); only rank 0's result
  is returned.
- ALL_TO_ALL: each positional argument is a list with one entry per rank; per-rank results.
- DP_COMPUTE_PROTO: `DataProto` arguments are split into `world_size` contiguous parts (sizes may
  differ by one), other arguments are broadcast; the per-rank `DataProto` results are concatenated.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import numpy as np

from verl.protocol import DataProto


class Dispatch(Enum):
    ONE_TO_ALL = "one_to_all"
    RANK_ZERO = "rank_zero"
    ALL_TO_ALL = "all_to_all"
    DP_COMPUTE_PROTO = "dp_compute_proto"


def split_for_ranks(data: DataProto, world_size: int) -> list[DataProto]:
    """Contiguous parts, sizes as even as possible (the first `len % world_size` parts one larger)."""
    bounds = np.cumsum([0] + [len(part) for part in np.array_split(np.arange(len(data)), world_size)])
    return [data.index(slice(int(bounds[r]), int(bounds[r + 1]))) for r in range(world_size)]


def dispatch(mode: Dispatch, world_size: int, args: tuple, kwargs: dict) -> list[tuple[tuple, dict]]:
    """Per-rank (args, kwargs) for one call."""
    if mode in (Dispatch.ONE_TO_ALL, Dispatch.RANK_ZERO):
        return [(args, kwargs) for _ in range(world_size)]
    if mode is Dispatch.ALL_TO_ALL:
        for i, arg in enumerate(list(args) + list(kwargs.values())):
            if not isinstance(arg, (list, tuple)) or len(arg) != world_size:
                raise ValueError(f"ALL_TO_ALL argument {i} must be a list of length world_size={world_size}")
        return [(tuple(a[r] for a in args), {k: v[r] for k, v in kwargs.items()}) for r in range(world_size)]
    if mode is Dispatch.DP_COMPUTE_PROTO:
        split_args = [split_for_ranks(a, world_size) if isinstance(a, DataProto) else None for a in args]
        split_kwargs = {
            k: split_for_ranks(v, world_size) if isinstance(v, DataProto) else None for k, v in kwargs.items()
        }
        per_rank = []
        for r in range(world_size):
            rank_args = tuple(s[r] if s is not None else a for s, a in zip(split_args, args))
            rank_kwargs = {
                k: (split_kwargs[k][r] if split_kwargs[k] is not None else v) for k, v in kwargs.items()
            }
            per_rank.append((rank_args, rank_kwargs))
        return per_rank
    raise ValueError(f"unknown dispatch mode {mode!r}; known: {[m.value for m in Dispatch]}")


def collect(mode: Dispatch, outputs: list[Any]) -> Any:
    """Combine per-rank results."""
    if mode is Dispatch.RANK_ZERO:
        return outputs[0]
    if mode is Dispatch.DP_COMPUTE_PROTO:
        if all(isinstance(o, DataProto) for o in outputs):
            return DataProto.concat(outputs)
        return outputs
    return outputs
