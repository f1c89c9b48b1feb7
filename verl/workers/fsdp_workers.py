"""`ActorRolloutWorker`: one Ray actor per GPU (or CPU slot) holding the actor and its rollout.

The actor is the policy sharded with FSDP2 across all workers. The rollout runs on the same
weights ("hybrid engine"): with one worker it uses the actor module itself; with several it uses a
plain replica in the rollout dtype (bf16 on GPU), refreshed parameter by parameter after every
update (`verl.utils.weight_sync`), because a sharded forward is a collective and ranks run
different numbers of policy calls during a rollout. The reference policy (KL loss) is sharded like
the actor.
Each worker owns an `EnvPool` of simulator processes for its share of the episodes.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from verl.protocol import DataProto
from verl.single_controller import Worker
from verl.trainer.config import PPOConfig
from verl.trainer.ppo.batching import batch_plan
from verl.utils import checkpoint as ckpt
from verl.utils.device import resolve_device
from verl.utils.fsdp_utils import apply_fsdp2, full_state_dict
from verl.utils.offload import move_optimizer_state
from verl.utils.weight_sync import build_replica, rollout_dtype, sync_replica
from verl.workers.actor.dp_actor import ActorSettings, DataParallelPPOActor
from verl.workers.rollout.env_rollout import Episode, run_episodes, sampling_seed
from verl.workers.rollout.trajectories import trajectories_to_proto

# Submodules sharded as their own FSDP units. The LLM head and embeddings stay in the root unit:
# the model reads `lm_head.weight` directly to restrict logits to the 256 action tokens.
FSDP_WRAP_CLASSES = ("LlamaDecoderLayer", "Block")


def lr_lambda(warmup_style: str, warmup_steps: int, total_steps: int):
    def schedule(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / warmup_steps
        if warmup_style == "cosine":
            progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return 1.0

    return schedule


class ActorRolloutWorker(Worker):
    # ------------------------------------------------------------------ set-up
    def init_model(self, config: PPOConfig, total_rl_steps: int) -> dict:
        from verl.models.registry import load_policy

        self.config = config
        c = config.actor_rollout_ref
        self.device = resolve_device(config.trainer.device)
        self.init_process_group()
        ckpt.seed_everything(config.trainer.seed + self.rank)
        policy = load_policy(
            c.model.vla,
            c.model.path,
            unnorm_key=c.model.unnorm_key,
            num_actions_chunk=c.model.action_chunks_len,
            action_dim=c.model.action_token_len,
            use_proprio=c.model.use_proprio,
            num_images_in_input=c.model.num_images_in_input,
            # Read on the host; fully_shard moves each rank's shards to the device.
            device="cpu",
        )
        self.policy = policy
        if policy.config.num_images_in_input > 1 and not config.env.use_wrist_image:
            raise ValueError(
                f"the policy takes {policy.config.num_images_in_input} images per observation; "
                "set env.use_wrist_image=true so the simulator renders the wrist camera"
            )
        self.chunk = policy.config.num_actions_chunk
        self.action_dim = policy.config.action_dim
        if c.model.lora_rank > 0:
            policy.enable_lora(
                c.model.lora_rank,
                c.model.lora_alpha,
                None if c.model.target_modules == "all-linear" else c.model.target_modules.split(","),
            )
        fsdp = c.actor.fsdp_config
        weights_dtype = rollout_dtype(c.rollout.weights_dtype, self.device.type, fsdp.mixed_precision)
        self.ref_policy = None
        if c.actor.kl_loss_coef > 0:  # sharded below like the actor
            self.ref_policy = build_replica(policy, weights_dtype, "cpu").eval()
        self.rollout_policy = policy
        if self.world_size > 1:
            self.rollout_policy = build_replica(policy, weights_dtype, self.device)
        if c.model.enable_gradient_checkpointing:
            policy.gradient_checkpointing_enable()
        apply_fsdp2(
            policy.model,
            FSDP_WRAP_CLASSES,
            self.device.type,
            c.actor.fsdp_config.mixed_precision,
            c.actor.fsdp_config.reshard_after_forward,
            param_offload=fsdp.param_offload,
        )
        if self.ref_policy is not None:
            apply_fsdp2(self.ref_policy.model, FSDP_WRAP_CLASSES, self.device.type, fsdp.mixed_precision)
        o = c.actor.optim
        params = [p for p in policy.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, betas=tuple(o.betas), weight_decay=o.weight_decay)
        plan = None
        if not config.trainer.val_only:
            plan = batch_plan(
                config.data.train_batch_size,
                config.data.n_samples,
                c.actor.ppo_mini_batch_size,
                c.actor.ppo_micro_batch_size_per_gpu,
                self.world_size,
            )
        total_optim_steps = max(
            1, total_rl_steps * (plan.optimizer_steps if plan else 1) * c.actor.ppo_epochs
        )
        warmup = (
            o.lr_warmup_steps if o.lr_warmup_steps >= 0 else int(o.lr_warmup_steps_ratio * total_optim_steps)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(o.warmup_style, warmup, total_optim_steps)
        )
        settings = ActorSettings(
            clip_ratio_low=c.actor.clip_ratio_low,
            clip_ratio_high=c.actor.clip_ratio_high,
            clip_ratio_c=c.actor.clip_ratio_c,
            loss_agg_mode=c.actor.loss_agg_mode,
            entropy_coeff=c.actor.entropy_coeff,
            kl_loss_coef=c.actor.kl_loss_coef,
            kl_loss_type=c.actor.kl_loss_type,
            grad_clip=c.actor.grad_clip,
            ppo_epochs=c.actor.ppo_epochs,
            mini_batch_per_rank=plan.mini_batch_per_rank if plan else 1,
            micro_batch_per_rank=plan.micro_batch_per_rank if plan else 1,
            steps_per_forward=c.actor.traj_mini_batch_size,
            mixed_precision=c.actor.fsdp_config.mixed_precision,
            shuffle=c.actor.shuffle,
            seed=config.trainer.seed,
        )
        self.actor = DataParallelPPOActor(
            policy.model,
            policy.processor,
            self.optimizer,
            self.scheduler,
            settings,
            self.device,
            self.chunk * self.action_dim,
        )
        self.pool = None
        n_params = sum(p.numel() for p in policy.model.parameters())
        return {
            "num_actions_chunk": self.chunk,
            "action_dim": self.action_dim,
            "parameters": n_params,
            "device": str(self.device),
        }

    def _env_pool(self):
        if self.pool is None:
            from verl.envs.pool import EnvPool

            self.pool = EnvPool(self.config.env)
        return self.pool

    # ------------------------------------------------------------------ rollout
    def generate_sequences(self, prompts: DataProto) -> DataProto:
        """Roll out every row of `prompts` (one episode each); greedy when meta_info["validate"]."""
        from verl.envs.video import save_video, video_name

        validate = bool(prompts.meta_info.get("validate", False))
        step = int(prompts.meta_info.get("global_step", 0))
        r = self.config.actor_rollout_ref.rollout
        greedy = not r.val_do_sample if validate else not r.do_sample
        nt = prompts.non_tensor_batch
        episodes = [
            Episode(
                str(nt["suite"][i]),
                int(nt["task_id"][i]),
                int(nt["init_state_id"][i]),
                int(nt["seed"][i]),
                str(nt["uid"][i]),
                bool(nt["record_video"][i]),
            )
            for i in range(len(prompts))
        ]
        policy = self.rollout_policy
        policy.eval()
        base = (int(self.config.trainer.seed), step)

        def act(observations: list[dict], keys: list[tuple[int, int]]):
            # One sampling stream per (episode, decision step): a rollout is a function of the weights
            # and its episode seed only, not of batch composition, simulator timing or the world size.
            row_seeds = None if greedy else [sampling_seed(*base, *key) for key in keys]
            out = policy.act(observations, temperature=r.temperature, greedy=greedy, row_seeds=row_seeds)
            proprio = out.inputs.proprio.numpy() if out.inputs.proprio is not None else None
            return out.action_tokens.numpy(), out.log_probs.numpy(), out.actions, out.inputs.jpegs, proprio

        start = time.perf_counter()
        trajectories, stats = (
            run_episodes(
                act, self._env_pool(), episodes, r.micro_batch_size, stages=self.config.env.pipeline_stages
            )
            if episodes
            else ([], None)
        )
        seconds = time.perf_counter() - start
        video_paths = []
        for traj in trajectories:
            path = ""
            if traj.frames and validate:
                e = traj.episode
                name = video_name(e.suite, e.task_id, e.init_state_id, traj.success, f"step{step}")
                path = save_video(
                    traj.frames,
                    os.path.join(prompts.meta_info["video_dir"], name),
                    fps=self.config.env.video_fps,
                )
            traj.frames = []
            video_paths.append(path)
        horizon = int(prompts.meta_info.get("max_decision_steps", 0)) or None
        out = trajectories_to_proto(trajectories, self.chunk, self.action_dim, horizon, self._max_decisions())
        out.non_tensor_batch["video_path"] = np.asarray(video_paths, dtype=object)
        decisions = max(1, int(out.batch["num_decision_steps"].sum()))
        out.meta_info.update(
            rollout_seconds=seconds,
            rollout_env_steps=stats.env_steps if stats else 0,
            # Everything the rollout keeps on the host for training, per policy call per environment.
            bytes_per_decision_step=out.select(non_tensor_keys=["jpegs", "instruction"]).nbytes() / decisions,
        )
        return out

    def _max_decisions(self) -> int:
        """Decision steps of the longest possible episode over the configured suites."""
        from verl.trainer.ppo.prompts import task_catalog_max_steps

        steps = task_catalog_max_steps(self.config.env, self.config.data.task_suite_name)
        return math.ceil(steps / self.chunk)

    # ------------------------------------------------------------------ actor
    def compute_log_prob(self, data: DataProto) -> DataProto:
        t = self.config.actor_rollout_ref.rollout.temperature
        size = (
            self.config.actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu
            * self.config.actor_rollout_ref.actor.traj_mini_batch_size
        )
        self.actor.model.eval()
        log_probs, entropy = self.actor.compute_log_prob(data, t, size)
        return DataProto.from_dict(tensors={"old_log_probs": log_probs, "old_entropy": entropy})

    def compute_ref_log_prob(self, data: DataProto) -> DataProto:
        t = self.config.actor_rollout_ref.rollout.temperature
        log_probs, _ = self.actor.compute_log_prob(
            data, t, self.config.actor_rollout_ref.actor.traj_mini_batch_size, model=self.ref_policy.model
        )
        return DataProto.from_dict(tensors={"ref_log_probs": log_probs})

    def update_actor(self, data: DataProto) -> dict[str, float]:
        offload = self.config.actor_rollout_ref.actor.fsdp_config.optimizer_offload
        if offload:
            move_optimizer_state(self.optimizer, self.device)
        metrics = self.actor.update_policy(data, self.config.actor_rollout_ref.rollout.temperature)
        # Old log-probs, reference log-probs and the update decoded each image once; the next step's differ.
        metrics.update(self.actor.images.stats())
        self.actor.images.clear()
        if offload:
            move_optimizer_state(self.optimizer, "cpu")
        metrics.update(self._sync_rollout_weights())
        metrics.update(self._memory())
        return metrics

    def _memory(self) -> dict[str, float]:
        """Host memory of this worker and of its simulator processes; GPU peak when on CUDA."""
        import psutil

        me = psutil.Process()
        sims = sum(c.memory_info().rss for c in me.children(recursive=True) if c.is_running())
        out = {"perf/worker_rss_gib": me.memory_info().rss / 2**30, "perf/env_workers_rss_gib": sims / 2**30}
        if self.device.type == "cuda":
            out["perf/max_memory_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return out

    def _sync_rollout_weights(self, trainable_only: bool = True) -> dict[str, float]:
        if self.rollout_policy is self.policy:
            return {}
        peak = sync_replica(self.policy.model, self.rollout_policy.model, trainable_only)
        return {"perf/weight_sync_transient_gib": peak / 2**30}

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str) -> None:
        """HF-layout model (rank 0) plus per-rank optimiser, scheduler and RNG state."""
        state = full_state_dict(self.policy.model, rank0_only=True)  # a collective: every rank takes part
        out = Path(path)
        if self.rank == 0:
            m = self.config.actor_rollout_ref.model
            save_policy(self.policy, out / "actor", merge_lora_state(state, m.lora_alpha, m.lora_rank))
        save_train_state(out, self.rank, self.policy.model, self.optimizer, self.scheduler)

    def load_checkpoint(self, path: str) -> None:
        load_train_state(Path(path), self.rank, self.policy.model, self.optimizer, self.scheduler)
        if self.config.actor_rollout_ref.actor.fsdp_config.optimizer_offload:
            move_optimizer_state(self.optimizer, "cpu")
        self._sync_rollout_weights(trainable_only=False)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def merge_lora_state(state: dict[str, torch.Tensor], alpha: float, rank: int) -> dict[str, torch.Tensor]:
    """Fold peft LoRA weights of a full state dict into the base weights (released key names)."""
    if rank <= 0 or not any(".lora_A." in k for k in state):
        return state
    merged = {}
    for key, tensor in state.items():
        if ".lora_" in key:
            continue
        name = key.replace(".base_layer.", ".")
        if key.endswith(".base_layer.weight"):
            prefix = key[: -len(".base_layer.weight")]
            lora_a = next(
                v for k, v in state.items() if k.startswith(prefix + ".lora_A.") and k.endswith(".weight")
            )
            lora_b = next(
                v for k, v in state.items() if k.startswith(prefix + ".lora_B.") and k.endswith(".weight")
            )
            tensor = tensor + (lora_b.float() @ lora_a.float()).to(tensor.dtype) * (alpha / rank)
        merged[name] = tensor
    return merged


def save_policy(policy, model_dir: Path, state: dict[str, torch.Tensor]) -> None:
    """Write the Hugging Face layout (config, safetensors, processor and tokenizer files, statistics)."""
    from verl.models.openvla_oft.action_tokenizer import DATASET_STATISTICS_NAME

    model_dir.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(model_dir, state_dict=state)
    policy.processor.save_pretrained(model_dir)
    ckpt.atomic_write_json(model_dir / DATASET_STATISTICS_NAME, policy.statistics)


def save_train_state(out: Path, rank: int, model, optimizer, scheduler, extra: dict | None = None) -> None:
    """What an exact resume needs besides the weights: the sharded model and optimiser state
    (`<out>/train_state`, torch.distributed.checkpoint, LoRA adapters included) and this rank's
    scheduler, RNG and `extra` state (`<out>/extra_state_rank<k>.pt`). Every rank calls it."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    state = {
        "model": get_model_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer),
    }
    dcp.save(state, checkpoint_id=str(out / "train_state"))
    ckpt.atomic_torch_save(
        {"scheduler": scheduler.state_dict(), "rng": ckpt.rng_state(), **(extra or {})},
        out / f"extra_state_rank{rank}.pt",
    )


def load_train_state(out: Path, rank: int, model, optimizer, scheduler) -> dict:
    """Restore what `save_train_state` wrote; returns this rank's extra-state dict."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import (
        get_model_state_dict,
        get_optimizer_state_dict,
        set_model_state_dict,
        set_optimizer_state_dict,
    )

    state = {
        "model": get_model_state_dict(model),
        "optimizer": get_optimizer_state_dict(model, optimizer),
    }
    # Parameters that never receive a gradient (vision blocks after the feature layer) have no
    # optimiser state in the checkpoint; they keep the fresh state.
    dcp.load(
        state, checkpoint_id=str(out / "train_state"), planner=DefaultLoadPlanner(allow_partial_load=True)
    )
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    extra = torch.load(out / f"extra_state_rank{rank}.pt", weights_only=False)
    scheduler.load_state_dict(extra["scheduler"])
    ckpt.set_rng_state(extra["rng"])
    return extra
