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


def measure_gpu(path: Path, suite: str, envs: int, lora_rank: int, device_bytes: int) -> list[dict]:
    """One GPU (or, for a smoke test, one CPU worker): the 7B worker through its phases, real simulators.

    lora_rank -1 picks full fine-tuning when the plan's peak fits 90% of `device_bytes`, else LoRA 32.
    """
    import ray

    from scripts.bench.memory_measure import MeasureWorker
    from scripts.bench.memory_plan import WRAP_CLASSES as FSDP_WRAP_CLASSES
    from verl.models.openvla_oft.configuration import OpenVLAOFTConfig
    from verl.models.openvla_oft.lora import DEFAULT_TARGET_MODULES
    from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
    from verl.single_controller import RayResourcePool, RayWorkerGroup
    from verl.trainer.config.compose import compose_config
    from verl.trainer.ppo.prompts import Prompt
    from verl.trainer.ppo.ray_trainer import _prompts_to_proto
    from verl.utils.memory_plan import PlanSettings, model_shape, plan

    config = OpenVLAOFTConfig.from_pretrained(path, num_actions_chunk=8, action_dim=7)
    with torch.device("meta"):
        meta = OpenVLAOFTForActionPrediction(config)
    gpu = torch.cuda.is_available()

    def predicted(rank: int) -> dict[str, dict[str, int]]:
        settings = PlanSettings(
            world_size=1,
            update_sequences=16,
            log_prob_sequences=4 * 16,
            rollout_sequences=min(16, envs),
            compute_bytes=2 if gpu else 4,
            rollout_bytes=2 if gpu else 4,
            host_is_device=not gpu,
        )
        return plan(model_shape(meta, FSDP_WRAP_CLASSES, rank, DEFAULT_TARGET_MODULES), settings)

    if lora_rank < 0:
        full = max(sum(k.values()) for k in predicted(0).values())
        lora_rank = 0 if full < 0.9 * device_bytes else 32
    phases = predicted(lora_rank)
    replica_bytes = 2 * model_shape(meta, FSDP_WRAP_CLASSES, lora_rank, DEFAULT_TARGET_MODULES).params
    cfg = compose_config(
        [
            f"actor_rollout_ref.model.path={path}",
            f"actor_rollout_ref.model.lora_rank={lora_rank}",
            "actor_rollout_ref.model.enable_gradient_checkpointing=true",
            f"data.task_suite_name={suite}",
            f"data.train_batch_size={envs}",
            "data.n_samples=1",
            f"actor_rollout_ref.actor.ppo_mini_batch_size={envs}",
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
            "actor_rollout_ref.actor.traj_mini_batch_size=16",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
            f"actor_rollout_ref.rollout.micro_batch_size={min(16, envs)}",
            f"env.num_workers={envs}",
            "env.max_steps=16",
            "trainer.n_gpus_per_node=1",
        ]
    )
    prompts = [Prompt(suite, i % 10, i) for i in range(envs)]
    gen = _prompts_to_proto(prompts, list(range(envs)), [f"p{i}" for i in range(envs)], [False] * envs)
    gen.meta_info.update(validate=False, global_step=0)
    ray.init(include_dashboard=False, log_to_driver=False)
    pool = RayResourcePool([1], use_gpu=gpu, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, MeasureWorker)
    measured = {}
    try:
        wg.call("baseline")
        measured["startup"] = wg.call("startup", cfg, 1)[0]
        measured["rollout"] = wg.call("rollout_episodes", gen)[0]
        measured["old_log_prob"] = wg.call("old_log_prob")[0][0]
        measured["update"] = wg.call("update")[0]
        measured["weight_sync"] = wg.call("replica_sync")[0]
    finally:
        wg.shutdown()
        pool.remove()
        ray.shutdown()
    mode = f"lora{lora_rank}" if lora_rank else "full"
    out = []
    for phase, value in measured.items():
        plan_bytes = sum(phases[phase].values()) + (replica_bytes if phase == "weight_sync" else 0)
        out.append(
            {
                "phase": phase,
                "mode": mode,
                "measured_gib": round(value / 2**30, 3),
                "plan_gib": round(plan_bytes / 2**30, 3),
            }
        )
    return out


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
    total = torch.cuda.get_device_properties(0).total_memory
    with tempfile.TemporaryDirectory() as tmp:
        path = write_random_7b(Path(tmp) / "random-7b")
        for record in measure_gpu(path, args.suite, args.envs, args.lora_rank, total):
            emit({"check": "memory", **record})
    emit({"check": "done", "ok": True, "seconds": round(time.time() - start, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
