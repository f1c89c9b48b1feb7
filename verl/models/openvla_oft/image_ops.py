"""The image pipelines of OpenVLA-OFT in numpy + PIL (no TensorFlow): LIBERO's, described below, and
RoboTwin's (SimpleVLA-RL), which has no JPEG round trip and no Lanczos resize: one `crop_and_resize` of
the centred 90%-area box of the 320 x 240 head frame straight to 224 x 224 (`crop_resize`).

The checkpoints were trained on images that went through TensorFlow: a JPEG round trip (quality
95), `tf.image.resize(..., "lanczos3", antialias=True)` rounded to uint8, and a centre crop of 90%
of the area done by `tf.image.crop_and_resize` (bilinear) and converted back to uint8 by
trunc(x * 255.5). This module reproduces each step:
- JPEG: encoded by PIL (libjpeg-turbo, quality 95, 4:2:0: the same coefficients as TF's encoder);
  decoded by `simplejpeg` with the fast integer DCT and fancy upsampling, which is what TF's decoder
  does by default (bit-exact); without `simplejpeg`, PIL's decoder (accurate DCT) differs by a few
  grey levels (up to 9 on the recorded frame);
- resize: a float64 port of TF's scale-and-translate Lanczos-3 kernel with antialiasing, applied
  as two dense weight matrices (rows, then columns);
- crop: a float32 port of crop_and_resize's align-corners bilinear sampling.
`tests/models/test_image_pipeline.py` compares the result with pixels recorded from TensorFlow.
"""

from __future__ import annotations

import io
import math
from functools import cache, lru_cache

import numpy as np
import torch

JPEG_QUALITY = 95
CROP_AREA = 0.9  # training used random_resized_crop(scale=0.9, ratio=1): the eval crop keeps 90% of the area


def flip_180(image: np.ndarray) -> np.ndarray:
    """[H, W, C] -> the image rotated by 180 degrees (LIBERO renders upside down)."""
    return np.ascontiguousarray(image[::-1, ::-1])


def jpeg_encode(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 [H, W, 3] -> JPEG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(
        buffer, format="JPEG", quality=quality, subsampling="4:2:0"
    )
    return buffer.getvalue()


@cache
def jpeg_backend() -> str:
    """ "simplejpeg" (bit-exact with TF's decoder) when installed, else "pil"."""
    try:
        import simplejpeg  # noqa: F401
    except ImportError:
        return "pil"
    return "simplejpeg"


def jpeg_decode(data: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 [H, W, 3], decoded as TensorFlow does (see the module docstring)."""
    if jpeg_backend() == "simplejpeg":
        import simplejpeg

        return simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _lanczos3(x: np.ndarray) -> np.ndarray:
    radius = 3.0
    x = np.abs(x)
    safe = np.where(x < 1e-12, 1.0, x)
    value = radius * np.sin(np.pi * safe) * np.sin(np.pi * safe / radius) / (np.pi**2 * safe**2)
    return np.where(x > radius, 0.0, np.where(x < 1e-12, 1.0, value))


@lru_cache(maxsize=16)
def lanczos_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out_size, in_size] resampling matrix of an antialiased Lanczos-3 resize.

    Output sample x sits at (x + 0.5) / scale in input coordinates; when shrinking, the kernel is
    stretched by 1 / scale (antialiasing). Each row is normalised to sum to one.
    """
    scale = out_size / in_size
    kernel_scale = max(1.0 / scale, 1.0)
    support = 3.0 * kernel_scale
    weights = np.zeros((out_size, in_size), dtype=np.float64)
    for x in range(out_size):
        center = (x + 0.5) / scale
        start = max(math.ceil(center - support - 0.5), 0)
        stop = min(math.floor(center + support - 0.5) + 1, in_size)
        taps = np.arange(start, stop)
        w = _lanczos3((taps + 0.5 - center) / kernel_scale)
        total = w.sum()
        weights[x, start:stop] = w / total if abs(total) > 1e-9 else 0.0
    return weights


def lanczos_resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [size, size, C]: Lanczos-3 antialiased, rounded half to even, clipped."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image.copy()
    rows = lanczos_weights(h, size)  # [size, H]
    cols = lanczos_weights(w, size)  # [size, W]
    # torch matmul (float64) follows torch's thread setting; numpy's BLAS threads spin on busy machines
    c = image.shape[2]
    x = torch.from_numpy(rows) @ torch.from_numpy(image.reshape(h, w * c)).double()  # [size, W * C]
    x = x.reshape(size, w, c).transpose(0, 1).reshape(w, size * c)
    x = (torch.from_numpy(cols) @ x).reshape(size, size, c).transpose(0, 1)  # [size (rows), size (cols), C]
    return x.round().clamp(0, 255).to(torch.uint8).numpy()


def center_crop(image: np.ndarray, area: float = CROP_AREA) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [H, W, C]: the centred box of `area` of the image, resized back."""
    return crop_resize(image, area=area)


def crop_resize(image: np.ndarray, size: int | None = None, area: float = CROP_AREA) -> np.ndarray:
    """uint8 [H, W, C] -> uint8 [size, size, C] (size None: [H, W, C]): `tf.image.crop_and_resize` of the
    centred box covering `area` of the image (each side scaled by sqrt(area), so a non-square frame keeps
    its aspect inside the box and is squashed by the resize).

    Bilinear sampling on an align-corners grid: output i of n reads input row
    y1 (H - 1) + i (y2 - y1) (H - 1) / (n - 1), with the box [y1, y2] = [(1 - s) / 2, (1 + s) / 2],
    s = sqrt(area), all in float32; uint8 <- trunc(clip(x, 0, 1) * 255.5).
    """
    h, w, _ = image.shape
    out_h, out_w = (h, w) if size is None else (size, size)
    f32 = np.float32
    side = f32(np.sqrt(f32(area)))
    lo = (f32(1.0) - side) / f32(2.0)
    hi = lo + side
    x = image.astype(f32) * f32(1.0 / 255.0)

    def grid(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        step = (hi - lo) * f32(n_in - 1) / f32(n_out - 1)
        pos = lo * f32(n_in - 1) + np.arange(n_out, dtype=f32) * step
        low = np.floor(pos).astype(np.int64)
        high = np.minimum(np.ceil(pos).astype(np.int64), n_in - 1)
        return low, high, (pos - low.astype(f32)).astype(f32)

    top, bottom, y_lerp = grid(h, out_h)
    left, right, x_lerp = grid(w, out_w)
    x_lerp = x_lerp[None, :, None]
    top_row = x[top][:, left] + (x[top][:, right] - x[top][:, left]) * x_lerp
    bottom_row = x[bottom][:, left] + (x[bottom][:, right] - x[bottom][:, left]) * x_lerp
    out = top_row + (bottom_row - top_row) * y_lerp[:, None, None]
    return np.trunc(np.clip(out, 0.0, 1.0) * f32(255.5)).astype(np.uint8)


def png_encode(image: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> PNG bytes (lossless storage for pipelines without a JPEG round trip)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def png_decode(data: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def policy_image(jpeg: bytes, size: int, crop: bool = True) -> np.ndarray:
    """The pipeline after the JPEG encode: decode, Lanczos resize to `size`, optional centre crop."""
    image = lanczos_resize(jpeg_decode(jpeg), size)
    return center_crop(image) if crop else image
