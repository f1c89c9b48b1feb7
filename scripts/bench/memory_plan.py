"""Device memory per rank of the GRPO worker, per phase: the plan, and with --measure the measurement.

Builds the model on the meta device from a config (the released 7B OpenVLA-OFT by default) and prints
one JSON line per phase (`verl/utils/memory_plan.py` says what each kind holds):
    {"bench": "memory_plan", "world_size", "mode", "phase", "gib_by_kind": {...}, "peak_gib"}
Defaults are the launch script's settings (examples/run_openvla_oft_rl_libero.sh): micro-batch 1 x
16 decision steps per forward, 4 x 16 for old log-probs, 16 observations per rollout forward, bf16
mixed precision, gradient checkpointing, no reference policy.

    .venv/bin/python scripts/bench/memory_plan.py [--world-size 8 16 32] [--lora-rank 32]
    .venv/bin/python scripts/bench/memory_plan.py --measure   # mid-size model, 2 gloo ranks on CPU

--measure runs the real worker (`scripts/bench/memory_measure.py`) and prints, per phase, the
measured peak next to the plan's prediction for that configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The FSDP units of the worker (OpenVLA-OFT's wrap classes; the root unit holds the rest).
WRAP_CLASSES = ("LlamaDecoderLayer", "Block")


def meta_model(config=None):
    """OpenVLA-OFT on the meta device (no memory, no weights); the released 7B by default."""
    import torch

    from verl.models.openvla_oft.configuration import openvla_7b
    from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction

    with torch.device("meta"):
        return OpenVLAOFTForActionPrediction(config or openvla_7b())


def build_plan(
    world_size: int = 8,
    lora_rank: int = 0,
    config=None,
    micro_batch: int = 1,
    steps_per_forward: int = 16,
    log_prob_micro_batch: int = 4,
    rollout_micro_batch: int = 16,
    compute_bytes: int = 2,
    rollout_bytes: int = 2,
    reference: bool = False,
    gradient_checkpointing: bool = True,
    param_offload: bool = False,
    optimizer_offload: bool = False,
) -> list[dict]:
    """The plan's JSON records, one per phase."""
    from verl.models.openvla_oft.lora import LLAMA_PROJECTIONS as DEFAULT_TARGET_MODULES
    from verl.utils.memory_plan import PHASES, PlanSettings, gib_by_kind, model_shape, plan

    shape = model_shape(meta_model(config), WRAP_CLASSES, lora_rank, DEFAULT_TARGET_MODULES)
    settings = PlanSettings(
        world_size=world_size,
        update_sequences=micro_batch * steps_per_forward,
        log_prob_sequences=log_prob_micro_batch * steps_per_forward,
        rollout_sequences=rollout_micro_batch,
        compute_bytes=compute_bytes,
        rollout_bytes=rollout_bytes,
        reference=reference,
        gradient_checkpointing=gradient_checkpointing,
        param_offload=param_offload,
        optimizer_offload=optimizer_offload,
    )
    phases = plan(shape, settings)
    mode = f"lora{lora_rank}" if lora_rank else "full"
    return [
        {
            "bench": "memory_plan",
            "world_size": world_size,
            "mode": mode,
            "phase": phase,
            "gib_by_kind": gib_by_kind(phases[phase]),
            "peak_gib": round(sum(phases[phase].values()) / 2**30, 2),
        }
        for phase in PHASES
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-size", type=int, nargs="+", default=[8])
    parser.add_argument("--lora-rank", type=int, default=0, help="0 = full fine-tuning")
    parser.add_argument("--config", default="", help="a checkpoint directory's config.json (default: 7B)")
    parser.add_argument("--micro-batch", type=int, default=1, help="ppo_micro_batch_size_per_gpu")
    parser.add_argument("--steps-per-forward", type=int, default=16, help="traj_mini_batch_size")
    parser.add_argument("--reference", action="store_true", help="kl_loss_coef > 0")
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--param-offload", action="store_true")
    parser.add_argument("--optimizer-offload", action="store_true")
    parser.add_argument("--measure", action="store_true", help="2 gloo ranks on CPU, mid-size model")
    args = parser.parse_args()
    if args.measure:
        from scripts.bench.memory_measure import measure_and_compare

        for record in measure_and_compare():
            print(json.dumps(record))
        return
    config = None
    if args.config:
        from verl.models.openvla_oft.configuration import OpenVLAOFTConfig

        config = OpenVLAOFTConfig.from_pretrained(Path(args.config).parent, num_actions_chunk=8, action_dim=7)
    for world in args.world_size:
        for record in build_plan(
            world,
            args.lora_rank,
            config,
            micro_batch=args.micro_batch,
            steps_per_forward=args.steps_per_forward,
            reference=args.reference,
            gradient_checkpointing=not args.no_gradient_checkpointing,
            param_offload=args.param_offload,
            optimizer_offload=args.optimizer_offload,
        ):
            print(json.dumps(record))


if __name__ == "__main__":
    main()
