"""The GRPO driver: a loop of short stages over a colocated actor/rollout worker group.

    fit():  resume -> [validate] -> repeat { collect (rollout + dynamic sampling) -> old log-probs
            -> advantages -> update -> [validate] -> [checkpoint] -> log }

The driver holds prompts, groups and metrics; the workers hold the model, the optimiser and the
simulators. Each stage is a method under a named timer (`timing/<stage>`).
"""

from __future__ import annotations

import json
import logging
import math
import sys
import uuid
from pathlib import Path

import numpy as np
from tqdm import tqdm

from verl.envs.registry import get_env_spec
from verl.protocol import DataProto
from verl.single_controller import Dispatch, RayResourcePool, RayWorkerGroup
from verl.trainer.config import PPOConfig
from verl.trainer.config.batching import prompts_for_round
from verl.trainer.config.compose import config_to_dict
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.metrics import success_metrics, success_rates, trajectory_metrics
from verl.trainer.ppo.prompts import Prompt, PromptSampler, build_prompts
from verl.trainer.ray_session import WorkerGroupOwner
from verl.utils import checkpoint as ckpt
from verl.utils.device import cluster_device, local_gpu_count
from verl.utils.progress import Stage
from verl.utils.timer import timer
from verl.utils.tracking import Tracking

logger = logging.getLogger(__name__)

VAL_SEED_BASE = 2**30


def _prompts_to_proto(
    prompts: list[Prompt], seeds: list[int], uids: list[str], record: list[bool]
) -> DataProto:
    return DataProto.from_dict(
        non_tensors={
            "suite": [p.suite for p in prompts],
            "task_id": [p.task_id for p in prompts],
            "init_state_id": [p.init_state_id for p in prompts],
            "seed": seeds,
            "uid": uids,
            "record_video": record,
        }
    )


class RayTrainer(WorkerGroupOwner):
    def __init__(self, config: PPOConfig) -> None:
        from verl.workers.fsdp_workers import ActorRolloutWorker

        self.config = config
        cfg = config
        self.out_dir = Path(cfg.trainer.default_local_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        spec = get_env_spec(cfg.env.name)
        self.val_prompts = build_prompts(
            spec,
            cfg.data.task_suite_name,
            cfg.data.task_ids,
            cfg.data.val_init_states,
            "data.val_init_states",
        )
        self.train_prompts = (
            []
            if cfg.trainer.val_only
            else build_prompts(spec, cfg.data.task_suite_name, cfg.data.task_ids, cfg.data.train_init_states)
        )
        self.sampler = (
            PromptSampler(self.train_prompts, cfg.data.shuffle, cfg.trainer.seed)
            if self.train_prompts
            else None
        )
        self.world_size = cfg.trainer.nnodes * cfg.trainer.n_gpus_per_node
        steps_per_epoch = (
            math.ceil(len(self.train_prompts) / cfg.data.train_batch_size) if self.train_prompts else 0
        )
        self.total_steps = cfg.trainer.total_training_steps or steps_per_epoch * cfg.trainer.total_epochs
        self.global_step = 0
        import ray

        # Worker actors get GPUs when the cluster has them; inside a worker "auto" then sees its GPU.
        gpus = ray.cluster_resources().get("GPU", 0) if ray.is_initialized() else local_gpu_count()
        use_gpu = cluster_device(cfg.trainer.device, gpus) == "cuda"
        self.pool = RayResourcePool(
            [cfg.trainer.n_gpus_per_node] * cfg.trainer.nnodes,
            use_gpu=use_gpu,
            num_cpus_per_worker=cfg.trainer.num_cpus_per_worker,
        )
        self.wg = RayWorkerGroup(
            self.pool,
            ActorRolloutWorker,
            name_prefix="actor_rollout",
            call_timeout_s=cfg.trainer.worker_call_timeout_s or None,
        )
        self.model_info = self.wg.call("init_model", cfg, self.total_steps)[0]
        self.tracker = Tracking(
            cfg.trainer.project_name,
            cfg.trainer.experiment_name,
            cfg.trainer.logger,
            self.out_dir,
            config=config_to_dict(cfg),
            wandb_mode=cfg.trainer.wandb_mode,
            run_id=ckpt.experiment_run_id(self.out_dir),
        )
        self.start_progress(cfg.trainer.progress_bar)

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, float]:
        trainer_cfg = self.config.trainer
        self._resume()
        last_val: dict[str, float] = {}
        if trainer_cfg.val_only or (trainer_cfg.val_before_train and self.global_step == 0):
            last_val = self._validate()
            self.tracker.log(last_val, step=self.global_step)
            if trainer_cfg.val_only:
                return last_val
        bar = tqdm(
            total=self.total_steps,
            initial=self.global_step,
            desc="GRPO steps",
            disable=not (trainer_cfg.progress_bar and sys.stderr.isatty()),
        )
        while self.global_step < self.total_steps:
            metrics: dict[str, float] = {}
            with timer("step", metrics):
                batch = self._train_step(metrics)
            self.global_step += 1
            if batch is not None:
                metrics.update(trajectory_metrics(batch, metrics["timing/step"]))
            batch = None  # its images' objects are freed now, not after the next step's rollout
            if trainer_cfg.test_freq > 0 and self.global_step % trainer_cfg.test_freq == 0:
                with timer("testing", metrics):
                    last_val = self._validate()
                metrics.update(last_val)
            last_step = self.global_step >= self.total_steps
            if (trainer_cfg.save_freq > 0 and self.global_step % trainer_cfg.save_freq == 0) or (
                last_step and trainer_cfg.save_last
            ):
                with timer("save_checkpoint", metrics):
                    self._save()
            self.tracker.log(metrics, step=self.global_step)
            bar.set_postfix(train_success=f"{metrics['train_verify_score/all']:.2f}", refresh=False)
            bar.update(1)
        bar.close()
        return last_val

    def _train_step(self, metrics: dict[str, float]) -> DataProto | None:
        """sample groups -> old log-probs (-> reference log-probs) -> advantages -> update; None when
        dynamic sampling kept nothing to train on (the step is skipped).

        Each rank's part of the kept batch is put into the object store once and read by every call;
        the update gets what the driver added since (old log-probs, advantages) next to it. The images
        are not in it at all: the batch holds object refs to them (`verl.workers.heavy_fields`)."""
        per_rank = Dispatch.ALL_TO_ALL
        with timer("gen", metrics):
            batch = self._sample_groups(metrics)
        metrics["perf/env_steps_per_s"] = metrics["rollout/env_steps"] / metrics["timing/gen"]
        if batch is None:
            return None
        parts = self.wg.put_per_rank(batch)
        sent = set(batch.tensor_keys())
        with timer("old_log_prob", metrics):
            batch = batch.union(
                DataProto.concat(self.wg.call("compute_log_prob", parts, dispatch_mode=per_rank))
            )
        # The recomputed log-probs must equal the sampling-time ones (same weights, same pixels).
        valid = batch.batch["response_mask"].bool()
        if valid.any():
            gap = (batch.batch["old_log_probs"] - batch.batch["rollout_log_probs"]).abs()[valid]
            metrics["rollout/log_prob_gap_max"] = float(gap.max())
            metrics["rollout/log_prob_gap_mean"] = float(gap.mean())
        if self.config.actor_rollout_ref.actor.kl_loss_coef > 0:
            with timer("ref", metrics):
                ref = self.wg.call("compute_ref_log_prob", parts, dispatch_mode=per_rank)
                batch = batch.union(DataProto.concat(ref))
        with timer("adv", metrics):
            batch = self._advantages(batch, metrics)
        with timer("update_actor", metrics):
            batch.meta_info["global_step"] = self.global_step
            added = batch.select(
                [k for k in batch.tensor_keys() if k not in sent],
                non_tensor_keys=[],
                meta_keys=["global_step"],
            )
            actor_metrics = self.wg.call(
                "update_actor", parts, self.wg.put_per_rank(added), dispatch_mode=per_rank
            )
            metrics.update({k: float(np.mean([m[k] for m in actor_metrics])) for k in actor_metrics[0]})
        return batch

    # ------------------------------------------------------------------ stages
    def _sample_groups(self, metrics: dict[str, float]) -> DataProto | None:
        """Roll out prompt batches until `train_batch_size` groups pass the accuracy filter; None when no
        group was kept (`sampling/skipped_step` = 1)."""
        data_cfg = self.config.data
        kept: list[DataProto] = []
        n_kept, rounds, scores, filter_stats, env_steps = 0, 0, [], {}, 0
        suites, tasks = [], []
        while n_kept < data_cfg.train_batch_size and rounds < data_cfg.max_sampling_rounds:
            prompts = self.sampler.next_batch(
                prompts_for_round(
                    data_cfg.train_batch_size,
                    data_cfg.oversample_factor,
                    n_kept,
                    data_cfg.n_samples,
                    self.world_size,
                    data_cfg.refill,
                )
            )
            self._log_prompts(prompts, rounds)
            uids = [uuid.uuid4().hex for _ in prompts]
            seeds = [
                int(x)
                for x in np.random.default_rng([self.config.trainer.seed, self.global_step, rounds]).integers(
                    0, VAL_SEED_BASE, size=len(prompts) * data_cfg.n_samples
                )
            ]
            gen = _prompts_to_proto(prompts, [0] * len(prompts), uids, [False] * len(prompts)).repeat(
                data_cfg.n_samples
            )
            gen.non_tensor_batch["seed"] = np.asarray(seeds, dtype=object)
            gen.meta_info.update(validate=False, global_step=self.global_step)
            out = self._rollout([gen], f"rollout step {self.global_step + 1} round {rounds + 1}")
            rounds += 1
            success = out.batch["success"].numpy()
            scores.append(success)
            suites.append(out.non_tensor_batch["suite"])
            tasks.append(out.non_tensor_batch["task_id"])
            env_steps += int(out.batch["finish_step"].sum())
            infra = out.non_tensor_batch["env_error"] != ""
            if data_cfg.filter_accuracy:
                keep, stats = core_algos.group_accuracy_filter(
                    success,
                    out.non_tensor_batch["uid"],
                    data_cfg.accuracy_lower_bound,
                    data_cfg.accuracy_upper_bound,
                )
            else:
                keep, stats = np.ones(len(out), dtype=bool), {"kept": float(len(prompts))}
            # Groups hit by a simulator crash or hang are not the policy's doing: never train on them.
            bad_uids = set(out.non_tensor_batch["uid"][infra].tolist())
            if bad_uids:
                keep &= ~np.isin(out.non_tensor_batch["uid"], list(bad_uids))
                stats["env_error_groups"] = float(len(bad_uids))
            for k, v in stats.items():
                filter_stats[k] = filter_stats.get(k, 0.0) + v
            if keep.any():
                kept.append(out.index(keep))
                n_kept += int(keep.sum()) // data_cfg.n_samples
        score = np.concatenate(scores)
        # Every rollout of the step, before filtering: overall, per suite and per task.
        metrics.update(
            success_rates(score, np.concatenate(suites), np.concatenate(tasks), "train_verify_score")
        )
        metrics.update(
            {
                "train_reward/verifier": float(score.mean()),
                "train_reward/reward_all": float(score.mean()) * self.config.verifier.reward_coef,
                "sampling/rounds": float(rounds),
                "rollout/env_steps": float(env_steps),
                "sampling/kept_groups": float(n_kept),
            }
        )
        metrics.update({f"sampling/{k}": v for k, v in filter_stats.items()})
        if 0 < n_kept < data_cfg.train_batch_size:
            logger.warning(
                "dynamic sampling kept %d of %d groups after data.max_sampling_rounds=%d rounds (success rate %.3f); "
                "training on what was kept",
                n_kept,
                data_cfg.train_batch_size,
                data_cfg.max_sampling_rounds,
                score.mean(),
            )
        batch = self._trim_to_plan(DataProto.concat(kept)) if kept else None
        # Nothing kept (every group all-0, all-1 or hit by a simulator error), or too little for the
        # ranks to share: skip the update rather than train on filtered-out or crash-hit groups.
        metrics["sampling/skipped_step"] = float(batch is None or len(batch) == 0)
        if metrics["sampling/skipped_step"]:
            logger.warning(
                "step %d skipped: dynamic sampling kept no trainable group after %d round(s) "
                "(%d groups hit by simulator errors); no update this step",
                self.global_step + 1,
                rounds,
                int(filter_stats.get("env_error_groups", 0)),
            )
            return None
        return batch

    def _log_prompts(self, prompts: list[Prompt], round_index: int) -> None:
        """Append the step's prompts to prompts.jsonl: the data order of a run, checkable after a resume."""
        record = {
            "step": self.global_step + 1,
            "round": round_index,
            "prompts": [[p.suite, p.task_id, p.init_state_id] for p in prompts],
        }
        with open(self.out_dir / "prompts.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _log_episodes(self, out: DataProto) -> None:
        """Append every validation episode to val_episodes.jsonl (for confidence intervals)."""
        nt = out.non_tensor_batch
        with open(self.out_dir / "val_episodes.jsonl", "a", encoding="utf-8") as f:
            for i in range(len(out)):
                f.write(
                    json.dumps(
                        {
                            "step": self.global_step,
                            "suite": str(nt["suite"][i]),
                            "task_id": int(nt["task_id"][i]),
                            "init_state_id": int(nt["init_state_id"][i]),
                            "seed": int(nt["seed"][i]),
                            "success": bool(out.batch["success"][i] > 0.5),
                            "steps": int(out.batch["finish_step"][i]),
                            "env_error": str(nt["env_error"][i]),
                            "video": str(nt["video_path"][i]),
                        }
                    )
                    + "\n"
                )

    def _trim_to_plan(self, batch: DataProto) -> DataProto:
        """Keep whole groups, at most train_batch_size, and a trajectory count every rank can share."""
        n = self.config.data.n_samples
        groups = min(len(batch) // n, self.config.data.train_batch_size)
        while groups > 1 and (groups * n) % self.world_size:
            groups -= 1
        if (groups * n) % self.world_size:
            raise RuntimeError(
                f"{groups * n} trajectories cannot be split over {self.world_size} ranks; "
                "choose data.n_samples as a multiple of the world size"
            )
        return batch.index(slice(0, groups * n))

    def _advantages(self, batch: DataProto, metrics: dict[str, float]) -> DataProto:
        algo_cfg = self.config.algorithm
        mask = batch.batch["response_mask"]
        rewards = core_algos.outcome_token_rewards(
            batch.batch["success"], mask, self.config.verifier.reward_coef
        )
        adv = core_algos.compute_grpo_outcome_advantage(
            rewards,
            mask,
            batch.non_tensor_batch["uid"],
            eps=algo_cfg.adv_eps,
            norm_adv_by_std=algo_cfg.norm_adv_by_std_in_grpo,
        )
        batch.batch["token_level_rewards"] = rewards
        batch.batch["advantages"] = adv
        valid = mask.bool()
        metrics.update(
            {
                "critic/score/mean": float(rewards.sum(-1).mean()),
                "critic/advantages/mean": float(adv[valid].mean()) if valid.any() else 0.0,
                "critic/advantages/max": float(adv[valid].max()) if valid.any() else 0.0,
                "critic/advantages/min": float(adv[valid].min()) if valid.any() else 0.0,
            }
        )
        return batch

    def _validate(self) -> dict[str, float]:
        """Greedy rollouts on the validation prompts; success overall, per suite and per task; videos."""
        cfg = self.config
        prompts = [p for p in self.val_prompts for _ in range(cfg.data.val_n_samples)]
        per_task_videos: dict[tuple[str, int], int] = {}
        record = []
        for p in prompts:
            k = (p.suite, p.task_id)
            record.append(per_task_videos.get(k, 0) < cfg.actor_rollout_ref.rollout.val_videos_per_task)
            per_task_videos[k] = per_task_videos.get(k, 0) + 1
        # Validation seeds live in [2^30, 2^31), training seeds below 2^30: never the same scene.
        seeds = [VAL_SEED_BASE + cfg.env.seed * 10007 + i for i in range(len(prompts))]
        gen = _prompts_to_proto(prompts, seeds, [f"val{i}" for i in range(len(prompts))], record)
        gen.meta_info.update(
            validate=True,
            global_step=self.global_step,
            video_dir=str(self.out_dir / "videos" / f"step_{self.global_step}"),
        )
        out = self._rollout(
            gen.split(cfg.data.val_batch_size or len(gen)), f"validation at step {self.global_step}"
        )
        metrics = success_metrics(out, prefix="val/test_score")
        self._log_episodes(out)
        for path in out.non_tensor_batch["video_path"]:
            if path:
                self.tracker.log_video(f"val/video/{Path(path).stem.split('--')[0]}", path, self.global_step)
        return metrics

    def _rollout(self, parts: list[DataProto], desc: str) -> DataProto:
        """Roll out every part of a prompt batch in turn, showing finished episodes as they come."""
        stage = Stage(desc, sum(len(p) for p in parts), "episodes", self.show_progress)
        outs = self.calls_with_progress(
            "generate_sequences", [(p,) for p in parts], stage, "episodes", Dispatch.DP_COMPUTE_PROTO
        )
        out = DataProto.concat(outs)
        stage.update(len(out) - stage.initial)
        stage.close(f"{float(out.batch['success'].mean()):.3f} success")
        return out

    # ------------------------------------------------------------------ checkpoints
    def _save(self) -> None:
        state = {
            "global_step": self.global_step,
            "sampler": self.sampler.state_dict() if self.sampler else None,
            "total_steps": self.total_steps,
        }
        self.save_checkpoint(
            self.out_dir, self.global_step, state, self.config.trainer.max_actor_ckpt_to_keep
        )

    def _resume(self) -> None:
        trainer_cfg = self.config.trainer
        if trainer_cfg.val_only:
            return
        path = ckpt.resolve_resume_checkpoint(
            trainer_cfg.resume_mode,
            trainer_cfg.resume_from_path,
            self.out_dir,
            required=("trainer_state.json",),
        )
        if path is None:
            return
        state = json.loads((path / "trainer_state.json").read_text())
        self.wg.call("load_checkpoint", str(path))
        self.global_step = state["global_step"]
        if self.sampler is not None and state["sampler"] is not None:
            self.sampler.load_state_dict(state["sampler"])
        logger.warning("resumed from %s at step %d", path, self.global_step)
