"""`SFTWorker`: one Ray actor per GPU (or CPU slot) that fine-tunes the policy on demonstrations.

The policy is sharded with FSDP2 across all workers; every rank holds the whole frame cache (shared
read-only through Ray's object store) and trains on its slice of each global batch, which all ranks
derive from the step number (`batch_indices`). Evaluation runs closed-loop greedy episodes on the
worker's own `EnvPool` with the same rollout as GRPO; with several ranks it uses a plain replica of
the weights, since a sharded forward is a collective and ranks run different numbers of policy calls.
Checkpoints are the Hugging Face layout with the demonstrations' dataset statistics, which
`main_ppo actor_rollout_ref.model.path=<ckpt>/actor` loads directly, plus the optimiser state that
lets a killed run resume.
"""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import torch

from verl.single_controller import Worker
from verl.trainer.config.compose import import_plugins
from verl.trainer.config.sft import SFTConfig, sft_batch_plan
from verl.trainer.sft.augment import augment_images
from verl.trainer.sft.core import action_token_loss, lr_factor
from verl.trainer.sft.data import SFTSamples, batch_indices
from verl.utils import checkpoint as ckpt
from verl.utils.device import autocast, resolve_device
from verl.utils.fsdp_utils import clip_grad_norm, full_state_dict
from verl.utils.progress import report
from verl.workers.policy_setup import (
    adamw,
    load_worker_checkpoint,
    load_worker_policy,
    save_worker_checkpoint,
    shard_policy,
)
from verl.workers.rollout.env_rollout import Episode, policy_actor, run_episodes


class SFTWorker(Worker):
    # ------------------------------------------------------------------ set-up
    def init_model(
        self, config: SFTConfig, model_path: str, statistics_dir: str, unnorm_key: str, samples: SFTSamples
    ) -> dict:
        """Load the policy with the demonstrations' statistics, shard it and tokenise the targets."""
        from verl.envs.registry import observation_spec
        from verl.models.openvla_oft.action_tokenizer import normalize

        self.config = config
        import_plugins(config.trainer.plugins)
        trainer_cfg, model_cfg = config.trainer, config.model
        if trainer_cfg.torch_threads > 0:
            torch.set_num_threads(trainer_cfg.torch_threads)
        self.device = resolve_device(trainer_cfg.device)
        self.init_process_group()
        ckpt.seed_everything(trainer_cfg.seed + self.rank)
        policy = load_worker_policy(
            model_cfg,
            model_path,
            self.device,
            unnorm_key=unnorm_key,
            statistics_path=statistics_dir,
            num_actions_chunk=config.data.chunk,
            use_proprio=model_cfg.use_proprio,
            num_images_in_input=model_cfg.num_images_in_input,
        )
        obs = observation_spec(config.env)
        policy.bind_observations(obs.cameras, obs.proprio_dim)
        if samples.actions.shape[1] != policy.chunk_size:
            raise ValueError(
                f"data.chunk: targets have {samples.actions.shape[1]} actions per chunk, the model "
                f"{policy.chunk_size}"
            )
        self.policy = policy
        self.eval_policy = copy.deepcopy(policy).requires_grad_(False) if self.world_size > 1 else policy
        self.mixed_precision = "bf16" if self.device.type == "cuda" else "fp32"
        shard_policy(policy, self.device, self.mixed_precision, model_cfg.enable_gradient_checkpointing)
        optim = config.optim
        self.optimizer = adamw(policy, optim.lr, optim.betas, optim.weight_decay, foreach=True)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda step: lr_factor(
                step,
                optim.lr_warmup_steps,
                trainer_cfg.total_training_steps,
                optim.warmup_style,
                optim.min_lr_ratio,
            ),
        )
        self.per_rank, self.grad_accum = sft_batch_plan(
            trainer_cfg.train_batch_size, trainer_cfg.micro_batch_size_per_gpu, self.world_size
        )

        # The frame cache and its supervised targets, tokenised once with this policy's statistics.
        self.samples = samples
        self.targets = policy.encode_actions(samples.actions)  # [N, A] int64
        self.proprio = None
        if policy.config.use_proprio:
            self.proprio = torch.from_numpy(
                normalize(samples.proprio, policy.proprio_stats).astype(np.float32)
            )
        self.prompts = [policy.processor.prompt_ids(text) for text in samples.instructions]
        self.generator = torch.Generator().manual_seed(trainer_cfg.seed * 1000 + self.rank)
        self.pool = None
        return {
            "parameters": sum(p.numel() for p in policy.model.parameters()),
            "trainable_parameters": sum(p.numel() for p in policy.model.parameters() if p.requires_grad),
            "action_tokens": int(self.targets.shape[1]),
            "samples": len(samples),
            "device": str(self.device),
        }

    # ------------------------------------------------------------------ training
    def _micro_batch(self, rows: np.ndarray) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Model inputs and targets [n, A] of cache rows `rows`, with training augmentation."""
        aug = self.config.augment
        proc = self.policy.processor
        images = torch.from_numpy(self.samples.images[rows])  # [n, n_img, S, S, 3]
        images = augment_images(images, aug.random_shift_px, aug.brightness, aug.contrast, self.generator)
        input_ids, attention_mask = proc.pad([self.prompts[i] for i in self.samples.instruction_index[rows]])
        batch = {
            "input_ids": input_ids.to(self.device),
            "attention_mask": attention_mask.to(self.device),
            "pixel_values": proc.pixel_values(images).to(self.device),
        }
        if self.proprio is not None:
            batch["proprio"] = self.proprio[rows].to(self.device)
        targets = self.targets[rows].to(self.device)
        # Autoregressive policies (OpenVLA) score each target token given the earlier ones.
        batch["action_tokens"] = targets
        return batch, targets

    def train_steps(self, start_step: int, num_steps: int) -> dict[str, float]:
        """Optimiser steps start_step .. start_step + num_steps - 1; metrics averaged over them."""
        trainer_cfg, optim = self.config.trainer, self.config.optim
        model = self.policy.model
        model.train()
        totals = {"loss": 0.0, "accuracy": 0.0, "grad_norm": 0.0}
        cpu0, wall0 = time.process_time(), time.perf_counter()
        micro = self.per_rank // self.grad_accum
        for step in range(start_step, start_step + num_steps):
            rows = batch_indices(step, trainer_cfg.train_batch_size, len(self.samples), trainer_cfg.seed)
            rows = rows[self.rank * self.per_rank : (self.rank + 1) * self.per_rank]
            self.optimizer.zero_grad(set_to_none=True)
            for k in range(self.grad_accum):
                # Reduce gradients across ranks only on the last micro-batch of the step.
                if self.world_size > 1:
                    model.set_requires_gradient_sync(k == self.grad_accum - 1)
                batch, targets = self._micro_batch(rows[k * micro : (k + 1) * micro])
                with autocast(self.device, self.mixed_precision):
                    logits = self.policy.action_logits(batch)
                loss, accuracy = action_token_loss(logits, targets, optim.label_smoothing)
                (loss / self.grad_accum).backward()
                totals["loss"] += loss.item() / self.grad_accum
                totals["accuracy"] += accuracy.item() / self.grad_accum
            grad_norm = clip_grad_norm(model.parameters(), optim.grad_clip)
            if torch.isfinite(grad_norm):
                self.optimizer.step()
            self.scheduler.step()
            totals["grad_norm"] += float(grad_norm)
            if self.rank == 0:
                report(self.progress, "steps")
        n = max(num_steps, 1)
        return {
            "train/loss": totals["loss"] / n,
            "train/token_accuracy": totals["accuracy"] / n,
            "train/grad_norm": totals["grad_norm"] / n,
            "train/lr": self.optimizer.param_groups[0]["lr"],
            "perf/cpu_s": time.process_time() - cpu0,
            "perf/wall_s": time.perf_counter() - wall0,
        }

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, episodes: list[Episode], video_dir: str, step: int) -> list[dict]:
        """Greedy closed-loop episodes on this rank's simulators; one result dict per episode.

        Every rank must call it (with several ranks, the weights are gathered first: a collective).
        """
        from verl.envs.pool import EnvPool
        from verl.envs.video import save_video, video_name

        if self.eval_policy is not self.policy:
            self.eval_policy.model.load_state_dict(full_state_dict(self.policy.model))
        if not episodes:
            return []
        if self.pool is None:
            self.pool = EnvPool(self.config.env)
        policy = self.eval_policy
        policy.eval()
        trajectories, _ = run_episodes(
            policy_actor(policy, 1.0, greedy=True),
            self.pool,
            episodes,
            self.config.trainer.val_micro_batch_size,
            on_finish=lambda traj: report(self.progress, "episodes", 1, int(traj.success)),
            stages=self.config.env.pipeline_stages,
        )
        policy.train()
        results = []
        for traj in trajectories:
            e, path = traj.episode, ""
            if traj.frames:
                name = video_name(e.suite, e.task_id, e.init_state_id, traj.success, f"step{step}")
                path = save_video(traj.frames, os.path.join(video_dir, name), fps=self.config.env.video_fps)
            results.append(
                {
                    "task_id": e.task_id,
                    "init_state_id": e.init_state_id,
                    "success": bool(traj.success),
                    "steps": int(traj.finish_step),
                    "error": traj.error or "",
                    "video_path": path,
                }
            )
        return results

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str) -> None:
        """The HF layout under `<path>/actor` (rank 0) plus the optimiser, scheduler and RNG state a
        resume needs; every rank takes part."""
        extra = {"augment_generator": self.generator.get_state()}
        save_worker_checkpoint(self.policy, self.optimizer, self.scheduler, self.rank, path, extra)

    def load_checkpoint(self, path: str) -> None:
        """Continue exactly where `save_checkpoint` left off (weights, AdamW moments, schedule,
        augmentation and global RNG streams)."""
        extra = load_worker_checkpoint(self.policy, self.optimizer, self.scheduler, self.rank, path)
        self.generator.set_state(extra["augment_generator"])

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
