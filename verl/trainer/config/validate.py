"""All value checks of the trainer configuration, in one place.

Type errors and unknown keys are caught earlier by the structured schema (Hydra names the key);
these checks cover ranges, choices and relations between fields. Each error names the field,
the value and what is allowed.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from verl.trainer.config.batching import REFILL_MODES, batch_plan
from verl.trainer.config.common import (
    check_resume,
    choice,
    positive,
    validate_policy_model,
    validate_run_config,
)
from verl.utils.config_values import ConfigError, parse_id_ranges
from verl.utils.config_values import fail as _fail

__all__ = ["ConfigError", "check_resume", "parse_id_ranges", "validate_config"]


_choice, _positive = choice, positive


LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm")
KL_LOSS_TYPES = ("low_var_kl", "kl", "abs", "mse")


def validate_config(cfg: Any) -> None:
    """Check a PPOConfig dataclass instance (`OmegaConf.to_object` of the Hydra config). Raises ConfigError naming the first bad field."""
    data, arr, trainer = cfg.data, cfg.actor_rollout_ref, cfg.trainer
    actor, rollout, model = arr.actor, arr.rollout, arr.model

    from verl.envs.registry import get_env_spec, split_suites

    suites = split_suites(data.task_suite_name)
    allowed_suites = list(get_env_spec(cfg.env.name).suites)
    for suite in suites:
        _choice("data.task_suite_name", suite, tuple(allowed_suites))
    if not suites:
        _fail("data.task_suite_name", data.task_suite_name, f"allowed values: {', '.join(allowed_suites)}")
    train_ids = parse_id_ranges(data.train_init_states, "data.train_init_states")
    parse_id_ranges(data.val_init_states, "data.val_init_states")
    if data.task_ids is not None and any(t < 0 for t in data.task_ids):
        _fail("data.task_ids", list(data.task_ids), "task ids must be >= 0 (None = all tasks)")
    _positive("data.n_samples", data.n_samples)
    _positive("data.val_n_samples", data.val_n_samples)
    _positive("data.train_batch_size", data.train_batch_size)
    _positive("data.oversample_factor", data.oversample_factor)
    _positive("data.max_sampling_rounds", data.max_sampling_rounds)
    _choice("data.refill", data.refill, REFILL_MODES)
    if data.val_batch_size is not None:
        _positive("data.val_batch_size", data.val_batch_size)
    if not 0.0 <= data.accuracy_lower_bound <= data.accuracy_upper_bound <= 1.0:
        _fail(
            "data.accuracy_lower_bound/accuracy_upper_bound",
            (data.accuracy_lower_bound, data.accuracy_upper_bound),
            "need 0 <= lower <= upper <= 1",
        )
    if not trainer.val_only and len(train_ids) == 0:
        _fail("data.train_init_states", data.train_init_states, "must name at least one initial state")

    if not model.path:
        _fail("actor_rollout_ref.model.path", model.path, "set it to a checkpoint directory (HF layout)")
    validate_policy_model(model, "actor_rollout_ref.model")
    _choice("actor_rollout_ref.model.num_images_in_input", model.num_images_in_input, (None, 1, 2))
    _choice(
        "actor_rollout_ref.model.image_pipeline", model.image_pipeline, ("jpeg_resize_crop", "crop_resize")
    )
    _choice(
        "actor_rollout_ref.model.attn_implementation",
        model.attn_implementation,
        ("sdpa", "eager", "flash_attention_2"),
    )
    if model.attn_implementation == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        _fail(
            "actor_rollout_ref.model.attn_implementation",
            model.attn_implementation,
            "needs the flash-attn package (the `gpu` extra, CUDA only); use sdpa or eager here",
        )

    _choice("actor_rollout_ref.actor.strategy", actor.strategy, ("fsdp2",))
    _positive("actor_rollout_ref.actor.optim.lr", actor.optim.lr)
    _choice("actor_rollout_ref.actor.optim.warmup_style", actor.optim.warmup_style, ("constant", "cosine"))
    if len(actor.optim.betas) != 2:
        _fail(
            "actor_rollout_ref.actor.optim.betas", list(actor.optim.betas), "need two values [beta1, beta2]"
        )
    _choice(
        "actor_rollout_ref.actor.fsdp_config.mixed_precision",
        actor.fsdp_config.mixed_precision,
        ("bf16", "fp32"),
    )
    _positive("actor_rollout_ref.actor.ppo_mini_batch_size", actor.ppo_mini_batch_size)
    _positive("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", actor.ppo_micro_batch_size_per_gpu)
    _positive("actor_rollout_ref.actor.traj_mini_batch_size", actor.traj_mini_batch_size)
    _positive("actor_rollout_ref.actor.ppo_epochs", actor.ppo_epochs)
    if not 0.0 <= actor.clip_ratio_low < 1.0:
        _fail("actor_rollout_ref.actor.clip_ratio_low", actor.clip_ratio_low, "need 0 <= value < 1")
    if actor.clip_ratio_high < 0.0:
        _fail("actor_rollout_ref.actor.clip_ratio_high", actor.clip_ratio_high, "need value >= 0")
    if actor.clip_ratio_c is not None and actor.clip_ratio_c <= 1.0:
        _fail("actor_rollout_ref.actor.clip_ratio_c", actor.clip_ratio_c, "need value > 1 (or None)")
    _choice("actor_rollout_ref.actor.loss_agg_mode", actor.loss_agg_mode, LOSS_AGG_MODES)
    _choice("actor_rollout_ref.actor.kl_loss_type", actor.kl_loss_type, KL_LOSS_TYPES)
    if actor.grad_clip <= 0:
        _fail("actor_rollout_ref.actor.grad_clip", actor.grad_clip, "must be > 0")

    _positive("actor_rollout_ref.rollout.temperature", rollout.temperature)
    _positive("actor_rollout_ref.rollout.micro_batch_size", rollout.micro_batch_size)
    _choice("actor_rollout_ref.rollout.weights_dtype", rollout.weights_dtype, ("auto", "bf16", "fp32"))
    _positive(
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu",
        rollout.log_prob_micro_batch_size_per_gpu,
    )

    _choice("algorithm.adv_estimator", cfg.algorithm.adv_estimator, ("grpo",))
    _positive("algorithm.adv_eps", cfg.algorithm.adv_eps)
    _positive("verifier.reward_coef", cfg.verifier.reward_coef)

    validate_run_config(trainer)
    _positive("trainer.total_epochs", trainer.total_epochs)
    if trainer.total_training_steps is not None:
        _positive("trainer.total_training_steps", trainer.total_training_steps)
    if trainer.save_freq == 0 or trainer.save_freq < -1:
        _fail("trainer.save_freq", trainer.save_freq, "must be > 0, or -1 to disable")
    if trainer.test_freq == 0 or trainer.test_freq < -1:
        _fail("trainer.test_freq", trainer.test_freq, "must be > 0, or -1 to disable")

    # Batch arithmetic that must hold for every NUM_NODES x NUM_GPUS (see verl.trainer.config.batching).
    if not trainer.val_only:
        batch_plan(
            train_batch_size=data.train_batch_size,
            n_samples=data.n_samples,
            ppo_mini_batch_size=actor.ppo_mini_batch_size,
            micro_batch_size_per_gpu=actor.ppo_micro_batch_size_per_gpu,
            world_size=trainer.nnodes * trainer.n_gpus_per_node,
        )
    try:
        cfg.env.validate()
    except ValueError as err:
        raise ConfigError(str(err)) from None
