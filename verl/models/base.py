"""The policy contract: what the rollout, the actor, the SFT trainer and checkpointing call.

A policy maps an observation (see `verl.envs.base`: named images, optional proprio, instruction) to
`tokens_per_step` discrete action tokens per decision step, decoded into an action chunk
[chunk, action_dim]. Parallel decoding (OpenVLA-OFT: one forward predicts every token) and
autoregressive decoding (OpenVLA: tokens generated one after another) both fit:

- `act` samples (or takes the argmax of) the tokens and returns, with them, the log-probs of the
  chosen tokens under the tempered distribution it sampled from, the decoded actions, and the lean
  record the rollout stores to rebuild the inputs later (JPEG bytes per image, normalised proprio);
- `step_batch` rebuilds a batch from such records plus given tokens, and `log_prob` scores the given
  tokens in one teacher-forced pass: per-token log-probs and entropies [N, tokens_per_step]. The
  actor's old log-probs, update and reference all go through it, so they equal the sampling pass's.
- `action_logits` (teacher-forced logits [N, tokens_per_step, V]) is what supervised fine-tuning
  trains on.

`model` is the `nn.Module` FSDP shards (its `fsdp_wrap_classes` become FSDP units). Policies never
import simulators: the worker checks the observation contract with `bind_observations`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch


@dataclass
class ActOutput:
    """One policy call on B observations.

    action_tokens: int64 [B, tokens_per_step] token indices (policy-specific meaning).
    log_probs: float32 [B, tokens_per_step] of those tokens at the sampling temperature.
    actions: float32 [B, chunk, action_dim], un-normalised, ready for the simulator.
    jpegs: [B][n_images] JPEG bytes of the policy's input images (the record `step_batch` reads).
    proprio: float32 [B, p] normalised proprio fed to the model, or None.
    inputs: the policy's own model inputs, for diagnostics and tests.
    """

    action_tokens: torch.Tensor
    log_probs: torch.Tensor
    actions: np.ndarray
    jpegs: list[list[bytes]]
    proprio: torch.Tensor | None
    inputs: Any = None


def token_log_probs(
    logits: torch.Tensor, tokens: torch.Tensor, temperature: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-prob of `tokens` and entropy under softmax(logits / temperature).

    logits [..., V], tokens [...] (int) -> (log_probs [...], entropy [...]), float32.
    """
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)
    log_probs = logp_all.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    return log_probs, entropy


class Policy(Protocol):
    """A VLA policy as the framework uses it (see the module docstring)."""

    model: torch.nn.Module
    # Submodule class names sharded as their own FSDP units.
    fsdp_wrap_classes: tuple[str, ...]

    @property
    def tokens_per_step(self) -> int:
        """Action tokens per decision step."""
        ...

    @property
    def chunk_size(self) -> int:
        """Actions per decision step (the chunk length)."""
        ...

    @property
    def action_dim(self) -> int:
        """Values per action; tokens_per_step = chunk_size * action_dim."""
        ...

    def bind_observations(self, cameras: Sequence[str], proprio_dim: int) -> None:
        """Check that observations with these cameras (in order) and proprio size carry what the
        policy consumes, and remember which cameras it reads; ValueError naming the mismatch."""
        ...

    def act(
        self,
        observations: list[dict],
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        row_seeds: Sequence[int] | None = None,
    ) -> ActOutput: ...

    def step_batch(
        self,
        jpegs: Sequence[Sequence[bytes]],
        instructions: Sequence[str],
        proprio: torch.Tensor | None,
        action_tokens: torch.Tensor | None,
        cache: Any = None,
    ) -> dict[str, torch.Tensor]:
        """A `log_prob` batch from stored decision steps (the records of `act`). `cache`
        (`verl.utils.image_cache.ImageDecodeCache`) memoises decoded images across the step's passes:
        decode through `cache.stack(records, decode)` when it is given."""
        ...

    def idle_batch(self) -> dict[str, torch.Tensor]:
        """A one-row batch of a blank observation (for ranks that must join a collective forward)."""
        ...

    def log_prob(
        self, batch: Mapping[str, torch.Tensor], temperature: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probs and entropies [N, tokens_per_step] of batch["action_tokens"] at `temperature`."""
        ...

    def action_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Teacher-forced float32 logits [N, tokens_per_step, V] over the action vocabulary."""
        ...

    def encode_actions(self, actions: np.ndarray) -> torch.Tensor:
        """Actions [B, chunk, action_dim] in robot units -> target tokens [B, tokens_per_step]."""
        ...

    def enable_lora(
        self, rank: int, alpha: float, target_modules: list[str] | None = None, dropout: float = 0.0
    ) -> None: ...

    def gradient_checkpointing_enable(self) -> None: ...

    def save_pretrained(self, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write the checkpoint in the Hugging Face layout; `state_dict` (full, released key names)
        replaces the module's own (a sharded model's gathered weights)."""
        ...
