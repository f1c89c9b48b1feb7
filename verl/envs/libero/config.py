"""LIBERO's own settings: the `env.libero.*` config node (episode protocol, cameras, perturbation).

Defaults reproduce the official OpenVLA-OFT LIBERO evaluation protocol.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from verl.envs.config import EnvConfig, non_negative, positive


@dataclass
class PerturbationConfig:
    """Seeded noise on the initial poses of the movable objects, applied after the init state is set.

    Off when both sizes are 0. The offsets are drawn uniformly in [-size, size] from the reset
    request's seed, so the same (init state, seed) always gives the same scene.
    """

    # Half-width of the uniform x/y offset of every movable object, in metres (z is never changed).
    pos_noise_m: float = 0.0
    # Half-width of the uniform rotation about the world z axis, in radians.
    yaw_noise_rad: float = 0.0
    # Samples tried per object before it is left at its original pose, when a sample would make the
    # object interpenetrate its neighbours more than `penetration_tol_m` beyond the original state.
    max_tries: int = 20
    # Extra penetration depth (metres) tolerated relative to the unperturbed scene.
    penetration_tol_m: float = 0.002

    @property
    def enabled(self) -> bool:
        return self.pos_noise_m > 0.0 or self.yaw_noise_rad > 0.0


@dataclass
class LiberoConfig:
    """`env.libero.*`."""

    # Steps with the dummy action (zero motion, gripper open) after reset, letting objects settle;
    # they do not count toward env.max_steps.
    num_steps_wait: int = 10
    # Height and width of every camera image, in pixels.
    camera_size: int = 256
    # Also render the wrist camera (obs["images"]["wrist"]); when False the wrist camera is not built.
    use_wrist_image: bool = False
    # Add obs["privileged"] (simulator state for scripted experts; see verl.envs.libero.privileged).
    privileged_obs: bool = False
    # Seeded initial-pose perturbation of the movable objects (generalisation tests).
    perturbation: PerturbationConfig = field(default_factory=PerturbationConfig)

    def validate(self, prefix: str, env: Any) -> None:
        """Raise ValueError naming the offending `<prefix>.<field>` and its allowed values."""
        non_negative(f"{prefix}.num_steps_wait", self.num_steps_wait)
        positive(f"{prefix}.camera_size", self.camera_size)
        p = self.perturbation
        non_negative(f"{prefix}.perturbation.pos_noise_m", p.pos_noise_m)
        non_negative(f"{prefix}.perturbation.yaw_noise_rad", p.yaw_noise_rad)
        positive(f"{prefix}.perturbation.max_tries", p.max_tries)
        non_negative(f"{prefix}.perturbation.penetration_tol_m", p.penetration_tol_m)
        if env.render_mode == "none" and self.use_wrist_image:
            raise ValueError(
                f"{prefix}.use_wrist_image=True needs cameras; env.render_mode must be 'chunk' or 'every_step'"
            )


def libero_env_config(**kwargs: Any) -> EnvConfig:
    """An `EnvConfig` for LIBERO from one set of keyword arguments: shared fields (suite, max_steps,
    render_mode, num_workers, ...) go to `EnvConfig`, LIBERO's own (camera_size, use_wrist_image,
    num_steps_wait, privileged_obs, perturbation) to `env.libero`. For scripts and tests."""
    shared = {f.name for f in dataclasses.fields(EnvConfig)} - {"sims", "name"}
    own = {f.name for f in dataclasses.fields(LiberoConfig)}
    unknown = sorted(set(kwargs) - shared - own)
    if unknown:
        raise TypeError(f"unknown LIBERO env settings {unknown}; allowed: {sorted(shared | own)}")
    sim = LiberoConfig(**{k: v for k, v in kwargs.items() if k in own})
    return EnvConfig(name="libero", sims={"libero": sim}, **{k: v for k, v in kwargs.items() if k in shared})
