"""`memory_plan.py --measure`: the real worker on 2 gloo ranks on CPU with a mid-size OpenVLA-OFT, peak
memory per rank and phase next to the plan's prediction for the same configuration.

The model has the released architecture at reduced widths (DINOv2 + SigLIP towers 256 wide, 4 blocks;
a 6-layer Llama 1024 wide with the full 32064-token vocabulary; about 150 M parameters). Phases run
through `ActorRolloutWorker` as the trainer calls it: start-up (`init_model`), one rollout chunk
(`act` of the rollout replica on 16 observations), old log-probs, the update, the weight sync and a
checkpoint save. The batch has fixed non-zero advantages and random images; the simulators are not
part of the worker's memory (they are separate processes) and are left out.

Peak memory is the process's peak resident set (VmHWM), reset before each phase through
/proc/self/clear_refs, minus the resident set before the model was built (Python, torch and the
libraries). glibc is told to map every allocation above 64 KiB on its own (MALLOC_MMAP_THRESHOLD_),
so freed tensors leave the resident set at once, as they leave the CUDA allocator's counters.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from ray.cloudpickle import register_pickle_by_value

from verl.workers.fsdp_workers import ActorRolloutWorker

WORLD_SIZE = 2
TRAJ_PER_RANK = 2
STEPS_PER_TRAJ = 16
STEPS_PER_FORWARD = 8
LOG_PROB_MICRO = 2
ROLLOUT_MICRO = 16
INSTRUCTION = "pick up the ketchup and place it in the basket"


def _peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _reset_peak() -> None:
    """Reset the peak counter: the CUDA allocator's on a GPU, the process's peak resident set on CPU."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _peak() -> int:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()
    return _peak_rss()


register_pickle_by_value(sys.modules[__name__])


class MeasureWorker(ActorRolloutWorker):
    """The worker, with each phase wrapped in a peak-memory measurement (bytes above the baseline)."""

    def baseline(self) -> int:
        # Libraries and their import-time state belong to the baseline, not to the phases.
        import peft  # noqa: F401
        import timm  # noqa: F401
        import transformers  # noqa: F401

        import verl.models.openvla_oft.modeling  # noqa: F401
        import verl.models.openvla_oft.processing  # noqa: F401

        _reset_peak()
        self.base = 0 if torch.cuda.is_available() else _peak()
        return self.base

    def _measured(self, fn, *args) -> int:
        _reset_peak()
        fn(*args)
        return _peak() - self.base

    def startup(self, config, steps: int) -> int:
        return self._measured(self.init_model, config, steps)

    def resident(self) -> int:
        """Bytes resident above the baseline now (CPU: the resident set; GPU: allocated)."""
        if torch.cuda.is_available():
            return torch.cuda.memory_allocated()
        with open("/proc/self/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        return rss - self.base

    def rollout_chunk(self, n: int) -> int:
        """One rollout forward of the replica on n random observations (no simulators)."""
        rng = np.random.default_rng(self.rank)
        size = self.policy.processor.image_size
        obs = [
            {"image": rng.integers(0, 255, (size, size, 3), dtype=np.uint8), "instruction": INSTRUCTION}
            for _ in range(n)
        ]
        self.rollout_policy.eval()
        return self._measured(lambda: self.rollout_policy.act(obs, temperature=1.6, row_seeds=list(range(n))))

    def rollout_episodes(self, prompts) -> int:
        """Episodes against the real simulators (`generate_sequences`); keeps the batch for the next phases."""
        out = {}
        peak = self._measured(lambda: out.setdefault("batch", self.generate_sequences(prompts)))
        batch = out["batch"]
        sign = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(len(batch))])[:, None]
        batch.batch["advantages"] = sign * batch.batch["response_mask"].float()
        self.batch = batch
        return peak

    def old_log_prob(self, data=None):
        data = data if data is not None else self.batch
        out = {}
        out["peak"] = self._measured(lambda: out.setdefault("lp", self.compute_log_prob(data)))
        if data is getattr(self, "batch", None):
            self.batch = self.batch.union(out["lp"])
        return out["peak"], out["lp"]

    def update(self, data=None) -> int:
        t = self.config.actor_rollout_ref.rollout.temperature
        return self._measured(self.actor.update_policy, data if data is not None else self.batch, t)

    def weight_sync(self) -> int:
        return self._measured(self._sync_rollout_weights)

    def replica_sync(self) -> int:
        """One rank samples through the actor: build the bf16 replica several ranks use, and sync into it."""
        from verl.models.openvla_oft import lora
        from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
        from verl.utils.weight_sync import sync_replica

        m = self.config.actor_rollout_ref.model

        def run():
            with torch.device("meta"):
                replica = OpenVLAOFTForActionPrediction(self.policy.config)
                if m.lora_rank > 0:
                    lora.add_lora(replica, m.lora_rank, m.lora_alpha)
            replica = replica.to(torch.bfloat16).to_empty(device=self.device).requires_grad_(False)
            sync_replica(self.policy.model, replica, trainable_only=False)

        return self._measured(run)

    def checkpoint(self, path: str) -> int:
        return self._measured(self.save_checkpoint, path)


def mid_config():
    from verl.models.openvla_oft.configuration import tiny

    config = tiny(image_size=112, vision_dim=256, llm_dim=1024)
    config.timm_overrides = [dict(o, depth=4) for o in config.timm_overrides]
    config.text_config.update(intermediate_size=2816, num_hidden_layers=6, num_attention_heads=8)
    config.text_config.update(num_key_value_heads=8)
    return config


def batch(path: Path, n: int):
    """n trajectories of STEPS_PER_TRAJ decision steps: random images and action tokens, fixed advantages."""
    from verl.models.openvla_oft.processing import OpenVLAOFTProcessor
    from verl.workers.rollout.env_rollout import Episode, Trajectory
    from verl.workers.rollout.trajectories import trajectories_to_proto

    processor = OpenVLAOFTProcessor.from_pretrained(path)
    rng = np.random.default_rng(0)
    size = processor.image_size
    trajs = []
    for i in range(n):
        t = Trajectory(Episode("libero_object", 0, i, i, uid=f"g{i}"))
        t.instruction = INSTRUCTION
        for _ in range(STEPS_PER_TRAJ):
            t.jpegs.append([processor.encode_image(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))])
            t.action_tokens.append(rng.integers(0, 256, 56).astype(np.uint8))
            t.log_probs.append(np.zeros(56, np.float32))
        t.finish_step = STEPS_PER_TRAJ * 8
        trajs.append(t)
    data = trajectories_to_proto(trajs, 8, 7, None, STEPS_PER_TRAJ)
    sign = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n)])[:, None]
    data.batch["advantages"] = sign * data.batch["response_mask"].float()
    return data


def predicted(config, prompt_tokens: int) -> tuple[dict[str, int], int]:
    """The plan's bytes per phase (rank 0) for the measured configuration (fp32 compute, bf16 replica),
    and what it says stays resident after start-up (the parameter shard and the replica)."""
    from verl.utils.memory_plan import PlanSettings, model_shape, plan

    with torch.device("meta"):
        from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction

        model = OpenVLAOFTForActionPrediction(config)
    from scripts.bench.memory_plan import WRAP_CLASSES as FSDP_WRAP_CLASSES

    settings = PlanSettings(
        world_size=WORLD_SIZE,
        update_sequences=STEPS_PER_FORWARD,
        log_prob_sequences=LOG_PROB_MICRO * STEPS_PER_FORWARD,
        rollout_sequences=ROLLOUT_MICRO,
        prompt_tokens=prompt_tokens,
        compute_bytes=4,
        rollout_bytes=2,
        host_is_device=True,
    )
    phases = plan(model_shape(model, FSDP_WRAP_CLASSES), settings)
    resident = phases["startup"]["parameters"] + phases["startup"]["rollout_weights"]
    return {phase: sum(kinds.values()) for phase, kinds in phases.items()}, resident


def measure_and_compare() -> list[dict]:
    import ray

    from verl.models.openvla_oft.tiny import write_tiny_checkpoint
    from verl.single_controller import Dispatch, RayResourcePool, RayWorkerGroup
    from verl.single_controller.dispatch import split_for_ranks
    from verl.trainer.config.compose import compose_config

    root = Path(__file__).resolve().parents[2]
    env = {
        "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]),
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "MALLOC_ARENA_MAX": "2",
        "RAY_AUTH_MODE": "disabled",
        "OMP_NUM_THREADS": "1",
    }
    ray.init(num_cpus=WORLD_SIZE, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    config = mid_config()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_tiny_checkpoint(Path(tmp) / "mid", config=config, unnorm_key="libero_object")
        n = TRAJ_PER_RANK * WORLD_SIZE
        cfg = compose_config(
            [
                f"actor_rollout_ref.model.path={path}",
                "data.task_suite_name=libero_object",
                f"data.train_batch_size={n}",
                "data.n_samples=1",
                f"actor_rollout_ref.actor.ppo_mini_batch_size={n}",
                "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=1",
                f"actor_rollout_ref.actor.traj_mini_batch_size={STEPS_PER_FORWARD}",
                f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={LOG_PROB_MICRO}",
                "actor_rollout_ref.model.enable_gradient_checkpointing=true",
                "actor_rollout_ref.rollout.weights_dtype=bf16",
                "trainer.device=cpu",
                f"trainer.n_gpus_per_node={WORLD_SIZE}",
            ]
        )
        data = batch(path, n)
        from verl.models.openvla_oft.processing import OpenVLAOFTProcessor

        prompt_tokens = len(OpenVLAOFTProcessor.from_pretrained(path).prompt_ids(INSTRUCTION))
        pool = RayResourcePool([WORLD_SIZE], use_gpu=False, num_cpus_per_worker=1)
        wg = RayWorkerGroup(pool, MeasureWorker)
        dp = Dispatch.DP_COMPUTE_PROTO
        measured: dict[str, list[int]] = {}
        try:
            wg.call("baseline")
            measured["startup"] = wg.call("startup", cfg, 1)
            after_startup = wg.call("resident")
            # A first step, not measured: the plan is of the steady state, with AdamW's moments allocated.
            parts = split_for_ranks(data, WORLD_SIZE)
            out = wg.call("old_log_prob", parts, dispatch_mode=Dispatch.ALL_TO_ALL)
            data.batch["old_log_probs"] = torch.cat([o[1].batch["old_log_probs"] for o in out])
            wg.call("update", data, dispatch_mode=dp)
            wg.call("weight_sync")
            measured["rollout"] = wg.call("rollout_chunk", ROLLOUT_MICRO)
            out = wg.call("old_log_prob", parts, dispatch_mode=Dispatch.ALL_TO_ALL)
            measured["old_log_prob"] = [o[0] for o in out]
            measured["update"] = wg.call("update", data, dispatch_mode=dp)
            measured["weight_sync"] = wg.call("weight_sync")
            measured["checkpoint_save"] = wg.call("checkpoint", str(Path(tmp) / "ckpt"))
        finally:
            wg.shutdown()
            pool.remove()
            ray.shutdown()
    plan_bytes, resident = predicted(config, prompt_tokens)
    records = [
        {
            "bench": "memory_plan_measured",
            "world_size": WORLD_SIZE,
            "phase": "resident_after_startup",
            "measured_gib_by_rank": [round(b / 2**30, 3) for b in after_startup],
            "plan_gib_rank0": round(resident / 2**30, 3),
            "ratio_rank0": round(after_startup[0] / max(resident, 1), 3),
        }
    ]
    for phase, per_rank in measured.items():
        records.append(
            {
                "bench": "memory_plan_measured",
                "world_size": WORLD_SIZE,
                "phase": phase,
                "measured_gib_by_rank": [round(b / 2**30, 3) for b in per_rank],
                "plan_gib_rank0": round(plan_bytes[phase] / 2**30, 3),
                "ratio_rank0": round(per_rank[0] / max(plan_bytes[phase], 1), 3),
            }
        )
    return records


if __name__ == "__main__":
    import json

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    for record in measure_and_compare():
        print(json.dumps(record))
