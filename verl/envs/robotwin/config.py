"""`env.robotwin2.*`: RoboTwin 2.0's own settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from verl.envs.robotwin.tasks import PROTOCOLS

SHADERS = ("rt", "default", "minimal")
TASK_CONFIGS = ("demo_clean", "demo_randomized")
INSTRUCTION_TYPES = ("seen", "unseen")


@dataclass
class RobotwinConfig:
    """`env.robotwin2.*`. Shader, shadows and embodiment change the images: the worker logs them."""

    # Episode protocol (see verl.envs.robotwin.tasks): "simplevla" (SimpleVLA-RL's step limits and seed
    # ranges) or "official" (RoboTwin's _eval_step_limit.yml and eval_policy.py seeds).
    protocol: str = "simplevla"
    # Under protocol=official: the eval script's `seed`; episodes use seeds 100000 * (1 + seed) + i.
    official_seed: int = 0
    # Root holding `assets/` (embodiments, objects, background_texture); None = $ROBOTWIN_ASSETS_ROOT.
    assets_root: Optional[str] = None
    # RoboTwin task configuration: demo_clean (no randomisation) or demo_randomized (SimpleVLA-RL's RL
    # setting: textures, clutter, random lights; needs the full official assets).
    task_config: str = "demo_clean"
    # [left, right, distance in m] (two single arms; SimpleVLA-RL: [piper,piper,0.6]) or [name] of one
    # dual-arm robot ([aloha-agilex], the leaderboard's), as RoboTwin's task configs write it.
    embodiment: list[str] = field(default_factory=lambda: ["piper", "piper", "0.6"])
    # Camera shader: "rt" (RoboTwin's ray tracing, 32 spp; GPU nodes), "default" (raster; the CPU choice,
    # ~50x faster on lavapipe) or "minimal".
    shader: str = "rt"
    # Denoiser of the rt shader: "oidn" (RoboTwin's) or "none" (no CUDA denoiser, e.g. Hopper GPUs).
    denoiser: str = "oidn"
    # Shadows of the two point lights (RoboTwin: on); a 4-5x render cost on CPU.
    point_light_shadows: bool = True
    # Instruction templates: "seen" (training) or "unseen" (evaluation), as RoboTwin's generator names them.
    instruction_type: str = "seen"
    # Interpreter of the RoboTwin venv; None = <repo>/.venv-robotwin/bin/python (scripts/setup_robotwin.sh).
    venv_python: Optional[str] = None

    def validate(self, prefix: str, env: Any) -> None:
        for name, allowed in (
            ("protocol", PROTOCOLS),
            ("shader", SHADERS),
            ("task_config", TASK_CONFIGS),
            ("instruction_type", INSTRUCTION_TYPES),
            ("denoiser", ("oidn", "none")),
        ):
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"{prefix}.{name}={value!r}; allowed: {allowed}")
        embodiment_parts(self.embodiment, f"{prefix}.embodiment")


def embodiment_parts(value: list[str], key: str = "env.robotwin2.embodiment") -> list:
    """['piper', 'piper', '0.6'] -> ['piper', 'piper', 0.6]; ['aloha-agilex'] -> ['aloha-agilex']."""
    parts = [str(p).strip() for p in value]
    if len(parts) == 1:
        return parts
    if len(parts) == 3:
        try:
            return [parts[0], parts[1], float(parts[2])]
        except ValueError:
            pass
    raise ValueError(f"{key}={list(value)!r}; allowed: [name] or [left,right,distance_in_m]")
