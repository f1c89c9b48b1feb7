"""Each JPEG is decoded once per step, whatever the number of passes; the results are the decoder's."""

import numpy as np

from verl.utils.image_cache import ImageDecodeCache


def test_decodes_each_image_once_until_cleared():
    calls = []

    def decode(jpeg: bytes) -> np.ndarray:
        calls.append(jpeg)
        return np.full((2, 2, 3), jpeg[0], dtype=np.uint8)

    cache = ImageDecodeCache()
    rows = [[b"\x01a"], [b"\x02b"], [b"\x01a"]]
    first = cache.stack(rows, decode)  # a second pass over the same batch (e.g. the update after log-probs)
    second = cache.stack(rows[::-1], decode)
    assert first.shape == (3, 1, 2, 2, 3)
    assert [int(x) for x in first[:, 0, 0, 0, 0]] == [1, 2, 1]
    assert np.array_equal(second, first[::-1])
    assert len(calls) == 2 and len(cache) == 2
    stats = cache.stats()
    assert stats["perf/images_decoded"] == 2 and stats["perf/image_cache_hits"] == 4
    assert stats["perf/image_decode_per_s_per_core"] > 0
    cache.clear()
    assert len(cache) == 0 and cache.stats()["perf/images_decoded"] == 0
    cache.stack(rows[:1], decode)
    assert len(calls) == 3
