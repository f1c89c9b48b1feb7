"""The SFT trainer's configuration tree (`python -m verl.trainer.main_sft ...`).

Supervised fine-tuning of an OpenVLA-OFT policy on LIBERO HDF5 demonstrations: cross-entropy on the
256-bin action tokens of every chunk position (parallel decoding), with periodic greedy evaluation in
the simulator. Every field is documented where it is defined; these defaults are the only ones.
Defaults suit the tiny CPU policy trained from scratch on a few demonstrations per task.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from verl.envs.config import EnvConfig
from verl.trainer.config.common import (
    AdamWConfig,
    PolicyModelConfig,
    RunConfig,
    choice,
    non_negative,
    positive,
    validate_policy_model,
    validate_run_config,
)
from verl.utils.config_values import ConfigError, parse_id_ranges
from verl.utils.config_values import fail as _fail

_choice, _positive, _non_negative = choice, positive, non_negative

MODEL_INITS = ("pretrained", "tiny")


@dataclass
class SFTDataConfig:
    # Demonstration files: HDF5 files, glob patterns, or directories (every *.hdf5 inside). Official
    # LIBERO files and those of scripts/collect_demos.py are both read.
    paths: list[str] = field(default_factory=list)
    # LIBERO suite of the demonstrations. Each file is mapped to its task id by its language
    # instruction; the simulator evaluation runs on this suite.
    suite: str = "libero_object"
    # Task ids to train on; None = every task that has a file.
    task_ids: Optional[list[int]] = None
    # Demonstrations per task (the first ones of the task's files); None = all of them.
    demos_per_task: Optional[int] = None
    # Drop OpenVLA-OFT's no-op steps (zero motion, unchanged gripper), as its *_no_noops datasets do.
    drop_noops: bool = True
    # Key of the statistics in the checkpoint's dataset_statistics.json; None = the suite name.
    unnorm_key: Optional[str] = None
    # Actions per chunk target; None = the model's num_actions_chunk (8 for LIBERO). With
    # model.init=tiny it sets the new model's chunk length.
    chunk: Optional[int] = None
    # True: one sample per step, chunks running past the episode end repeat the last action (the
    # policy learns to hold still at the end). False: only chunks inside the episode (OFT's pipeline).
    pad_chunk_end: bool = True


@dataclass
class SFTModelConfig(PolicyModelConfig):
    # "pretrained": start from the checkpoint at `path` (HF layout). "tiny": a fresh random tiny
    # checkpoint in the shared OpenVLA layout (verl.models.openvla_oft.tiny; chunk 1 for model.vla=openvla),
    # written under trainer.default_local_dir/init_tiny.
    init: str = "pretrained"
    # Initial checkpoint directory (model.init=pretrained).
    path: str = ""
    # Feed the 8-d proprio state (eef pos, axis-angle, gripper qpos) through the proprio projector;
    # its statistics come from the demonstrations. GRPO on the result needs
    # actor_rollout_ref.model.use_proprio=true.
    use_proprio: bool = False
    # Camera images per observation (1 = agent view; 2 adds the wrist camera).
    num_images_in_input: int = 1
    # Image size of a tiny model (model.init=tiny); 112 keeps a CPU step fast.
    tiny_image_size: int = 112
    # Widths of a tiny model (model.init=tiny): vision towers (multiple of 32) and LLM (multiple of
    # 16). 32 / 64 is the smallest; 64 / 128 costs twice the CPU time per step.
    tiny_vision_dim: int = 32
    tiny_llm_dim: int = 64


@dataclass
class SFTOptimConfig(AdamWConfig):
    # For the tiny model trained from scratch (measured on 40 libero_object demos: 2e-3 reaches in
    # 1500 steps the loss 5e-4 had not reached after 1500). A released 7B checkpoint wants ~5e-5
    # (LoRA) or less.
    lr: float = 2e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    # Cosine decays to min_lr_ratio * lr.
    warmup_style: str = "cosine"
    lr_warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    # Global gradient-norm clipping.
    grad_clip: float = 1.0
    # Label smoothing of the token cross-entropy (0 = none).
    label_smoothing: float = 0.0


@dataclass
class AugmentConfig:
    # Random translation of every training image by up to this many pixels (edge-padded, cropped
    # back to the input size); 0 disables it. Evaluation images are never augmented.
    random_shift_px: int = 6
    # Random brightness and contrast factors drawn from [1 - x, 1 + x]; 0 disables them.
    brightness: float = 0.1
    contrast: float = 0.1


@dataclass
class SFTTrainerConfig(RunConfig):
    experiment_name: str = "sft"
    # torch intra-op threads per worker (1 suits small CPU models on shared machines); 0 = torch's default.
    torch_threads: int = 1
    # Optimiser steps.
    total_training_steps: int = 2000
    # Samples (frame, chunk target) per optimiser step across all ranks. Must divide by the world size.
    train_batch_size: int = 32
    # Samples per forward/backward on one rank; gradient accumulation = batch / (world * micro).
    micro_batch_size_per_gpu: int = 32
    # Log averaged training metrics every N steps.
    log_freq: int = 50
    # Evaluate in the simulator every N steps (-1: never), and after the last step when eval_last.
    test_freq: int = 500
    eval_last: bool = True
    val_before_train: bool = False
    # Tasks evaluated; None = the trained tasks.
    val_task_ids: Optional[list[int]] = None
    # Initial states of the evaluation episodes (one greedy episode each), as ranges "a-b,c".
    # Keep them disjoint from the demonstrations' initial states to measure generalisation.
    val_init_states: str = "40-49"
    # Observations per policy forward in the evaluation rollout.
    val_micro_batch_size: int = 32
    # Evaluation episodes that record a video, per task (0 = none).
    val_videos_per_task: int = 0
    # Save every N steps (-1: never, except at the end when save_last).
    save_freq: int = -1
    save_last: bool = True
    # Completed checkpoints to keep (None = all).
    max_ckpt_to_keep: Optional[int] = None


def _sft_env() -> EnvConfig:
    # One simulator per worker by default, and the evaluation suite follows data.suite.
    return EnvConfig(suite="${data.suite}", num_workers=1)


@dataclass
class SFTConfig:
    data: SFTDataConfig = field(default_factory=SFTDataConfig)
    model: SFTModelConfig = field(default_factory=SFTModelConfig)
    optim: SFTOptimConfig = field(default_factory=SFTOptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    env: EnvConfig = field(default_factory=_sft_env)
    trainer: SFTTrainerConfig = field(default_factory=SFTTrainerConfig)


def compose_sft_config(overrides: list[str] | None = None, validate: bool = True) -> SFTConfig:
    """The `sft_trainer` config with Hydra-syntax overrides applied (tests, notebooks)."""
    from verl.trainer.config.compose import compose

    config = compose("sft_trainer", SFTConfig, overrides)
    if validate:
        validate_sft_config(config)
    return config


def validate_sft_config(cfg: SFTConfig) -> None:
    """Value checks of an SFTConfig; raises ConfigError naming the first bad field."""
    from verl.envs.registry import get_env_spec

    data, model, optim, aug, trainer = cfg.data, cfg.model, cfg.optim, cfg.augment, cfg.trainer
    if not data.paths:
        _fail(
            "data.paths",
            list(data.paths),
            "list HDF5 files, glob patterns or directories, e.g. [/data/demos]",
        )
    _choice("data.suite", data.suite, tuple(get_env_spec(cfg.env.name).suites))
    if cfg.env.suite != data.suite:
        _fail("env.suite", cfg.env.suite, f"must equal data.suite={data.suite!r} (it defaults to it)")
    if data.task_ids is not None and (not data.task_ids or min(data.task_ids) < 0):
        _fail("data.task_ids", data.task_ids, "a non-empty list of task ids >= 0, or null for all tasks")
    if data.demos_per_task is not None:
        _positive("data.demos_per_task", data.demos_per_task)
    if data.chunk is not None:
        _positive("data.chunk", data.chunk)

    _choice("model.init", model.init, MODEL_INITS)
    if model.init == "pretrained" and not model.path:
        _fail("model.path", model.path, "set it to a checkpoint directory, or use model.init=tiny")
    validate_policy_model(model, "model")
    _choice("model.num_images_in_input", model.num_images_in_input, (1, 2))
    _positive("model.tiny_image_size", model.tiny_image_size)
    if model.tiny_vision_dim <= 0 or model.tiny_vision_dim % 32:
        _fail("model.tiny_vision_dim", model.tiny_vision_dim, "a positive multiple of 32")
    if model.tiny_llm_dim <= 0 or model.tiny_llm_dim % 16:
        _fail("model.tiny_llm_dim", model.tiny_llm_dim, "a positive multiple of 16")

    _positive("optim.lr", optim.lr)
    if len(optim.betas) != 2:
        _fail("optim.betas", list(optim.betas), "need two values [beta1, beta2]")
    _choice("optim.warmup_style", optim.warmup_style, ("constant", "cosine"))
    _non_negative("optim.lr_warmup_steps", optim.lr_warmup_steps)
    if not 0.0 <= optim.min_lr_ratio <= 1.0:
        _fail("optim.min_lr_ratio", optim.min_lr_ratio, "need 0 <= value <= 1")
    _positive("optim.grad_clip", optim.grad_clip)
    if not 0.0 <= optim.label_smoothing < 1.0:
        _fail("optim.label_smoothing", optim.label_smoothing, "need 0 <= value < 1")

    _non_negative("augment.random_shift_px", aug.random_shift_px)
    for name in ("brightness", "contrast"):
        value = getattr(aug, name)
        if not 0.0 <= value < 1.0:
            _fail(f"augment.{name}", value, "need 0 <= value < 1")

    validate_run_config(trainer)
    _non_negative("trainer.torch_threads", trainer.torch_threads)
    _positive("trainer.total_training_steps", trainer.total_training_steps)
    _positive("trainer.log_freq", trainer.log_freq)
    _positive("trainer.val_micro_batch_size", trainer.val_micro_batch_size)
    _non_negative("trainer.val_videos_per_task", trainer.val_videos_per_task)
    parse_id_ranges(trainer.val_init_states, "trainer.val_init_states")
    for name in ("test_freq", "save_freq"):
        value = getattr(trainer, name)
        if value == 0 or value < -1:
            _fail(f"trainer.{name}", value, "must be > 0, or -1 to disable")
    world = trainer.nnodes * trainer.n_gpus_per_node
    sft_batch_plan(trainer.train_batch_size, trainer.micro_batch_size_per_gpu, world)
    try:
        cfg.env.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None


def sft_batch_plan(train_batch_size: int, micro_batch_size_per_gpu: int, world_size: int) -> tuple[int, int]:
    """(samples per rank per step, gradient-accumulation steps); ConfigError when the sizes do not fit."""
    _positive("trainer.train_batch_size", train_batch_size)
    _positive("trainer.micro_batch_size_per_gpu", micro_batch_size_per_gpu)
    if train_batch_size % world_size:
        _fail(
            "trainer.train_batch_size",
            train_batch_size,
            f"must be a multiple of the world size nnodes * n_gpus_per_node = {world_size}",
        )
    per_rank = train_batch_size // world_size
    micro = min(micro_batch_size_per_gpu, per_rank)
    if per_rank % micro:
        _fail(
            "trainer.micro_batch_size_per_gpu",
            micro_batch_size_per_gpu,
            f"must divide the per-rank batch train_batch_size / world_size = {per_rank}",
        )
    return per_rank, per_rank // micro


__all__ = [
    "AugmentConfig",
    "ConfigError",
    "SFTConfig",
    "SFTDataConfig",
    "SFTModelConfig",
    "SFTOptimConfig",
    "SFTTrainerConfig",
    "compose_sft_config",
    "sft_batch_plan",
    "validate_sft_config",
]
