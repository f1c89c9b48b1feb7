"""The original OpenVLA policy: one action per call, its 7 tokens generated one after another.

    log pi(tokens | obs) = sum_k log_softmax(logits_k(obs, a_<k) / T)[a_k]

`act` samples (temperature T, rollouts) or takes the argmax (evaluation) token by token with a
key/value cache, and returns the log-probs of the chosen tokens under the tempered distributions it
drew from; `log_prob` recomputes them in one teacher-forced causal pass (the actor's old log-probs,
update and reference). Both use the same vocabulary setting:
- "action" (default, as RLinf): softmax over the 256 action ids; tokens are action indices 0..255.
- "full" (the official LIBERO evaluation and SimpleVLA-RL): softmax over the whole 32064-id
  vocabulary; tokens are vocabulary ids. A non-action id decodes as the official code does (any id
  below the action range to the highest bin centre, any id above it to the lowest). Tokens after an
  early </s> are still sampled (HF `generate` would pad them).

Everything else — checkpoint files, prompt, LIBERO image pipeline (JPEG round trip, Lanczos resize,
90%-area centre crop), action bins, statistics and `unnorm_key` selection, LoRA, saving — is the
OFT policy's. Un-normalisation follows `predict_action` (no 1e-8 on q99 - q01); the LIBERO gripper
post-processing (binarise, invert) is the env layer's (`verl.envs.libero.convert`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from verl.models.base import ActOutput
from verl.models.openvla.modeling import OpenVLAForActionPrediction
from verl.models.openvla_oft.action_tokenizer import unnormalize
from verl.models.openvla_oft.policy import OpenVLAOFTPolicy

VOCABULARIES = ("action", "full")

__all__ = ["VOCABULARIES", "OpenVLAPolicy"]


class OpenVLAPolicy(OpenVLAOFTPolicy):
    """Causal OpenVLA on the OFT policy's processor, statistics and checkpoint I/O; implements
    `verl.models.base.Policy` with chunk 1 and 7 tokens per step."""

    model_class = OpenVLAForActionPrediction

    def __init__(self, *args, vocabulary: str = "action", **kwargs):
        if vocabulary not in VOCABULARIES:
            raise ValueError(f"vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
        super().__init__(*args, **kwargs)
        self.vocabulary = vocabulary
        self._generate_registered = False

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        unnorm_key: str | None = None,
        num_actions_chunk: int | None = None,
        action_dim: int | None = None,
        use_proprio: bool | None = None,
        num_images_in_input: int | None = None,
        attn_implementation: str | None = None,
        statistics_path: str | Path | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        flip: bool = False,
        image_pipeline: str = "jpeg_resize_crop",
        vocabulary: str = "action",
    ) -> OpenVLAPolicy:
        """Load a released `openvla/openvla-7b*` checkpoint or one this framework wrote.

        The trainers' model keys are checked: OpenVLA predicts one action per call
        (num_actions_chunk 1 or None), from one image (num_images_in_input 1 or None), without
        proprio (use_proprio false or None). action_dim defaults to the statistics' (LIBERO 7).
        """
        if num_actions_chunk not in (None, 1):
            raise ValueError(
                "OpenVLA predicts one action per call: num_actions_chunk (actor_rollout_ref.model."
                f"action_chunks_len, data.chunk) must be 1 or null, got {num_actions_chunk}"
            )
        if use_proprio:
            raise ValueError("OpenVLA takes no proprio input: use_proprio must be false or null")
        if num_images_in_input not in (None, 1):
            raise ValueError(
                f"OpenVLA reads one image: num_images_in_input must be 1 or null, got {num_images_in_input}"
            )
        if vocabulary not in VOCABULARIES:
            raise ValueError(f"vocabulary must be one of {VOCABULARIES}, got {vocabulary!r}")
        policy = super().from_pretrained(
            path,
            unnorm_key=unnorm_key,
            num_actions_chunk=1,
            action_dim=action_dim,
            use_proprio=False,
            num_images_in_input=1,
            attn_implementation=attn_implementation,
            statistics_path=statistics_path,
            dtype=dtype,
            device=device,
            flip=flip,
            image_pipeline=image_pipeline,
        )
        policy.vocabulary = vocabulary
        return policy

    # ------------------------------------------------------------------ tokens <-> actions
    @property
    def _full_vocab(self) -> bool:
        return self.vocabulary == "full"

    @property
    def _token_offset(self) -> int:
        """Vocabulary id of token 0 under the vocabulary setting."""
        return 0 if self._full_vocab else self.config.action_token_begin

    def decode_actions(self, action_tokens: torch.Tensor) -> np.ndarray:
        """Tokens [B, 7] -> un-normalised actions float32 [B, 1, 7] (gripper in [0, 1], 1 = open)."""
        index = (
            action_tokens.cpu().numpy().astype(np.int64) + self._token_offset - self.config.action_token_begin
        )
        values = self.action_tokenizer.decode(index).reshape(len(index), 1, self.config.action_dim)
        return unnormalize(values, self.action_stats, eps=0.0).astype(np.float32)

    def encode_actions(self, actions: np.ndarray) -> torch.Tensor:
        """Actions [B, 1, 7] in robot units -> target tokens [B, 7] (supervised targets)."""
        indices = super().encode_actions(actions)
        return indices + (self.config.action_token_begin - self._token_offset)

    # ------------------------------------------------------------------ forward passes
    def action_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Teacher-forced float32 logits [N, 7, V] of batch["action_tokens"] (see `log_prob`); V = 256
        or the vocabulary size."""
        if "action_tokens" not in batch:
            raise ValueError("OpenVLA's logits are teacher-forced: the batch needs action_tokens [N, 7]")
        device = self.device
        mask = batch["attention_mask"].to(device)
        length = int(mask.sum(dim=1).max())  # drop all-pad columns
        if "pixel_values" in batch:
            pixels = batch["pixel_values"].to(device)
        else:
            pixels = self.processor.pixel_values(batch["images"].to(device))
        with self._autocast():
            logits = self.model(
                batch["input_ids"][:, :length].to(device),
                mask[:, :length],
                pixels,
                batch["action_tokens"].to(device).long(),
                full_vocab=self._full_vocab,
            )
        return logits.float()

    @torch.no_grad()
    def act(
        self,
        observations: list[dict],
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        row_seeds: Sequence[int] | None = None,
    ) -> ActOutput:
        """Generate the 7 tokens of every observation with a key/value cache.

        Sampling draws from `generator`, or, with `row_seeds`, observation i draws all 7 tokens from
        its own stream seeded by `row_seeds[i]`, so its tokens do not depend on the batch.
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if row_seeds is not None and len(row_seeds) != len(observations):
            raise ValueError(f"row_seeds has {len(row_seeds)} entries for {len(observations)} observations")
        inputs = self.prepare(observations)
        streams = None
        if not greedy and row_seeds is not None:
            streams = [torch.Generator().manual_seed(int(seed)) for seed in row_seeds]

        def choose(logits: torch.Tensor) -> torch.Tensor:
            """[B, V] -> [B]: argmax, or a draw from softmax(logits / T)."""
            if greedy:
                return logits.argmax(dim=-1)
            probs = torch.softmax(logits.float() / temperature, dim=-1).cpu()
            if streams is None:
                return torch.multinomial(probs, 1, generator=generator)[:, 0]
            return torch.stack([torch.multinomial(p, 1, generator=g)[0] for p, g in zip(probs, streams)])

        self._register_generate()
        device = self.device
        with self._autocast():
            tokens, logits = self.model.generate(
                inputs.input_ids.to(device),
                inputs.attention_mask.to(device),
                self.processor.pixel_values(inputs.images.to(device)),
                choose,
                full_vocab=self._full_vocab,
            )
        log_probs = torch.log_softmax(logits.float() / temperature, dim=-1)
        chosen = log_probs.gather(-1, tokens[..., None])[..., 0]
        return ActOutput(tokens.cpu(), chosen.cpu(), self.decode_actions(tokens), inputs.jpegs, None, inputs)

    def _register_generate(self) -> None:
        """Under FSDP2, `generate` must gather the root unit's parameters as `forward` does."""
        from torch.distributed.fsdp import FSDPModule, register_fsdp_forward_method

        if isinstance(self.model, FSDPModule) and not self._generate_registered:
            register_fsdp_forward_method(self.model, "generate")
            self._generate_registered = True
