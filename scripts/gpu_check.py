"""The first thing to run on a machine with one GPU: no weights needed, a few minutes on an 80-141 GB GPU.

Prints JSON lines:
    {"check": "cuda", ...}        CUDA torch, device, bf16 support and a bf16 matmul against fp32
    {"check": "attention", ...}   which sdpa kernels run (flash, memory-efficient, math); flash-attn if installed
    {"check": "memory", "phase", "measured_gib", "plan_gib", "mode"}   per phase, next to memory_plan's
                                  prediction: start-up, one batch of rollout chunks against real LIBERO
                                  simulators, old log-probs, one update (launch-script micro-batch
                                  settings), a weight sync into a bf16 replica
    {"check": "done", "ok": true, "seconds"}
The model is a randomly initialised 7B OpenVLA-OFT built from the released config. Full fine-tuning
needs ~120 GiB on one GPU (memory_plan.py --world-size 1); on smaller GPUs the check trains LoRA
adapters (rank 32), which is what fits one 80 GB GPU. Without a GPU it says so and exits 0.

    bash scripts/gpu_check.sh [--suite libero_10] [--envs 8] [--lora-rank N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def check_cuda() -> None:
    props = torch.cuda.get_device_properties(0)
    a = torch.randn(512, 512, device="cuda")
    b = torch.randn(512, 512, device="cuda")
    err = float(((a.bfloat16() @ b.bfloat16()).float() - a @ b).abs().max() / (a @ b).abs().max())
    emit(
        {
            "check": "cuda",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "device": props.name,
            "total_gib": round(props.total_memory / 2**30, 1),
            "bf16_supported": torch.cuda.is_bf16_supported(),
            "bf16_matmul_rel_err": round(err, 5),
        }
    )


def check_attention() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q = torch.randn(2, 8, 320, 128, device="cuda", dtype=torch.bfloat16)
    kernels = {}
    for backend in (SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH):
        try:
            with sdpa_kernel(backend):
                torch.nn.functional.scaled_dot_product_attention(q, q, q)
            kernels[backend.name.lower()] = True
        except RuntimeError:
            kernels[backend.name.lower()] = False
    try:
        import flash_attn

        flash = flash_attn.__version__
    except ImportError:
        flash = None
    emit({"check": "attention", "sdpa": kernels, "flash_attn": flash})


def write_random_7b(path: Path) -> Path:
    """A randomly initialised 7B OpenVLA-OFT checkpoint (bf16 on disk) with the tiny tokenizer files."""
    from verl.models.openvla_oft.configuration import openvla_7b
    from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
    from verl.models.openvla_oft.processing import PREPROCESSOR_CONFIG_NAME
    from verl.models.openvla_oft.tiny import preprocessor_config, write_tiny_checkpoint

    write_tiny_checkpoint(path, unnorm_key="libero_10")  # tokenizer, statistics, processor files
    config = openvla_7b()
    config.norm_stats = json.loads((path / "dataset_statistics.json").read_text())
    model = OpenVLAOFTForActionPrediction.from_config(config, dtype=torch.bfloat16, device="cuda")
    model.save_pretrained(path, {k: v.cpu() for k, v in model.state_dict().items()})
    (path / PREPROCESSOR_CONFIG_NAME).write_text(json.dumps(preprocessor_config(config.image_size)))
    del model
    torch.cuda.empty_cache()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_10")
    parser.add_argument("--envs", type=int, default=8, help="simulators = episodes in the rollout batch")
    parser.add_argument("--lora-rank", type=int, default=-1, help="-1: full fine-tuning if it fits, else 32")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        emit(
            {
                "check": "cuda",
                "ok": False,
                "reason": "gpu_check needs a CUDA GPU; none is visible, nothing ran",
            }
        )
        return 0
    start = time.time()
    check_cuda()
    check_attention()
    from scripts.bench.memory_measure import measure_gpu

    total = torch.cuda.get_device_properties(0).total_memory
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_7b(Path(tmp) / "random-7b")
        for record in measure_gpu(path, args.suite, args.envs, args.lora_rank, total):
            emit({"check": "memory", **record})
    emit({"check": "done", "ok": True, "seconds": round(time.time() - start, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
