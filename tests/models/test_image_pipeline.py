"""The LIBERO image pipeline against pixels recorded from TensorFlow, and the processor.

tests/models/data/tf_image_pipeline.npz was written by scripts/tf_image_reference.py with
TensorFlow 2.21 (a synthetic 256x256 frame and TF's output after each stage).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from verl.models.openvla_oft import image_ops
from verl.models.openvla_oft.processing import OpenVLAOFTProcessor

DATA = Path(__file__).parent / "data" / "tf_image_pipeline.npz"


@pytest.fixture(scope="module")
def tf_reference() -> dict[str, np.ndarray]:
    with np.load(DATA) as data:
        return dict(data)


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    return int(np.abs(a.astype(np.int32) - b.astype(np.int32)).max())


def test_jpeg_round_trip_matches_tf(tf_reference):
    decoded = image_ops.jpeg_decode(image_ops.jpeg_encode(tf_reference["frame"]))
    # simplejpeg decodes like TF (fast integer DCT); PIL's accurate DCT is a few levels off
    bound = 0 if image_ops.jpeg_backend() == "simplejpeg" else 12
    assert _max_diff(decoded, tf_reference["jpeg"]) <= bound


def test_lanczos_resize_matches_tf(tf_reference):
    ours = image_ops.lanczos_resize(tf_reference["jpeg"], 224)
    diff = np.abs(ours.astype(np.int32) - tf_reference["resized"].astype(np.int32))
    assert diff.max() <= 1  # float64 here vs float32 in TF: rare rounding ties
    assert (diff > 0).mean() < 1e-3


def test_center_crop_matches_tf_exactly(tf_reference):
    assert _max_diff(image_ops.center_crop(tf_reference["resized"]), tf_reference["cropped"]) == 0


def test_full_pipeline_close_to_tf(tf_reference):
    ours = image_ops.policy_image(image_ops.jpeg_encode(tf_reference["frame"]), 224)
    bound = 1 if image_ops.jpeg_backend() == "simplejpeg" else 12
    assert _max_diff(ours, tf_reference["cropped"]) <= bound


def test_center_crop_zooms_in():
    # a horizontal ramp: the crop keeps the central 94.9% of the width, so the ends move inwards
    ramp = np.tile(np.linspace(0, 255, 224).round().astype(np.uint8)[None, :, None], (224, 1, 3))
    out = image_ops.center_crop(ramp)
    assert 5 <= int(out[0, 0, 0]) <= 8 and 247 <= int(out[0, -1, 0]) <= 250
    assert (np.diff(out[0, :, 0].astype(int)) >= 0).all()


def test_processor_images(tiny_checkpoint):
    processor = OpenVLAOFTProcessor.from_pretrained(tiny_checkpoint)
    frame = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    jpeg = processor.encode_image(frame)
    image = processor.decode_image(jpeg)
    assert image.shape == (processor.image_size, processor.image_size, 3) and image.dtype == np.uint8
    assert np.array_equal(processor.decode_image(jpeg), image)  # deterministic: rollouts store only the JPEG

    flipping = OpenVLAOFTProcessor.from_pretrained(tiny_checkpoint, flip=True)
    assert flipping.encode_image(frame) == processor.encode_image(frame[::-1, ::-1].copy())

    white = torch.full((1, 4, 4, 3), 255, dtype=torch.uint8)
    pixels = processor.normalize(white)
    assert pixels.shape == (1, 6, 4, 4)
    # (1 - mean) / std with the bf16-rounded DINOv2 stats of the released preprocessor_config.json
    assert pixels[0, 0, 0, 0].item() == pytest.approx((1 - 0.484375) / 0.228515625, rel=1e-6)
    assert pixels[0, 3, 0, 0].item() == pytest.approx(1.0)
    two = processor.pixel_values(torch.stack([white[0], torch.zeros_like(white[0])])[None])
    assert two.shape == (1, 12, 4, 4) and two[0, 9, 0, 0].item() == pytest.approx(-1.0)


def test_prompt_format(tiny_checkpoint):
    processor = OpenVLAOFTProcessor.from_pretrained(tiny_checkpoint)
    ids = processor.prompt_ids("Open the TOP drawer")
    assert ids[0] == 1 and ids[-1] == 29871  # BOS first, "▁" last
    assert 13 in ids and ids[-2] == 29901  # "\n" (byte token) and the final ":" of "Out:"
    text = processor.tokenizer.decode(ids[1:-1])
    assert text == "In: What action should the robot take to open the top drawer?\nOut:"

    input_ids, mask = processor.tokenize(
        ["open the top drawer", "pick up the black bowl and place it on the plate"]
    )
    lengths = mask.sum(1)
    assert lengths[0] < lengths[1] and input_ids.shape[1] == lengths[1]
    assert (input_ids[0, lengths[0] :] == 32000).all() and input_ids[0, lengths[0] - 1] == 29871


def test_crop_resize_of_a_320x240_frame_hand_computed():
    """RoboTwin's pipeline: the centred 90%-area box of a 240 x 320 frame straight to 224 x 224. On a
    horizontal ramp (value = column) bilinear sampling is exact, so each output column holds the input
    column it samples: lo * 319 + j * (hi - lo) * 319 / 223, lo = (1 - sqrt(0.9)) / 2."""
    frame = np.repeat(np.tile(np.arange(320) * 255 / 319, (240, 1))[..., None], 3, axis=2)
    frame = np.round(frame).astype(np.uint8)
    out = image_ops.crop_resize(frame, 224)
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8
    lo, side = (1 - np.sqrt(0.9)) / 2, np.sqrt(0.9)
    column = lo * 319 + np.arange(224) * side * 319 / 223
    expected = np.trunc(np.clip(np.interp(column, np.arange(320), frame[0, :, 0]) / 255, 0, 1) * 255.5)
    assert np.abs(out[0, :, 0].astype(float) - expected).max() <= 1
    assert (out == out[:1]).all()  # rows identical: the ramp does not change along y
    # The box keeps sqrt(0.9) of each side: the first and last columns sample ~2.6% in from the edges.
    assert 5 <= out[0, 0, 0] <= 8 and 247 <= out[0, -1, 0] <= 250
    # With size None it is the square centre crop of the LIBERO pipeline.
    square = frame[:, :240]
    np.testing.assert_array_equal(image_ops.crop_resize(square), image_ops.center_crop(square))


def test_processor_crop_resize_pipeline_is_lossless_until_the_crop(tiny_checkpoint):
    processor = OpenVLAOFTProcessor.from_pretrained(tiny_checkpoint, image_pipeline="crop_resize")
    frame = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    stored = processor.encode_image(frame)
    np.testing.assert_array_equal(image_ops.png_decode(stored), frame)
    decoded = processor.decode_image(stored)
    size = processor.image_size
    np.testing.assert_array_equal(decoded, image_ops.crop_resize(frame, size))
    with pytest.raises(ValueError, match="image_pipeline='tf'; allowed"):
        OpenVLAOFTProcessor.from_pretrained(tiny_checkpoint, image_pipeline="tf")
