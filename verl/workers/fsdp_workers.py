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

import numpy as np
import torch

from verl.protocol import DataProto
from verl.single_controller import Worker
from verl.trainer.config import PPOConfig
from verl.trainer.config.batching import batch_plan
from verl.trainer.config.compose import import_plugins
from verl.utils import checkpoint as ckpt
from verl.utils.device import resolve_device
from verl.utils.offload import move_optimizer_state
from verl.utils.progress import report
from verl.utils.weight_sync import build_replica, rollout_dtype, sync_replica
from verl.workers import heavy_fields
from verl.workers.actor.dp_actor import ActorSettings, DataParallelPPOActor
from verl.workers.policy_setup import (
    adamw,
    load_worker_checkpoint,
    load_worker_policy,
    save_worker_checkpoint,
    shard_policy,
)
from verl.workers.rollout.env_rollout import Episode, policy_actor, run_episodes
from verl.workers.rollout.trajectories import trajectories_to_proto


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
        from verl.envs.registry import observation_spec

        self.config = config
        import_plugins(config.trainer.plugins)
        model_cfg, actor_cfg = config.actor_rollout_ref.model, config.actor_rollout_ref.actor
        self.device = resolve_device(config.trainer.device)
        self.init_process_group()
        ckpt.seed_everything(config.trainer.seed + self.rank)
        policy = load_worker_policy(
            model_cfg,
            model_cfg.path,
            # Read on the host; fully_shard moves each rank's shards to the device.
            "cpu",
            unnorm_key=model_cfg.unnorm_key,
            num_actions_chunk=model_cfg.action_chunks_len,
            action_dim=model_cfg.action_token_len,
            use_proprio=model_cfg.use_proprio,
            num_images_in_input=model_cfg.num_images_in_input,
            attn_implementation=model_cfg.attn_implementation,
            image_pipeline=model_cfg.image_pipeline,
        )
        obs = observation_spec(config.env)
        policy.bind_observations(obs.cameras, obs.proprio_dim)
        self.policy = policy
        self.chunk = policy.chunk_size
        self.action_dim = policy.action_dim
        fsdp = actor_cfg.fsdp_config
        weights_dtype = rollout_dtype(
            config.actor_rollout_ref.rollout.weights_dtype, self.device.type, fsdp.mixed_precision
        )
        self.ref_policy = None
        if actor_cfg.kl_loss_coef > 0:  # sharded below like the actor
            self.ref_policy = build_replica(policy, weights_dtype, "cpu").eval()
        self.rollout_policy = policy
        if self.world_size > 1:
            self.rollout_policy = build_replica(policy, weights_dtype, self.device)
        shard_policy(
            policy,
            self.device,
            fsdp.mixed_precision,
            model_cfg.enable_gradient_checkpointing,
            fsdp.reshard_after_forward,
            param_offload=fsdp.param_offload,
        )
        if self.ref_policy is not None:
            shard_policy(self.ref_policy, self.device, fsdp.mixed_precision, gradient_checkpointing=False)
        optim = actor_cfg.optim
        self.optimizer = adamw(policy, optim.lr, optim.betas, optim.weight_decay)
        plan = None
        if not config.trainer.val_only:
            plan = batch_plan(
                config.data.train_batch_size,
                config.data.n_samples,
                actor_cfg.ppo_mini_batch_size,
                actor_cfg.ppo_micro_batch_size_per_gpu,
                self.world_size,
            )
        total_optim_steps = max(
            1, total_rl_steps * (plan.optimizer_steps if plan else 1) * actor_cfg.ppo_epochs
        )
        warmup = (
            optim.lr_warmup_steps
            if optim.lr_warmup_steps >= 0
            else int(optim.lr_warmup_steps_ratio * total_optim_steps)
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(optim.warmup_style, warmup, total_optim_steps)
        )
        settings = ActorSettings(
            clip_ratio_low=actor_cfg.clip_ratio_low,
            clip_ratio_high=actor_cfg.clip_ratio_high,
            clip_ratio_c=actor_cfg.clip_ratio_c,
            loss_agg_mode=actor_cfg.loss_agg_mode,
            entropy_coeff=actor_cfg.entropy_coeff,
            kl_loss_coef=actor_cfg.kl_loss_coef,
            kl_loss_type=actor_cfg.kl_loss_type,
            grad_clip=actor_cfg.grad_clip,
            ppo_epochs=actor_cfg.ppo_epochs,
            mini_batch_per_rank=plan.mini_batch_per_rank if plan else 1,
            micro_batch_per_rank=plan.micro_batch_per_rank if plan else 1,
            steps_per_forward=actor_cfg.traj_mini_batch_size,
            mixed_precision=actor_cfg.fsdp_config.mixed_precision,
            shuffle=actor_cfg.shuffle,
            seed=config.trainer.seed,
        )
        self.actor = DataParallelPPOActor(policy, self.optimizer, self.scheduler, settings, self.device)
        # The step's trajectory images fetched from the object store (see `heavy_fields`).
        self.fetched = heavy_fields.FetchMemo()
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
        """Roll out every row of `prompts` (one episode each); greedy when meta_info["validate"].

        The images stay on this node: in training each trajectory's are put into the object store and
        the result holds their object refs (`heavy_fields`); validation does not return them."""
        from verl.envs.video import save_video, video_name

        validate = bool(prompts.meta_info.get("validate", False))
        step = int(prompts.meta_info.get("global_step", 0))
        rollout_cfg = self.config.actor_rollout_ref.rollout
        greedy = not rollout_cfg.val_do_sample if validate else not rollout_cfg.do_sample
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
        self.rollout_policy.eval()
        act = policy_actor(
            self.rollout_policy, rollout_cfg.temperature, greedy, (int(self.config.trainer.seed), step)
        )

        start = time.perf_counter()
        trajectories, stats = (
            run_episodes(
                act,
                self._env_pool(),
                episodes,
                rollout_cfg.micro_batch_size,
                on_finish=lambda traj: report(self.progress, "episodes", 1, int(traj.success)),
                stages=self.config.env.pipeline_stages,
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
            image_bytes_per_decision_step=out.select([], ["jpegs"]).nbytes() / decisions,
        )
        if validate:
            return out.select(
                non_tensor_keys=[k for k in out.non_tensor_batch if k not in heavy_fields.HEAVY_KEYS]
            )
        return heavy_fields.stash(out)

    def _max_decisions(self) -> int:
        """Decision steps of the longest possible episode over the configured suites."""
        from verl.envs.registry import max_decision_steps

        return max_decision_steps(self.config.env, self.config.data.task_suite_name, self.chunk)

    # ------------------------------------------------------------------ actor
    def compute_log_prob(self, data: DataProto) -> DataProto:
        data = self.fetched.fetch(data)
        temperature = self.config.actor_rollout_ref.rollout.temperature
        size = (
            self.config.actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu
            * self.config.actor_rollout_ref.actor.traj_mini_batch_size
        )
        self.policy.model.eval()
        log_probs, entropy = self.actor.compute_log_prob(data, temperature, size)
        return DataProto.from_dict(tensors={"old_log_probs": log_probs, "old_entropy": entropy})

    def compute_ref_log_prob(self, data: DataProto) -> DataProto:
        data = self.fetched.fetch(data)
        temperature = self.config.actor_rollout_ref.rollout.temperature
        log_probs, _ = self.actor.compute_log_prob(
            data,
            temperature,
            self.config.actor_rollout_ref.actor.traj_mini_batch_size,
            policy=self.ref_policy,
        )
        return DataProto.from_dict(tensors={"ref_log_probs": log_probs})

    def update_actor(self, data: DataProto, extra: DataProto | None = None) -> dict[str, float]:
        """One PPO update on this rank's part of the step; `extra` holds what the driver added to the part
        it sent to `compute_log_prob` (advantages, old log-probs), so the part itself travels once."""
        data = self.fetched.fetch(data if extra is None else data.union(extra))
        offload = self.config.actor_rollout_ref.actor.fsdp_config.optimizer_offload
        if offload:
            move_optimizer_state(self.optimizer, self.device)
        metrics = self.actor.update_policy(data, self.config.actor_rollout_ref.rollout.temperature)
        # Old log-probs, reference log-probs and the update decoded each image once; the next step's differ.
        metrics.update(self.actor.images.stats())
        self.actor.images.clear()
        self.fetched.clear()
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
        """HF-layout model (rank 0) plus per-rank optimiser, scheduler and RNG state (a collective)."""
        save_worker_checkpoint(self.policy, self.optimizer, self.scheduler, self.rank, path)

    def load_checkpoint(self, path: str) -> None:
        load_worker_checkpoint(self.policy, self.optimizer, self.scheduler, self.rank, path)
        if self.config.actor_rollout_ref.actor.fsdp_config.optimizer_offload:
            move_optimizer_state(self.optimizer, "cpu")
        self._sync_rollout_weights(trainable_only=False)

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
