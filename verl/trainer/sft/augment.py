"""Image augmentations for SFT on few demonstrations, applied to uint8 frames after the image pipeline.

Random shifts (pad by replicating the border, crop back at a random offset) are the augmentation
that matters most for image-based policies trained on little data; brightness/contrast jitter adds
robustness to the renderer's lighting. Both are seeded through an explicit `torch.Generator`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_shift(images: torch.Tensor, max_px: int, generator: torch.Generator) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> uint8 [N, S, S, 3], each image translated by up to `max_px` pixels per axis."""
    if max_px <= 0:
        return images
    n, s = images.shape[0], images.shape[1]
    x = images.permute(0, 3, 1, 2).float()  # [N, 3, S, S]
    padded = F.pad(x, (max_px, max_px, max_px, max_px), mode="replicate")  # [N, 3, S + 2p, S + 2p]
    offsets = torch.randint(0, 2 * max_px + 1, (n, 2), generator=generator)
    out = torch.stack([padded[i, :, oy : oy + s, ox : ox + s] for i, (oy, ox) in enumerate(offsets.tolist())])
    return out.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def color_jitter(
    images: torch.Tensor, brightness: float, contrast: float, generator: torch.Generator
) -> torch.Tensor:
    """uint8 [N, S, S, 3] -> uint8 [N, S, S, 3] with per-image factors in [1 - x, 1 + x].

    Brightness scales the pixel values; contrast blends each image with its mean grey level.
    """
    if brightness <= 0 and contrast <= 0:
        return images
    n = images.shape[0]
    x = images.float()
    if brightness > 0:
        b = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * brightness
        x = x * b[:, None, None, None]
    if contrast > 0:
        c = 1.0 + (torch.rand(n, generator=generator) * 2 - 1) * contrast
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c[:, None, None, None] + mean
    return x.clamp(0, 255).round().to(torch.uint8)


def augment_images(
    images: torch.Tensor, shift_px: int, brightness: float, contrast: float, generator: torch.Generator
) -> torch.Tensor:
    """uint8 [N, n_img, S, S, 3] -> the same shape, every image shifted and jittered independently."""
    n, k = images.shape[:2]
    flat = images.reshape(n * k, *images.shape[2:])
    flat = color_jitter(random_shift(flat, shift_px, generator), brightness, contrast, generator)
    return flat.reshape(images.shape)
