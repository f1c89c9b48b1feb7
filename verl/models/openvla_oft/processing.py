"""Observation -> model inputs for OpenVLA-OFT: images and prompts.

Images follow the LIBERO eval pipeline of the released checkpoints (see `image_ops`):
    [optional 180 deg flip] -> JPEG (q95) -> decode -> Lanczos-3 resize to S -> 90%-area centre crop
    -> /255 -> two normalisations (DINOv2 stats, SigLIP stats) -> 6 channels per image.
The flip is off by default: our envs already return upright frames. `encode_image` returns the
JPEG bytes; storing those (tens of KB) instead of float pixels (1.2 MB at 224 px) is enough to
rebuild the exact same pixels later with `decode_image`, which is deterministic.

S and the normalisation statistics are read from `preprocessor_config.json` (`input_sizes`,
`tvf_normalize_params`; the released DINOv2 stats there are bf16-rounded and must not be replaced
by the textbook ImageNet values).

Prompts: "In: What action should the robot take to {instruction.lower()}?\\nOut:", tokenised
without special tokens, BOS prepended, 29871 ("▁") appended, right-padded with <PAD>.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

import verl.models.openvla_oft.image_ops as image_ops  # not via the package (import cycle)
from verl.models.openvla_oft.configuration import BOS_TOKEN_ID, PROMPT_END_TOKEN_ID

PREPROCESSOR_CONFIG_NAME = "preprocessor_config.json"
# Files that travel with a checkpoint's processor (those absent are skipped when saving).
PROCESSOR_FILES = (
    PREPROCESSOR_CONFIG_NAME,
    "processor_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
)
PROMPT_TEMPLATE = "In: What action should the robot take to {instruction}?\nOut:"
# How frames become model inputs. "jpeg_resize_crop" (LIBERO): JPEG q95 round trip, Lanczos resize to S,
# 90%-area centre crop. "crop_resize" (RoboTwin, SimpleVLA-RL): the 90%-area centre box of the raw frame
# resized straight to S x S (a 320 x 240 frame is squashed), frames stored losslessly (PNG).
IMAGE_PIPELINES = ("jpeg_resize_crop", "crop_resize")


class OpenVLAOFTProcessor:
    """Image pipeline + prompt tokenizer of one checkpoint."""

    def __init__(
        self,
        tokenizer: Any,
        preprocessor_config: dict[str, Any],
        pad_token_id: int = 32000,
        flip: bool = False,
        center_crop: bool = True,
        source_dir: Path | None = None,
        image_pipeline: str = "jpeg_resize_crop",
    ):
        """`tokenizer` is a `tokenizers.Tokenizer`; `flip` rotates frames by 180 deg before the JPEG
        (only for envs that return LIBERO's raw upside-down frames); `center_crop` must stay on for
        the released checkpoints (trained with 90%-area random crops)."""
        if image_pipeline not in IMAGE_PIPELINES:
            raise ValueError(f"image_pipeline={image_pipeline!r}; allowed: {IMAGE_PIPELINES}")
        self.image_pipeline = image_pipeline
        self.tokenizer = tokenizer
        self.preprocessor_config = preprocessor_config
        self.pad_token_id = pad_token_id
        self.flip = flip
        self.center_crop = center_crop
        self.source_dir = source_dir
        self.image_size = int(preprocessor_config["input_sizes"][0][-1])
        if "tvf_normalize_params" in preprocessor_config:
            params = preprocessor_config["tvf_normalize_params"]
            means, stds = [p["mean"] for p in params], [p["std"] for p in params]
        else:
            means, stds = preprocessor_config["means"], preprocessor_config["stds"]
        if len(means) != 2 or len(stds) != 2:
            raise ValueError(
                f"{PREPROCESSOR_CONFIG_NAME}: expected two normalisations (DINOv2, SigLIP), got {means}"
            )
        self.mean = torch.tensor(means, dtype=torch.float32).reshape(1, 6, 1, 1)
        self.std = torch.tensor(stds, dtype=torch.float32).reshape(1, 6, 1, 1)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        flip: bool = False,
        center_crop: bool = True,
        image_pipeline: str = "jpeg_resize_crop",
    ) -> OpenVLAOFTProcessor:
        from tokenizers import Tokenizer

        path = Path(path)
        with open(path / PREPROCESSOR_CONFIG_NAME) as f:
            preprocessor_config = json.load(f)
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        pad = tokenizer.token_to_id("<PAD>")
        if pad is None:
            raise ValueError(f"{path}/tokenizer.json has no <PAD> token (expected id 32000)")
        return cls(
            tokenizer,
            preprocessor_config,
            pad,
            flip=flip,
            center_crop=center_crop,
            source_dir=path,
            image_pipeline=image_pipeline,
        )

    def save_pretrained(self, path: str | Path) -> None:
        """Copy the processor and tokenizer files of the source checkpoint to `path`."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / PREPROCESSOR_CONFIG_NAME, "w") as f:
            json.dump(self.preprocessor_config, f, indent=2)
        if self.source_dir is None:
            self.tokenizer.save(str(path / "tokenizer.json"))
            return
        for name in PROCESSOR_FILES[1:]:
            src = self.source_dir / name
            if src.exists() and src.resolve() != (path / name).resolve():
                shutil.copyfile(src, path / name)

    # ------------------------------------------------------------------ images
    def encode_image(self, image: np.ndarray) -> bytes:
        """uint8 [H, W, 3] frame -> the bytes rollouts store: the pipeline's JPEG round trip, or PNG
        (lossless) for the crop_resize pipeline."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image must be uint8 [H, W, 3], got {image.dtype} {image.shape}")
        if self.image_pipeline == "crop_resize":
            return image_ops.png_encode(image_ops.flip_180(image) if self.flip else image)
        return image_ops.jpeg_encode(image_ops.flip_180(image) if self.flip else image)

    def decode_image(self, jpeg: bytes) -> np.ndarray:
        """Stored bytes -> uint8 [S, S, 3]: decode, Lanczos resize, centre crop (jpeg_resize_crop), or
        decode and crop-and-resize the centre box to S (crop_resize)."""
        if self.image_pipeline == "crop_resize":
            image = image_ops.png_decode(jpeg)
            return image_ops.crop_resize(image, self.image_size) if self.center_crop else image
        return image_ops.policy_image(jpeg, self.image_size, crop=self.center_crop)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, S, S, 3] -> float32 [N, 6, S, S] (DINOv2-normalised | SigLIP-normalised)."""
        x = images.permute(0, 3, 1, 2).float().div(255.0)
        x = torch.cat([x, x], dim=1)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [N, n_img, S, S, 3] (or [N, S, S, 3]) -> float32 [N, 6 * n_img, S, S]."""
        if images.ndim == 4:
            images = images[:, None]
        n, k = images.shape[:2]
        return self.normalize(images.flatten(0, 1)).reshape(n, 6 * k, *images.shape[2:4])

    # ------------------------------------------------------------------ prompts
    def prompt_ids(self, instruction: str) -> list[int]:
        """Token ids of one prompt: BOS, the prompt text, 29871."""
        text = PROMPT_TEMPLATE.format(instruction=instruction.lower())
        ids = [BOS_TOKEN_ID, *self.tokenizer.encode(text, add_special_tokens=False).ids]
        if ids[-1] != PROMPT_END_TOKEN_ID:
            ids.append(PROMPT_END_TOKEN_ID)
        return ids

    def pad(self, prompts: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token id lists -> input_ids [N, L] right-padded with <PAD>, attention_mask [N, L]."""
        length = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), length), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), length), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        return input_ids, attention_mask

    def tokenize(self, instructions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instructions -> input_ids [N, L], attention_mask [N, L] (right padding)."""
        return self.pad([self.prompt_ids(text) for text in instructions])
