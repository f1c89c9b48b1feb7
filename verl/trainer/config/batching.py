"""Batch arithmetic of one RL step, for any NUM_NODES x NUM_GPUS.

Sizes in the config are global and counted in trajectories (`ppo_mini_batch_size`) or prompts
(`train_batch_size`); per-rank sizes and gradient accumulation are derived here from the world size,
so the same launch script works on 1 GPU, 8 GPUs or 2 x 8 GPUs.
"""

from __future__ import annotations

from dataclasses import dataclass


class BatchPlanError(ValueError):
    pass


@dataclass(frozen=True)
class BatchPlan:
    world_size: int
    trajectories_per_step: int  # train_batch_size * n_samples
    trajectories_per_rank: int
    mini_batch_per_rank: int  # trajectories per optimiser step on one rank
    micro_batch_per_rank: int  # trajectories per forward/backward on one rank
    grad_accum_steps: int  # micro-batches per optimiser step
    optimizer_steps: int  # optimiser steps per RL step and PPO epoch


def batch_plan(
    train_batch_size: int,
    n_samples: int,
    ppo_mini_batch_size: int,
    micro_batch_size_per_gpu: int,
    world_size: int,
) -> BatchPlan:
    """Derive per-rank sizes. Raises BatchPlanError naming the field when the sizes do not fit."""
    if world_size < 1:
        raise BatchPlanError(f"world size must be >= 1, got {world_size}")
    total = train_batch_size * n_samples
    if total % world_size:
        raise BatchPlanError(
            f"data.train_batch_size * data.n_samples = {total} trajectories must divide evenly over "
            f"trainer.nnodes * trainer.n_gpus_per_node = {world_size} ranks"
        )
    mini = min(ppo_mini_batch_size, total)
    if mini % world_size:
        raise BatchPlanError(
            f"actor_rollout_ref.actor.ppo_mini_batch_size={ppo_mini_batch_size} must be a multiple of the "
            f"world size {world_size} (it counts trajectories across all ranks)"
        )
    if total % mini:
        raise BatchPlanError(
            f"actor_rollout_ref.actor.ppo_mini_batch_size={ppo_mini_batch_size} must divide "
            f"data.train_batch_size * data.n_samples = {total}"
        )
    mini_per_rank = mini // world_size
    micro = min(micro_batch_size_per_gpu, mini_per_rank)
    if mini_per_rank % micro:
        raise BatchPlanError(
            f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu={micro_batch_size_per_gpu} must divide the "
            f"per-rank mini-batch ppo_mini_batch_size / world_size = {mini_per_rank}"
        )
    return BatchPlan(
        world_size=world_size,
        trajectories_per_step=total,
        trajectories_per_rank=total // world_size,
        mini_batch_per_rank=mini_per_rank,
        micro_batch_per_rank=micro,
        grad_accum_steps=mini_per_rank // micro,
        optimizer_steps=total // mini,
    )


REFILL_MODES = ("full", "missing")


def prompts_for_round(
    train_batch_size: int,
    oversample_factor: int,
    n_kept: int,
    n_samples: int,
    world_size: int,
    refill: str = "full",
) -> int:
    """Prompts to roll out in the next dynamic-sampling round, after `n_kept` groups were kept.

    The first round, and every round with `refill="full"`, rolls out train_batch_size * oversample_factor
    prompts. With `refill="missing"` a later round rolls out only (train_batch_size - n_kept) *
    oversample_factor, rounded up so that every rank gets the same number of trajectories.
    """
    if refill not in REFILL_MODES:
        raise BatchPlanError(f"data.refill={refill!r}: allowed values: {', '.join(REFILL_MODES)}")
    if refill == "full":
        return train_batch_size * oversample_factor
    prompts = max(1, train_batch_size - n_kept) * oversample_factor
    while (prompts * n_samples) % world_size:
        prompts += 1
    return prompts
