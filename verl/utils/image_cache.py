"""Decode each stored image record once per RL step, however many passes read it.

The rollout keeps every camera image as compressed bytes (JPEG for the OpenVLA policies); the actor's
passes over a step's batch (old log-probs, reference log-probs, the update) each need the decoded,
resized images. Decoding is CPU work on the GPU's critical path, so the cache keys decoded images by
their bytes (decoding is deterministic, so this is exact whatever the batch order or split) and the
worker clears it at the end of each step. It holds at most one step's images: S x S x 3 uint8 per
image (150 KB at 224 px). The policy supplies the decoder (`Policy.step_batch(..., cache=...)`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


class ImageDecodeCache:
    """`decode(record) -> uint8 [S, S, 3]` memoised by the record's bytes, with throughput counters."""

    def __init__(self) -> None:
        self._images: dict[bytes, np.ndarray] = {}
        self.decoded = 0  # images decoded since the last clear
        self.hits = 0  # images served from the cache since the last clear
        self.seconds = 0.0  # time spent decoding since the last clear

    def __len__(self) -> int:
        return len(self._images)

    def image(self, record: bytes, decode: Callable[[bytes], np.ndarray]) -> np.ndarray:
        found = self._images.get(record)
        if found is not None:
            self.hits += 1
            return found
        start = time.perf_counter()
        image = decode(record)
        self.seconds += time.perf_counter() - start
        self.decoded += 1
        self._images[record] = image
        return image

    def stack(self, rows: Sequence[Sequence[bytes]], decode: Callable[[bytes], np.ndarray]) -> np.ndarray:
        """[n][n_img] records -> uint8 [n, n_img, S, S, 3]."""
        return np.stack([[self.image(j, decode) for j in row] for row in rows])

    def stats(self) -> dict[str, float]:
        """Decode throughput (images per second of one core: decoding runs on the calling thread)."""
        return {
            "perf/images_decoded": float(self.decoded),
            "perf/image_cache_hits": float(self.hits),
            "perf/image_decode_per_s_per_core": self.decoded / self.seconds if self.seconds > 0 else 0.0,
        }

    def clear(self) -> None:
        self._images.clear()
        self.decoded = self.hits = 0
        self.seconds = 0.0
