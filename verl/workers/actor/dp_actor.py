"""The data-parallel PPO actor: log-probs of stored trajectories and the clipped-loss update.

A trajectory of S decision steps is a sequence of S independent policy forwards (one per action
chunk), so the actor works on *decision steps*: it flattens the valid steps of its trajectories and
runs them in slices of `traj_mini_batch_size` steps, which bounds activation memory however long the
episodes are. Per-token weights from `agg_weights` make the sliced loss equal the loss of the whole
mini-batch under any aggregation mode.

Under FSDP every forward is a collective, so all ranks must run the same number of forwards: the
slice count is agreed with an all-reduce(max) and ranks with less work run zero-weight forwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from verl.protocol import DataProto
from verl.trainer.ppo.core_algos import agg_weights, kl_penalty, policy_loss_per_token
from verl.utils.device import autocast
from verl.utils.fsdp_utils import clip_grad_norm
from verl.utils.image_cache import ImageDecodeCache


@dataclass
class ActorSettings:
    """What the actor needs from `actor_rollout_ref.actor.*` (resolved to per-rank sizes)."""

    clip_ratio_low: float
    clip_ratio_high: float
    clip_ratio_c: float | None
    loss_agg_mode: str
    entropy_coeff: float
    kl_loss_coef: float
    kl_loss_type: str
    grad_clip: float
    ppo_epochs: int
    mini_batch_per_rank: int
    micro_batch_per_rank: int
    steps_per_forward: int
    mixed_precision: str
    shuffle: bool
    seed: int


def _synced_count(n: int, device: torch.device) -> int:
    """The largest `n` over all ranks (every rank must run as many FSDP forwards)."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return n
    t = torch.tensor([n], dtype=torch.long, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _dp_agg_weights(mask: torch.Tensor, mode: str, device: torch.device) -> torch.Tensor:
    """`agg_weights` [b, T] of this rank's share of a mini-batch split over all ranks.

    Token and sequence counts are summed over ranks, so ranks holding different numbers of tokens
    weigh each token as the whole mini-batch would; the world-size factor undoes FSDP's gradient
    average over ranks.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return agg_weights(mask, mode)
    counts = torch.tensor([float(mask.sum()), float(mask.shape[0])], dtype=torch.float64, device=device)
    dist.all_reduce(counts)
    return agg_weights(mask, mode, float(counts[0]), int(counts[1])) * dist.get_world_size()


class DataParallelPPOActor:
    """Old log-probs and the PPO update of a policy (`verl.models.base.Policy`) whose `model` is
    sharded across the data-parallel ranks; every score goes through `policy.log_prob`."""

    def __init__(
        self,
        policy,
        optimizer,
        scheduler,
        settings: ActorSettings,
        device: torch.device,
    ) -> None:
        self.policy = policy
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.settings = settings
        self.device = device
        self.tokens_per_step = policy.tokens_per_step
        # Decoded images of the current RL step, shared by its passes (and by the reference policy's);
        # the worker clears it per step.
        self.images = ImageDecodeCache()

    # ------------------------------------------------------------------ inputs
    def _forward_steps(
        self, data: DataProto, rows: np.ndarray, steps: np.ndarray, temperature: float, policy=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs and entropy [n, tokens_per_step] of decision steps (rows[i], steps[i]) of `data`."""
        policy = policy if policy is not None else self.policy
        jpegs = data.non_tensor_batch["jpegs"]
        instructions = data.non_tensor_batch["instruction"]
        r, s = torch.as_tensor(rows), torch.as_tensor(steps)
        proprio = data.batch["proprio"][r, s] if "proprio" in data.batch.keys() else None
        batch = policy.step_batch(
            [jpegs[i][j] for i, j in zip(rows, steps)],
            [str(instructions[i]) for i in rows],
            proprio,
            data.batch["action_tokens"][r, s],
            cache=self.images,
        )
        with autocast(self.device, self.settings.mixed_precision):
            return policy.log_prob(batch, temperature)

    @staticmethod
    def _valid_steps(data: DataProto) -> tuple[np.ndarray, np.ndarray]:
        """(row, step) of every decision step that was taken, trajectory-major."""
        n_steps = data.batch["num_decision_steps"].cpu().numpy()
        rows = np.repeat(np.arange(len(data)), n_steps)
        steps = (
            np.concatenate([np.arange(n) for n in n_steps]) if len(n_steps) else np.zeros(0, dtype=np.int64)
        )
        return rows, steps.astype(np.int64)

    def _slices(self, n: int, size: int) -> Iterator[slice | None]:
        """`size`-step slices of n steps, padded with None to the count agreed by all ranks."""
        count = _synced_count((n + size - 1) // size, self.device)
        for i in range(count):
            yield slice(i * size, min(n, (i + 1) * size)) if i * size < n else None

    # ------------------------------------------------------------------ log-probs
    @torch.no_grad()
    def compute_log_prob(
        self, data: DataProto, temperature: float, steps_per_forward: int, policy=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropy [B, S * A] of the stored action tokens (0 where not taken)."""
        b, s_max = data.batch["action_tokens"].shape[:2]
        log_probs = torch.zeros(b, s_max, self.tokens_per_step)
        entropy = torch.zeros(b, s_max, self.tokens_per_step)
        rows, steps = self._valid_steps(data)
        for part in self._slices(len(rows), steps_per_forward):
            if part is None:  # keep FSDP collectives in step with the other ranks
                if len(rows):
                    self._forward_steps(data, rows[:1], steps[:1], temperature, policy)
                else:
                    self._idle_forward(temperature, policy)
                continue
            lp, ent = self._forward_steps(data, rows[part], steps[part], temperature, policy)
            log_probs[rows[part], steps[part]] = lp.float().cpu()
            entropy[rows[part], steps[part]] = ent.float().cpu()
        return log_probs.reshape(b, -1), entropy.reshape(b, -1)

    def _idle_forward(self, temperature: float, policy=None) -> torch.Tensor:
        """Log-probs of a blank observation, for ranks that hold no trajectories at all."""
        policy = policy if policy is not None else self.policy
        with autocast(self.device, self.settings.mixed_precision):
            return policy.log_prob(policy.idle_batch(), temperature)[0]

    # ------------------------------------------------------------------ update
    def update_policy(self, data: DataProto, temperature: float) -> dict[str, float]:
        """PPO epochs over shuffled mini-batches; one optimiser step per mini-batch."""
        self.policy.model.train()
        settings = self.settings
        b = len(data)
        metrics: dict[str, list[float]] = {}
        rng = np.random.default_rng([settings.seed, int(data.meta_info.get("global_step", 0))])
        for _ in range(settings.ppo_epochs):
            order = rng.permutation(b) if settings.shuffle else np.arange(b)
            for start in range(0, b, settings.mini_batch_per_rank):
                mini = data.index(order[start : start + settings.mini_batch_per_rank])
                for key, value in self._update_mini_batch(mini, temperature).items():
                    metrics.setdefault(key, []).append(value)
        return {k: float(np.mean(v)) for k, v in metrics.items()}

    def _update_mini_batch(self, mini: DataProto, temperature: float) -> dict[str, float]:
        s = self.settings
        a = self.tokens_per_step
        b, s_max = mini.batch["action_tokens"].shape[:2]
        mask = mini.batch["response_mask"].float()  # [b, S*A]
        weights = _dp_agg_weights(mask, s.loss_agg_mode, self.device).reshape(b, s_max, a)
        mask3 = mask.reshape(b, s_max, a)
        old = mini.batch["old_log_probs"].reshape(b, s_max, a)
        adv = mini.batch["advantages"].reshape(b, s_max, a)
        ref = mini.batch["ref_log_probs"].reshape(b, s_max, a) if s.kl_loss_coef > 0 else None
        totals = {
            "pg_loss": 0.0,
            "clip_sum": 0.0,
            "kl_sum": 0.0,
            "ent_sum": 0.0,
            "tokens": 0.0,
            "kl_loss": 0.0,
        }
        self.optimizer.zero_grad(set_to_none=True)
        for micro_start in range(0, max(b, 1), s.micro_batch_per_rank):
            micro_rows = np.arange(micro_start, min(b, micro_start + s.micro_batch_per_rank))
            micro = mini.index(micro_rows)
            rows_local, steps = self._valid_steps(micro)
            rows = micro_rows[rows_local] if len(rows_local) else rows_local
            for part in self._slices(len(rows), s.steps_per_forward):
                if part is None:
                    (self._idle_forward(temperature).sum() * 0.0).backward()
                    continue
                r, st = rows[part], steps[part]
                lp, ent = self._forward_steps(mini, r, st, temperature)
                w, m = weights[r, st].to(lp.device), mask3[r, st].to(lp.device)
                loss_tok, clipped, approx_kl = policy_loss_per_token(
                    old[r, st].to(lp.device),
                    lp,
                    adv[r, st].to(lp.device),
                    s.clip_ratio_low,
                    s.clip_ratio_high,
                    s.clip_ratio_c,
                )
                loss = (w * loss_tok).sum()
                totals["pg_loss"] += loss.item()
                if s.entropy_coeff:
                    loss = loss - s.entropy_coeff * (w * ent).sum()
                if ref is not None:
                    kl_term = (w * kl_penalty(lp, ref[r, st].to(lp.device), s.kl_loss_type)).sum()
                    loss = loss + s.kl_loss_coef * kl_term
                    totals["kl_loss"] += kl_term.item()
                loss.backward()
                totals["clip_sum"] += (clipped * m).sum().item()
                totals["kl_sum"] += (approx_kl * m).sum().item()
                totals["ent_sum"] += (ent.detach() * m).sum().item()
                totals["tokens"] += m.sum().item()
        grad_norm = clip_grad_norm(self.policy.model.parameters(), s.grad_clip)
        if torch.isfinite(grad_norm):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            self.scheduler.step()
        tokens = max(totals["tokens"], 1.0)
        out = {
            "actor/pg_loss": totals["pg_loss"],
            "actor/pg_clipfrac": totals["clip_sum"] / tokens,
            "actor/ppo_kl": totals["kl_sum"] / tokens,
            "actor/entropy": totals["ent_sum"] / tokens,
            "actor/grad_norm": float(grad_norm),
            "actor/lr": self.optimizer.param_groups[0]["lr"],
        }
        if ref is not None:
            out["actor/kl_loss"] = totals["kl_loss"]
        return out
