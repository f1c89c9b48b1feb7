"""Named wall-clock timers for the driver's stages (`timing/<name>` metrics)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator


@contextlib.contextmanager
def timer(name: str, sink: dict[str, float]) -> Iterator[None]:
    """Add the block's wall time in seconds to `sink["timing/<name>"]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        key = f"timing/{name}"
        sink[key] = sink.get(key, 0.0) + time.perf_counter() - start
