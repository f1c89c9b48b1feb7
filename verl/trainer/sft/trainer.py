"""The SFT driver: demonstrations -> frame cache -> a worker group that trains, evaluates and saves.

    fit():  resume -> [validate] -> repeat { train_steps (up to the next log / eval / save boundary) -> log
            -> [validate in the simulator] -> [checkpoint] }

The driver reads the demonstration files, computes their dataset statistics, builds the frame cache
once and shares it with every worker through Ray's object store; the workers hold the model, the
optimiser and the simulators.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import ray
import torch

from verl.envs.registry import get_env_spec
from verl.single_controller import Dispatch, RayResourcePool, RayWorkerGroup
from verl.trainer.config.compose import config_to_dict
from verl.trainer.config.sft import SFTConfig
from verl.trainer.ppo.prompts import build_prompts
from verl.trainer.ray_session import WorkerGroupOwner
from verl.trainer.sft.data import build_samples, demo_statistics, load_demos, resolve_paths
from verl.utils import checkpoint as ckpt
from verl.utils.dataset.statistics import save_dataset_statistics
from verl.utils.progress import Stage
from verl.utils.timer import timer
from verl.utils.tracking import Tracking
from verl.workers.rollout.env_rollout import Episode

logger = logging.getLogger(__name__)


def initial_checkpoint(config: SFTConfig, out_dir: Path, unnorm_key: str) -> Path:
    """The checkpoint training starts from: `model.path`, or a fresh tiny model written once."""
    model_cfg = config.model
    if model_cfg.init == "pretrained":
        return Path(model_cfg.path)
    from verl.models.openvla_oft.configuration import tiny
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint
    from verl.models.registry import model_chunk_size

    path = out_dir / "init_tiny"
    if not (path / "model.safetensors").is_file():
        # The tiny layout is the same for every OpenVLA family; the chunk is the model's own when
        # it has a fixed one (OpenVLA: 1).
        cfg = tiny(
            image_size=model_cfg.tiny_image_size,
            num_actions_chunk=config.data.chunk or model_chunk_size(model_cfg.vla) or 8,
            use_proprio=model_cfg.use_proprio,
            num_images_in_input=model_cfg.num_images_in_input,
            vision_dim=model_cfg.tiny_vision_dim,
            llm_dim=model_cfg.tiny_llm_dim,
        )
        write_tiny_checkpoint(path, config=cfg, seed=config.trainer.seed, unnorm_key=unnorm_key)
    return path


class SFTTrainer(WorkerGroupOwner):
    def __init__(self, config: SFTConfig) -> None:
        from verl.models.openvla_oft.configuration import OpenVLAOFTConfig
        from verl.models.openvla_oft.processing import OpenVLAOFTProcessor
        from verl.models.registry import model_chunk_size
        from verl.workers.sft_worker import SFTWorker

        self.config = cfg = config
        self.out_dir = Path(cfg.trainer.default_local_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if cfg.trainer.torch_threads > 0:
            # The frame cache's resize is a torch matmul; more threads only spin on a busy CPU.
            torch.set_num_threads(cfg.trainer.torch_threads)
        self.unnorm_key = cfg.data.unnorm_key or cfg.data.suite

        # Demonstrations, their statistics and the frame cache.
        start = time.perf_counter()
        files = resolve_paths(list(cfg.data.paths))
        demos = load_demos(
            files,
            cfg.data.suite,
            cfg.data.task_ids,
            cfg.data.demos_per_task,
            cfg.data.drop_noops,
            load_wrist=cfg.model.num_images_in_input == 2,
        )
        self.statistics_dir = self.out_dir / "data"
        save_dataset_statistics(
            demo_statistics(demos), self.unnorm_key, str(self.statistics_dir / "dataset_statistics.json")
        )
        self.model_path = initial_checkpoint(cfg, self.out_dir, self.unnorm_key)
        chunk = (
            cfg.data.chunk
            or model_chunk_size(cfg.model.vla)
            or OpenVLAOFTConfig.from_pretrained(self.model_path).num_actions_chunk
            or 8
        )
        processor = OpenVLAOFTProcessor.from_pretrained(self.model_path)
        samples = build_samples(
            demos, processor, chunk, cfg.model.num_images_in_input, cfg.data.pad_chunk_end
        )
        self.trained_tasks = sorted({d.task_id for d in demos})
        self.demo_init_states = sorted({d.init_state_id for d in demos if d.init_state_id is not None})
        self.data_info = {
            "data/demos": float(len(demos)),
            "data/tasks": float(len(self.trained_tasks)),
            "data/samples": float(len(samples)),
            "data/cache_mib": samples.images.nbytes / 2**20,
            "timing/data_s": time.perf_counter() - start,
        }
        logger.warning(
            "SFT data: %d demos of tasks %s (%d samples) from %d files in %.1f s",
            len(demos),
            self.trained_tasks,
            len(samples),
            len(files),
            self.data_info["timing/data_s"],
        )
        self.val_episodes = self._val_episodes()

        trainer_cfg = cfg.trainer
        use_gpu = trainer_cfg.device == "cuda" or (trainer_cfg.device == "auto" and torch.cuda.is_available())
        self.pool = RayResourcePool(
            [trainer_cfg.n_gpus_per_node] * trainer_cfg.nnodes,
            use_gpu=use_gpu,
            num_cpus_per_worker=trainer_cfg.num_cpus_per_worker,
        )
        self.wg = RayWorkerGroup(
            self.pool, SFTWorker, name_prefix="sft", call_timeout_s=trainer_cfg.worker_call_timeout_s or None
        )
        self.model_info = self.wg.call(
            "init_model",
            cfg,
            str(self.model_path),
            str(self.statistics_dir),
            self.unnorm_key,
            ray.put(samples),
        )[0]
        self.tracker = Tracking(
            trainer_cfg.project_name,
            trainer_cfg.experiment_name,
            trainer_cfg.logger,
            self.out_dir,
            config=config_to_dict(cfg),
            wandb_mode=trainer_cfg.wandb_mode,
            run_id=ckpt.experiment_run_id(self.out_dir),
        )
        self.start_progress(trainer_cfg.progress_bar)
        self.global_step = 0
        self.train_cpu_s = 0.0
        self.train_wall_s = 0.0
        self._resume()

    def _val_episodes(self) -> list[Episode]:
        cfg = self.config
        tasks = cfg.trainer.val_task_ids if cfg.trainer.val_task_ids is not None else self.trained_tasks
        prompts = build_prompts(
            get_env_spec(cfg.env.name),
            cfg.data.suite,
            list(tasks),
            cfg.trainer.val_init_states,
            "trainer.val_init_states",
        )
        overlap = sorted({p.init_state_id for p in prompts} & set(self.demo_init_states))
        if overlap:
            logger.warning("evaluation initial states %s also start demonstrations (not held out)", overlap)
        videos: dict[int, int] = {}
        episodes = []
        for i, p in enumerate(prompts):
            record = videos.get(p.task_id, 0) < cfg.trainer.val_videos_per_task
            videos[p.task_id] = videos.get(p.task_id, 0) + 1
            episodes.append(Episode(p.suite, p.task_id, p.init_state_id, cfg.env.seed + i, f"val{i}", record))
        return episodes

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, float]:
        trainer_cfg = self.config.trainer
        self.tracker.log({**self.data_info, **{f"model/{k}": v for k, v in self.model_info.items()}}, step=0)
        last_val: dict[str, float] = {}
        if trainer_cfg.val_before_train and self.global_step == 0:
            last_val = self._validate()
            self.tracker.log(last_val, step=0)
        total = trainer_cfg.total_training_steps
        stage = Stage("SFT steps", total, "steps", self.show_progress, initial=self.global_step)
        if self.progress is not None:
            ray.get(self.progress.reset.remote("steps"))
        while self.global_step < trainer_cfg.total_training_steps:
            metrics: dict[str, float] = {}
            n = self._steps_to_boundary()
            with timer("train", metrics):
                [per_rank] = self.calls_with_progress(
                    "train_steps", [(self.global_step, n)], stage, "steps", Dispatch.ONE_TO_ALL, reset=False
                )
            self.global_step += n
            metrics.update({k: float(np.mean([m[k] for m in per_rank])) for k in per_rank[0]})
            self.train_cpu_s += sum(m["perf/cpu_s"] for m in per_rank)
            self.train_wall_s += metrics["timing/train"]
            metrics.update(
                {
                    "perf/train_cpu_s_total": self.train_cpu_s,
                    "perf/train_wall_s_total": self.train_wall_s,
                    "perf/steps_per_s": n / max(metrics["timing/train"], 1e-9),
                }
            )
            last = self.global_step >= trainer_cfg.total_training_steps
            if (trainer_cfg.test_freq > 0 and self.global_step % trainer_cfg.test_freq == 0) or (
                last and trainer_cfg.eval_last
            ):
                with timer("testing", metrics):
                    last_val = self._validate()
                metrics.update(last_val)
            if (trainer_cfg.save_freq > 0 and self.global_step % trainer_cfg.save_freq == 0) or (
                last and trainer_cfg.save_last
            ):
                with timer("save_checkpoint", metrics):
                    self._save()
            self.tracker.log(metrics, step=self.global_step)
        stage.close(f"loss {metrics['train/loss']:.4f}" if "train/loss" in metrics else "")
        return last_val

    def _steps_to_boundary(self) -> int:
        """Steps until the next log, evaluation or save step (or the end)."""
        trainer_cfg = self.config.trainer
        left = trainer_cfg.total_training_steps - self.global_step
        for freq in (trainer_cfg.log_freq, trainer_cfg.test_freq, trainer_cfg.save_freq):
            if freq > 0:
                left = min(left, freq - self.global_step % freq)
        return left

    def _validate(self) -> dict[str, float]:
        """Greedy episodes on the evaluation initial states, spread over the ranks."""
        world = self.wg.world_size
        shares = [self.val_episodes[r::world] for r in range(world)]
        video_dir = str(self.out_dir / "videos" / f"step_{self.global_step}")
        steps = [self.global_step] * world
        stage = Stage(
            f"evaluation at step {self.global_step}", len(self.val_episodes), "episodes", self.show_progress
        )
        [per_rank] = self.calls_with_progress(
            "evaluate", [(shares, [video_dir] * world, steps)], stage, "episodes", Dispatch.ALL_TO_ALL
        )
        results = [r for part in per_rank for r in part]
        success = np.array([r["success"] for r in results], dtype=np.float64)
        stage.update(len(results))
        stage.close(f"{success.mean():.3f} success" if len(success) else "")
        metrics = {
            "val/success/all": float(success.mean()) if len(success) else 0.0,
            "val/episodes": float(len(results)),
            "val/env_errors": float(sum(bool(r["error"]) for r in results)),
            "val/episode_steps_mean": float(np.mean([r["steps"] for r in results])) if results else 0.0,
        }
        for task in sorted({r["task_id"] for r in results}):
            values = [r["success"] for r in results if r["task_id"] == task]
            metrics[f"val/success/task_{task}"] = float(np.mean(values))
        for r in results:
            if r["video_path"]:
                self.tracker.log_video(f"val/video/task_{r['task_id']}", r["video_path"], self.global_step)
        return metrics

    def _save(self) -> None:
        state = {
            "global_step": self.global_step,
            "unnorm_key": self.unnorm_key,
            "trained_tasks": self.trained_tasks,
            "demo_init_states": self.demo_init_states,
            "train_cpu_s": self.train_cpu_s,
            "train_wall_s": self.train_wall_s,
            "total_training_steps": self.config.trainer.total_training_steps,
        }
        self.save_checkpoint(self.out_dir, self.global_step, state, self.config.trainer.max_ckpt_to_keep)

    def _resume(self) -> None:
        """Continue from the newest complete checkpoint (or `trainer.resume_from_path`): weights,
        optimiser, schedule and RNG streams; the data order follows from the step number."""
        trainer_cfg = self.config.trainer
        path = ckpt.resolve_resume_checkpoint(
            trainer_cfg.resume_mode,
            trainer_cfg.resume_from_path,
            self.out_dir,
            required=("trainer_state.json", "train_state"),
        )
        if path is None:
            return
        state = json.loads((path / "trainer_state.json").read_text())
        if (
            state.get("total_training_steps", trainer_cfg.total_training_steps)
            != trainer_cfg.total_training_steps
        ):
            # The learning-rate schedule depends on the total; a different one is not the same run.
            logger.warning(
                "resuming a run planned for %d steps with trainer.total_training_steps=%d: the "
                "learning-rate schedule changes from here on",
                state["total_training_steps"],
                trainer_cfg.total_training_steps,
            )
        self.wg.call("load_checkpoint", str(path))
        self.global_step = int(state["global_step"])
        self.train_cpu_s = float(state.get("train_cpu_s", 0.0))
        self.train_wall_s = float(state.get("train_wall_s", 0.0))
        logger.warning("resumed from %s at step %d", path, self.global_step)
