"""The GRPO trainer's configuration tree, in veRL's vocabulary.

Every field is documented where it is defined; these defaults are the only ones. Launch scripts
override them with Hydra's syntax, e.g. `actor_rollout_ref.actor.optim.lr=5e-6`.
Defaults follow SimpleVLA-RL's LIBERO recipe unless a comment says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore

from verl.envs.config import EnvConfig


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
    # information when the episode depends on the seed (env.perturbation on).
    val_n_samples: int = 1
    # Dynamic sampling: keep only groups whose success rate lies in [lower, upper] (inclusive).
    filter_accuracy: bool = True
    accuracy_lower_bound: float = 0.1
    accuracy_upper_bound: float = 0.9
    # Cap on sampling rounds per RL step; when hit, the step trains on the groups it has (with a warning),
    # so an all-failing or all-succeeding policy cannot loop forever.
    max_sampling_rounds: int = 8
    # Shuffle the training prompts every epoch (seeded by trainer.seed and the epoch).
    shuffle: bool = True


@dataclass
class ModelConfig:
    # Checkpoint directory in the Hugging Face layout (config.json, safetensors, dataset_statistics.json...).
    path: str = ""
    # Registered policy name (verl.models.registry).
    vla: str = "openvla-oft"
    # Action dimension and chunk length; None = read from the checkpoint's config. When given, they must
    # match the checkpoint (LIBERO 7 x 8, RoboTwin 14 x 25).
    action_token_len: Optional[int] = None
    action_chunks_len: Optional[int] = None
    # Key into dataset_statistics.json; None = the suite name, then "<suite>_no_noops", then the only key.
    unnorm_key: Optional[str] = None
    # Camera images per observation (1 = agent view; 2 adds the wrist camera); None = the checkpoint's.
    num_images_in_input: Optional[int] = None
    # Feed the 8-d proprio state through the proprio projector; None = the checkpoint's setting.
    use_proprio: Optional[bool] = None
    # Recompute activations in backward (vision blocks and Llama layers): on for the 7B launch script,
    # where it cuts the update's activations from ~41 GiB to ~4.4 GiB per rank (scripts/bench/memory_plan.py).
    enable_gradient_checkpointing: bool = False
    # LoRA rank; 0 = full fine-tuning. Checkpoints are saved merged.
    lora_rank: int = 0
    lora_alpha: int = 32
    target_modules: str = "all-linear"
    # Attention kernel: sdpa (default), eager, or flash_attention_2 (GPU only, needs flash-attn).
    attn_implementation: str = "sdpa"


@dataclass
class OptimConfig:
    lr: float = 5e-6
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    # Learning-rate schedule: constant, or cosine with warm-up.
    warmup_style: str = "constant"
    # Warm-up length as a fraction of the total optimiser steps (ignored when lr_warmup_steps >= 0).
    lr_warmup_steps_ratio: float = 0.0
    lr_warmup_steps: int = -1


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
    # Decision steps of one trajectory per forward pass (bounds activation memory for long episodes).
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
class KLCtrlConfig:
    type: str = "fixed"
    # KL-in-reward coefficient (0 = off, as in SimpleVLA-RL).
    kl_coef: float = 0.0


@dataclass
class AlgorithmConfig:
    # Advantage estimator: grpo (outcome reward, group-normalised).
    adv_estimator: str = "grpo"
    # Divide by the group's standard deviation (False: Dr.GRPO-style mean-centring only).
    norm_adv_by_std_in_grpo: bool = True
    # Epsilon added to the group std.
    adv_eps: float = 1e-6
    kl_ctrl: KLCtrlConfig = field(default_factory=KLCtrlConfig)


@dataclass
class VerifierConfig:
    # Scale of the 0/1 success reward (cancels in the group z-score but for the epsilon).
    reward_coef: float = 5.0


@dataclass
class TrainerConfig:
    project_name: str = "verl-vla"
    experiment_name: str = "grpo"
    # Any of console, jsonl, wandb.
    logger: list[str] = field(default_factory=lambda: ["console", "jsonl", "wandb"])
    # auto: online when WANDB_API_KEY is set, else offline. Or online / offline / disabled.
    wandb_mode: str = "auto"
    nnodes: int = 1
    # GPUs per node; on a CPU-only machine the number of CPU worker processes per node.
    n_gpus_per_node: int = 1
    # auto (cuda when available), cuda, cpu.
    device: str = "auto"
    # CPUs Ray reserves per worker actor.
    num_cpus_per_worker: float = 1.0
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
    # auto: resume from the newest complete checkpoint in default_local_dir; disable; resume_path.
    resume_mode: str = "auto"
    resume_from_path: Optional[str] = None
    # Root of checkpoints, metrics and videos for this experiment.
    default_local_dir: str = "outputs/${trainer.project_name}/${trainer.experiment_name}"
    # Completed checkpoints to keep (None = all).
    max_actor_ckpt_to_keep: Optional[int] = None
    # JSON file used as Ray's runtime_env (align.json); its env_vars reach every worker. Empty = none.
    runtime_env: str = ""
    # Address of an existing Ray cluster (multi-node: started with `ray start`); None = start one locally
    # (or join RAY_ADDRESS when it is set).
    ray_address: Optional[str] = None
    seed: int = 1
    # Progress bars on the console.
    progress_bar: bool = True


@dataclass
class PPOConfig:
    data: DataConfig = field(default_factory=DataConfig)
    actor_rollout_ref: ActorRolloutRefConfig = field(default_factory=ActorRolloutRefConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    verifier: VerifierConfig = field(default_factory=VerifierConfig)
    env: EnvConfig = field(default_factory=EnvConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def register_configs() -> None:
    """Register the schema as the `ppo_trainer` config node."""
    ConfigStore.instance().store(name="ppo_trainer", node=PPOConfig)
