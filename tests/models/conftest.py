"""Tiny OpenVLA-OFT checkpoints written once per session with the same code as
scripts/make_tiny_checkpoint.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verl.models.openvla_oft.configuration import tiny
from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
from verl.models.openvla_oft.tiny import write_tiny_checkpoint

INSTRUCTIONS = [
    "pick up the black bowl and place it on the plate",
    "open the top drawer",
    "put both the alphabet soup and the tomato sauce in the basket",
]


@pytest.fixture(scope="session", autouse=True)
def _threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> str:
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-oft"), seed=0))


@pytest.fixture(scope="session")
def tiny_proprio_checkpoint(tmp_path_factory) -> str:
    """Two images (agent view + wrist) and a proprio token."""
    config = tiny(use_proprio=True, num_images_in_input=2)
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-oft-proprio"), config, seed=1))


@pytest.fixture(scope="session")
def tiny_policy(tiny_checkpoint) -> OpenVLAOFTPolicy:
    return OpenVLAOFTPolicy.from_pretrained(tiny_checkpoint)


def make_observations(n: int, seed: int = 0, wrist: bool = False, size: int = 256) -> list[dict]:
    """n env-like observations: upright uint8 frames, proprio, instructions of different lengths."""
    rng = np.random.default_rng(seed)
    observations = []
    for i in range(n):
        obs = {
            "images": {"agentview": rng.integers(0, 256, (size, size, 3), dtype=np.uint8)},
            "proprio": rng.normal(0.0, 0.5, 8).astype(np.float32),
            "instruction": INSTRUCTIONS[i % len(INSTRUCTIONS)],
        }
        if wrist:
            obs["images"]["wrist"] = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        observations.append(obs)
    return observations
