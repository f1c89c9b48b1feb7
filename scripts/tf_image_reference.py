"""Record the TensorFlow image pipeline of OpenVLA-OFT's LIBERO eval on a synthetic frame.

Needs TensorFlow (not a project dependency; run it from any environment that has it):
    python scripts/tf_image_reference.py tests/models/data/tf_image_pipeline.npz

The output holds the input frame and TF's result after each stage (JPEG round trip, Lanczos-3
resize to 224, 90%-area centre crop), which `tests/models/test_image_pipeline.py` compares with
`verl.models.openvla_oft.image_ops`.
"""

from __future__ import annotations

import argparse

import numpy as np


def synthetic_frame(size: int = 256, seed: int = 0) -> np.ndarray:
    """uint8 [size, size, 3]: gradients, hard-edged shapes and mild noise, like a rendered scene."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64) / size
    image = np.stack([200 * xx + 30, 180 * yy + 40, 120 * (1 - xx * yy) + 60], axis=-1)
    for _ in range(12):
        cy, cx, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.03, 0.15)
        color = rng.uniform(0, 255, size=3)
        if rng.uniform() < 0.5:
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
        else:
            inside = (np.abs(yy - cy) < r) & (np.abs(xx - cx) < r * 0.6)
        image[inside] = color
    # a textured band (like a table top): JPEG and resampling errors show on texture and edges
    image[size // 2 :] += rng.normal(0, 6, size=image[size // 2 :].shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def tf_pipeline(frame: np.ndarray, size: int = 224, crop_area: float = 0.9) -> dict[str, np.ndarray]:
    import tensorflow as tf

    jpeg = tf.io.decode_image(tf.image.encode_jpeg(frame), expand_animations=False, dtype=tf.uint8)
    resized = tf.image.resize(jpeg, (size, size), method="lanczos3", antialias=True)
    resized = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    image = tf.image.convert_image_dtype(resized, tf.float32)
    side = tf.clip_by_value(tf.sqrt(tf.constant([crop_area], dtype=tf.float32)), 0, 1)
    offset = (1 - side) / 2
    boxes = tf.stack([offset, offset, offset + side, offset + side], axis=1)
    cropped = tf.image.crop_and_resize(image[None], boxes, tf.range(1), (size, size))[0]
    cropped = tf.image.convert_image_dtype(tf.clip_by_value(cropped, 0, 1), tf.uint8, saturate=True)
    return {"jpeg": jpeg.numpy(), "resized": resized.numpy(), "cropped": cropped.numpy()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="path of the .npz to write")
    args = parser.parse_args()
    frame = synthetic_frame()
    np.savez_compressed(args.output, frame=frame, **tf_pipeline(frame))


if __name__ == "__main__":
    main()
