"""ManiSkill3's own settings: the `env.maniskill.*` config node (cameras, privileged state)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from verl.envs.config import EnvConfig, positive

RENDER_BACKENDS = ("sapien_cpu", "sapien_cuda")


@dataclass
class ManiskillConfig:
    """`env.maniskill.*`."""

    # Height and width of every camera image, in pixels (OpenVLA-OFT's input size).
    camera_size: int = 224
    # Also render the hand camera (obs["images"]["hand_camera"]); the robot becomes ManiSkill's
    # "panda_wristcam" (the same arm with a camera mount). Tasks that need it use it always.
    use_hand_camera: bool = False
    # SAPIEN renderer: "sapien_cpu" (Vulkan on any device; on CPU machines Mesa's lavapipe) or
    # "sapien_cuda" (GPU nodes). Images of the two may differ slightly.
    render_backend: str = "sapien_cpu"
    # Add obs["privileged"]: poses of the robot's TCP and of every scene actor (scripted experts).
    privileged_obs: bool = False

    def validate(self, prefix: str, env: Any) -> None:
        """Raise ValueError naming the offending `<prefix>.<field>` and its allowed values."""
        positive(f"{prefix}.camera_size", self.camera_size)
        if self.render_backend not in RENDER_BACKENDS:
            raise ValueError(f"{prefix}.render_backend={self.render_backend!r}; allowed: {RENDER_BACKENDS}")
        if env.render_mode == "none" and self.use_hand_camera:
            raise ValueError(
                f"{prefix}.use_hand_camera=True needs cameras; env.render_mode must be 'chunk' or 'every_step'"
            )


def maniskill_env_config(**kwargs: Any) -> EnvConfig:
    """An `EnvConfig` for ManiSkill from one set of keyword arguments: shared fields (max_steps,
    render_mode, num_workers, ...) go to `EnvConfig`, ManiSkill's own (camera_size, use_hand_camera,
    render_backend, privileged_obs) to `env.maniskill`. For scripts and tests."""
    shared = {f.name for f in dataclasses.fields(EnvConfig)} - {"sims", "name"}
    own = {f.name for f in dataclasses.fields(ManiskillConfig)}
    unknown = sorted(set(kwargs) - shared - own)
    if unknown:
        raise TypeError(f"unknown ManiSkill env settings {unknown}; allowed: {sorted(shared | own)}")
    sim = ManiskillConfig(**{k: v for k, v in kwargs.items() if k in own})
    return EnvConfig(
        name="maniskill", sims={"maniskill": sim}, **{k: v for k, v in kwargs.items() if k in shared}
    )
