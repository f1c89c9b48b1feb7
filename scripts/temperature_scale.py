"""Temperature scaling of a checkpoint's action head: every action logit multiplied by --scale.

    python scripts/temperature_scale.py --checkpoint SFT_DIR --scale 3.2 --out SCALED_DIR

The 256 action rows of lm_head are multiplied by the scale and the checkpoint is written again in
the same layout (weights, config, processor, tokenizer and statistics). Greedy actions do not
change; sampling the scaled checkpoint at temperature T draws what the original draws at T / scale.
GRPO's rollout temperature (1.6 in the published recipe) assumes an SFT policy whose samples at 1.6
stay near its greedy actions, as a 7B checkpoint's do; a small policy trained on a few dozen
demonstrations is far less sharp, and this brings it into that regime without changing the recipe.
The output directory is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def scale_checkpoint(checkpoint: Path, scale: float, out: Path) -> Path:
    """Write `checkpoint` with its action logits multiplied by `scale` to `out` (a new directory)."""
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy

    if not (checkpoint / "config.json").is_file():
        raise SystemExit(f"--checkpoint {checkpoint}: no config.json there")
    if out.exists():
        raise SystemExit(f"--out {out} exists; choose a new directory")
    policy = OpenVLAOFTPolicy.from_pretrained(checkpoint)
    try:
        policy.model.scale_action_logits(scale)
    except ValueError as e:
        raise SystemExit(f"--scale: {e}") from e
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint, tmp)
    policy.save_pretrained(tmp)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint directory (HF layout)")
    p.add_argument("--scale", type=float, required=True, help="factor on every action logit (> 0)")
    p.add_argument("--out", required=True, help="new checkpoint directory")
    a = p.parse_args(argv)
    out = scale_checkpoint(Path(a.checkpoint), a.scale, Path(a.out))
    print(json.dumps({"checkpoint": str(out), "scale": a.scale}))


if __name__ == "__main__":
    main()
