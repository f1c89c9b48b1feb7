"""The GRPO trainer's configuration tree, in veRL's vocabulary.

Every field is documented where it is defined; these defaults are the only ones. Launch scripts
override them with Hydra's syntax, e.g. `actor_rollout_ref.actor.optim.lr=5e-6`.
Defaults follow SimpleVLA-RL's LIBERO recipe unless a comment says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from verl.envs.config import EnvConfig
from verl.trainer.config.common import AdamWConfig, PolicyModelConfig, RunConfig


@dataclass
class DataConfig:
    # Suite(s) to train and validate on; several as a comma-separated list ("libero_spatial,libero_object").
    task_suite_name: str = "libero_10"
    # Task ids within each suite, e.g. [0,1,2]; None = every task of the suite.
    task_ids: Optional[list[int]] = None
    # Initial-state ids used for training prompts, as ranges "a-b,c" (inclusive). LIBERO has 50 per task.
    train_init_states: str = "0-39"
    # Initial-state ids used for validation. Disjoint from training by default (SimpleVLA-RL trains on
    # the states it evaluates on); set both to "0-49" to reproduce its setting.
    val_init_states: str = "40-49"
    # Rollouts per prompt: the GRPO group size.
    n_samples: int = 8
    # Prompts (groups) per RL step after dynamic sampling.
    train_batch_size: int = 64
    # Prompts rolled out per sampling round = train_batch_size * oversample_factor.
    oversample_factor: int = 1
    # What a dynamic-sampling refill round rolls out: "full" = train_batch_size * oversample_factor prompts
    # again; "missing" = only the groups still missing (times oversample_factor), so a step that lacks one
    # group does not pay for a whole batch of rollouts.
    refill: str = "full"
    # Validation prompts per rollout call; None = all validation prompts in one call.
    val_batch_size: Optional[int] = None
    # Validation episodes per validation prompt, each with its own env seed. Above 1 this only adds
    # information when the episode depends on the seed (env.libero.perturbation on).
    val_n_samples: int = 1
    # Dynamic sampling: keep only groups whose success rate lies in [lower, upper] (inclusive).
    filter_accuracy: bool = True
    accuracy_lower_bound: float = 0.1
    accuracy_upper_bound: float = 0.9
    # Cap on sampling rounds per RL step; when hit, the step trains on the groups it has (with a warning),
    # so an all-failing or all-succeeding policy cannot loop forever; with none, the step is skipped.
    max_sampling_rounds: int = 8
    # Shuffle the training prompts every epoch (seeded by trainer.seed and the epoch).
    shuffle: bool = True


@dataclass
class ModelConfig(PolicyModelConfig):
    # Checkpoint directory in the Hugging Face layout (config.json, safetensors, dataset_statistics.json...).
    path: str = ""
    # The action dimension (SimpleVLA-RL's name: it counts action values per action, not tokens) and
    # the chunk length; None = read from the checkpoint's config. When given, they must match the
    # checkpoint (LIBERO 7 x 8, RoboTwin 14 x 25).
    action_token_len: Optional[int] = None
    action_chunks_len: Optional[int] = None
    # Key into dataset_statistics.json; None = the suite name, then "<suite>_no_noops", then the only key.
    unnorm_key: Optional[str] = None
    # Camera images per observation (1 = the simulator's primary camera; 2 adds its second camera, e.g.
    # LIBERO's wrist camera); None = the checkpoint's.
    num_images_in_input: Optional[int] = None
    # Feed the simulator's proprio state through the proprio projector; None = the checkpoint's setting.
    use_proprio: Optional[bool] = None
    # Attention kernel: sdpa (default), eager, or flash_attention_2 (GPU only, needs flash-attn).
    attn_implementation: str = "sdpa"
    # How camera frames become model inputs (OpenVLA-OFT): "jpeg_resize_crop" (LIBERO's JPEG round trip,
    # Lanczos resize, 90%-area centre crop) or "crop_resize" (RoboTwin's: the 90%-area centre box of the
    # 320 x 240 frame resized straight to 224 x 224, no JPEG), as the released checkpoints were trained.
    image_pipeline: str = "jpeg_resize_crop"


@dataclass
class OptimConfig(AdamWConfig):
    # lr_warmup_steps < 0: the warm-up is this fraction of the total optimiser steps instead.
    lr_warmup_steps_ratio: float = 0.0


@dataclass
class FSDPConfig:
    # Parameter dtype during forward/backward on GPU: bf16 (fp32 master weights) or fp32.
    mixed_precision: str = "bf16"
    # Keep the sharded parameters, their gradients and so the optimiser step on the host; each FSDP unit is
    # copied to the GPU for its forward/backward (FSDP2 CPUOffloadPolicy). Ignored on CPU.
    param_offload: bool = False
    # Keep AdamW's moments on the host outside the update phase (moved back for the update).
    optimizer_offload: bool = False
    # Reshard parameters after the forward (FSDP2 reshard_after_forward).
    reshard_after_forward: bool = True


@dataclass
class ActorConfig:
    strategy: str = "fsdp2"
    optim: OptimConfig = field(default_factory=OptimConfig)
    fsdp_config: FSDPConfig = field(default_factory=FSDPConfig)
    # Trajectories per optimiser step, across all ranks. Must divide by the world size.
    ppo_mini_batch_size: int = 128
    # Trajectories per forward/backward on one GPU; gradient accumulation = mini / (world * micro).
    ppo_micro_batch_size_per_gpu: int = 1
    # Decision steps (policy calls, one action chunk each) per forward pass, whatever trajectories
    # they come from; bounds activation memory for long episodes. SimpleVLA-RL's name.
    traj_mini_batch_size: int = 16
    ppo_epochs: int = 1
    # Shuffle trajectories before splitting them into mini-batches (seeded).
    shuffle: bool = True
    # PPO clip range [1 - clip_ratio_low, 1 + clip_ratio_high] ("clip-higher").
    clip_ratio_low: float = 0.2
    clip_ratio_high: float = 0.28
    # Dual-clip constant for negative advantages; None disables it.
    clip_ratio_c: Optional[float] = None
    # token-mean | seq-mean-token-mean | seq-mean-token-sum | seq-mean-token-sum-norm
    loss_agg_mode: str = "seq-mean-token-mean"
    # Entropy bonus coefficient (0 = none).
    entropy_coeff: float = 0.0
    # KL-to-reference loss coefficient (0 = no reference policy is built).
    kl_loss_coef: float = 0.0
    # low_var_kl | kl | abs | mse
    kl_loss_type: str = "low_var_kl"
    grad_clip: float = 1.0


@dataclass
class RolloutConfig:
    # Sampling temperature over the 256 action tokens during training rollouts.
    temperature: float = 1.6
    # False = greedy training rollouts (debugging only).
    do_sample: bool = True
    # Validation: greedy unless val_do_sample.
    val_do_sample: bool = False
    # Observations per policy forward in the rollout (bounds memory; all envs of a rank otherwise).
    micro_batch_size: int = 32
    # Trajectories per forward when recomputing old log-probs.
    log_prob_micro_batch_size_per_gpu: int = 4
    # dtype of the rollout's weight replica (multi-rank) and of the reference policy: auto (bf16 when the
    # actor computes in bf16 on CUDA, else fp32), bf16 or fp32. bf16 halves their memory (15 GB at 7.5 B).
    weights_dtype: str = "auto"
    # Validation episodes that record a video, per task (0 = none).
    val_videos_per_task: int = 1


@dataclass
class ActorRolloutRefConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)


@dataclass
class AlgorithmConfig:
    # Advantage estimator: grpo (outcome reward, group-normalised).
    adv_estimator: str = "grpo"
    # Divide by the group's standard deviation (False: Dr.GRPO-style mean-centring only).
    norm_adv_by_std_in_grpo: bool = True
    # Epsilon added to the group std.
    adv_eps: float = 1e-6
    # No KL penalty in the reward (SimpleVLA-RL runs with 0): `algorithm.kl_ctrl.*` was removed, see
    # verl.trainer.config.removed; actor_rollout_ref.actor.kl_loss_coef adds a KL-to-reference loss.


@dataclass
class VerifierConfig:
    # Scale of the 0/1 success reward (cancels in the group z-score but for the epsilon).
    reward_coef: float = 5.0


@dataclass
class TrainerConfig(RunConfig):
    experiment_name: str = "grpo"
    logger: list[str] = field(default_factory=lambda: ["console", "jsonl", "wandb"])
    total_epochs: int = 100
    # Stop after this many RL steps; None = total_epochs worth of steps.
    total_training_steps: Optional[int] = None
    # Save every N steps (-1: never, except at the end when save_last).
    save_freq: int = 25
    save_last: bool = True
    # Validate every N steps (-1: never).
    test_freq: int = 4
    val_before_train: bool = True
    # Evaluate `actor_rollout_ref.model.path` and exit.
    val_only: bool = False
    # Completed checkpoints to keep (None = all).
    max_actor_ckpt_to_keep: Optional[int] = None


@dataclass
class PPOConfig:
    data: DataConfig = field(default_factory=DataConfig)
    actor_rollout_ref: ActorRolloutRefConfig = field(default_factory=ActorRolloutRefConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
