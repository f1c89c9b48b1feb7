"""The OpenVLA-OFT policy used by the rollout (`act`) and the actor (`log_prob`).

One call predicts a chunk of `chunk x dim` actions as `A = chunk * dim` independent 256-way
categoricals given the observation (sampled tokens are never fed back), so

    log pi(tokens | obs) = sum_k log_softmax(logits_k / T)[token_k]

with the rollout temperature T. `act` samples (or takes the argmax) and returns the per-token
log-probs of the chosen indices under the same tempered distribution that `log_prob` recomputes.
Computation is fp32 on CPU and under bf16 autocast on CUDA.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import verl.models.openvla_oft.lora as lora  # not via the package: its __init__ imports this module
from verl.models.base import ActOutput, token_log_probs
from verl.models.openvla_oft.action_tokenizer import (
    DATASET_STATISTICS_NAME,
    ActionTokenizer,
    NormStats,
    load_dataset_statistics,
    normalize,
    select_unnorm_key,
    unnormalize,
)
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
from verl.models.openvla_oft.processing import OpenVLAOFTProcessor


@dataclass
class PolicyInputs:
    """Model inputs of B observations plus the lean record a rollout stores to rebuild them."""

    input_ids: torch.Tensor  # [B, L] int64, right-padded prompts
    attention_mask: torch.Tensor  # [B, L] int64
    images: torch.Tensor  # [B, n_img, S, S, 3] uint8 after the image pipeline
    proprio: torch.Tensor | None  # [B, p] float32 normalised, when the model uses proprio
    jpegs: list[list[bytes]]  # [B][n_img] JPEG bytes: decode_image(jpeg) == images[b, i]
    prompt_ids: list[list[int]]  # [B] unpadded prompt token ids

    def batch(self, action_tokens: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The tensors as a `log_prob` batch."""
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "images": self.images}
        if self.proprio is not None:
            out["proprio"] = self.proprio
        if action_tokens is not None:
            out["action_tokens"] = action_tokens
        return out


# ActOutput.action_tokens are action indices 0..255 (vocab id = 31744 + index); actions have the
# gripper in [0, 1] (1 = open).
__all__ = ["ActOutput", "OpenVLAOFTPolicy", "PolicyInputs"]


class OpenVLAOFTPolicy(nn.Module):
    """Model + processor + action tokenizer + dataset statistics of one checkpoint; implements
    `verl.models.base.Policy`."""

    # Sharded as their own FSDP units. The LLM head and embeddings stay in the root unit: the model
    # reads `lm_head.weight` directly to restrict logits to the 256 action tokens.
    fsdp_wrap_classes = ("LlamaDecoderLayer", "Block")
    # The module `from_pretrained` builds (verl.models.openvla swaps in its causal variant).
    model_class = OpenVLAOFTForActionPrediction

    def __init__(
        self,
        model: OpenVLAOFTForActionPrediction,
        processor: OpenVLAOFTProcessor,
        statistics: dict,
        unnorm_key: str | None = None,
    ):
        super().__init__()
        self.model = model
        self.processor = processor
        self.config = model.config
        self.statistics = statistics
        self.unnorm_key = select_unnorm_key(statistics, unnorm_key)
        entry = statistics[self.unnorm_key]
        self.action_stats = NormStats.from_stats(entry["action"], self.config.normalization_type)
        self.proprio_stats = (
            NormStats.from_stats(entry["proprio"], self.config.normalization_type)
            if "proprio" in entry
            else None
        )
        if self.config.action_dim != self.action_stats.dim:
            raise ValueError(
                f"action_dim={self.config.action_dim} but the statistics of {self.unnorm_key!r} "
                f"have {self.action_stats.dim} action dimensions"
            )
        self.action_tokenizer = ActionTokenizer(self.config.n_action_bins)
        # Observation cameras read as the model's image inputs, in order; None = the first
        # num_images_in_input cameras of each observation.
        self.camera_keys: list[str] | None = None

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
    ) -> OpenVLAOFTPolicy:
        """Load a checkpoint directory.

        The keyword arguments set config fields a released config.json lacks (LIBERO:
        num_actions_chunk=8, action_dim=7). Statistics come from `dataset_statistics.json` in
        `statistics_path` or `path` (authoritative), else from `config.norm_stats`; action_dim
        defaults to their action dimension. RL checkpoints without processor files can point
        `statistics_path` at the SFT directory they came from.
        """
        from verl.models.openvla_oft.configuration import OpenVLAOFTConfig

        overrides = {
            "num_actions_chunk": num_actions_chunk,
            "action_dim": action_dim,
            "use_proprio": use_proprio,
            "num_images_in_input": num_images_in_input,
            "attn_implementation": attn_implementation,
        }
        config = OpenVLAOFTConfig.from_pretrained(path, **overrides)
        statistics = load_dataset_statistics(statistics_path or path) or config.norm_stats
        if not statistics:
            raise FileNotFoundError(
                f"no {DATASET_STATISTICS_NAME} in {statistics_path or path} and no norm_stats"
            )
        if config.action_dim is None:
            key = select_unnorm_key(statistics, unnorm_key)
            overrides["action_dim"] = len(statistics[key]["action"]["q01"])
        model = cls.model_class.from_pretrained(path, dtype=dtype, device=device, **overrides)
        # Saved checkpoints then carry the statistics in use in config.json too, as released ones do.
        model.config.norm_stats = statistics
        processor_dir = path if (Path(path) / "tokenizer.json").exists() else statistics_path
        processor = OpenVLAOFTProcessor.from_pretrained(
            processor_dir, flip=flip, image_pipeline=image_pipeline
        )
        return cls(model, processor, statistics, unnorm_key)

    # ------------------------------------------------------------------ helpers
    @property
    def device(self) -> torch.device:
        return self.model.projector.fc1.weight.device

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def tokens_per_step(self) -> int:
        return self.config.num_actions_chunk * self.config.action_dim

    @property
    def chunk_size(self) -> int:
        return self.config.num_actions_chunk

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    def bind_observations(self, cameras: Sequence[str], proprio_dim: int) -> None:
        """Read the first num_images_in_input of `cameras`; check the proprio size when used."""
        n = self.config.num_images_in_input
        if len(cameras) < n:
            raise ValueError(
                f"the policy takes {n} images per observation (num_images_in_input), the simulator "
                f"renders {len(cameras)}: {list(cameras)}; configure the simulator to render more "
                "cameras (LIBERO: env.libero.use_wrist_image=true) or set num_images_in_input"
            )
        if self.config.use_proprio and proprio_dim != self.config.proprio_dim:
            raise ValueError(
                f"the policy takes a {self.config.proprio_dim}-d proprio (use_proprio), the simulator "
                f"provides {proprio_dim} dimensions"
            )
        self.camera_keys = list(cameras[:n])

    def images_from_jpegs(self, jpegs: list[list[bytes]]) -> torch.Tensor:
        """[B][n_img] JPEG bytes -> uint8 [B, n_img, S, S, 3] through the image pipeline."""
        return torch.from_numpy(np.stack([[self.processor.decode_image(j) for j in row] for row in jpegs]))

    def prepare(self, observations: list[dict]) -> PolicyInputs:
        """Env observations (see the env contract) -> model inputs and their lean record."""
        n = self.config.num_images_in_input
        jpegs = []
        for obs in observations:
            images = obs["images"]
            keys = self.camera_keys or list(images)[:n]
            if len(keys) < n:
                raise ValueError(
                    f"num_images_in_input={n} needs {n} camera images, the observation has {list(images)}"
                )
            missing = [k for k in keys if images.get(k) is None]
            if missing:
                raise ValueError(
                    f"observation lacks the images of cameras {missing} (this call did not render)"
                )
            jpegs.append([self.processor.encode_image(np.asarray(images[k])) for k in keys])
        prompt_ids = [self.processor.prompt_ids(obs["instruction"]) for obs in observations]
        input_ids, attention_mask = self.processor.pad(prompt_ids)
        proprio = None
        if self.config.use_proprio:
            if self.proprio_stats is None:
                raise ValueError(
                    f"use_proprio is set but the statistics of {self.unnorm_key!r} have no proprio"
                )
            raw = np.stack([np.asarray(obs["proprio"], dtype=np.float64) for obs in observations])
            proprio = torch.from_numpy(normalize(raw, self.proprio_stats).astype(np.float32))
        return PolicyInputs(
            input_ids, attention_mask, self.images_from_jpegs(jpegs), proprio, jpegs, prompt_ids
        )

    def action_logits(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """A batch (see `log_prob`) -> float32 action logits [N, A, 256]."""
        device = self.device
        mask = batch["attention_mask"].to(device)
        length = int(mask.sum(dim=1).max())  # drop all-pad columns
        if "pixel_values" in batch:
            pixels = batch["pixel_values"].to(device)
        else:
            pixels = self.processor.pixel_values(batch["images"].to(device))
        proprio = batch.get("proprio")
        with self._autocast():
            logits = self.model(
                batch["input_ids"][:, :length].to(device),
                mask[:, :length],
                pixels,
                proprio.to(device) if proprio is not None else None,
            )
        return logits.float()

    def decode_actions(self, action_tokens: torch.Tensor) -> np.ndarray:
        """Action indices [B, A] -> un-normalised actions float32 [B, chunk, dim]."""
        values = self.action_tokenizer.decode(action_tokens.cpu().numpy())
        values = values.reshape(len(values), self.config.num_actions_chunk, self.config.action_dim)
        return unnormalize(values, self.action_stats).astype(np.float32)

    def encode_actions(self, actions: np.ndarray) -> torch.Tensor:
        """Actions [B, chunk, dim] in robot units -> action indices [B, A] (supervised targets)."""
        indices = self.action_tokenizer.encode(normalize(actions, self.action_stats))
        return torch.from_numpy(indices.reshape(len(indices), -1))

    # ------------------------------------------------------------------ rollout and actor
    @torch.no_grad()
    def act(
        self,
        observations: list[dict],
        temperature: float = 1.0,
        greedy: bool = False,
        generator: torch.Generator | None = None,
        row_seeds: Sequence[int] | None = None,
    ) -> ActOutput:
        """One batched forward: sample (or argmax) every action token of every observation.

        Sampling draws from `generator`, or, with `row_seeds`, observation i draws from its own stream
        seeded by `row_seeds[i]`: its tokens then do not depend on which other observations share the
        batch (rollouts stay reproducible whatever the simulators' timing or the batch size).
        """
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if row_seeds is not None and len(row_seeds) != len(observations):
            raise ValueError(f"row_seeds has {len(row_seeds)} entries for {len(observations)} observations")
        inputs = self.prepare(observations)
        logits = self.action_logits(inputs.batch())  # [B, A, 256]
        log_probs = torch.log_softmax(logits / temperature, dim=-1)
        if greedy:
            tokens = logits.argmax(dim=-1)
        else:
            probs = log_probs.exp().cpu()
            if row_seeds is None:
                flat = probs.reshape(-1, probs.shape[-1])
                tokens = torch.multinomial(flat, 1, generator=generator).reshape(logits.shape[:2])
            else:
                tokens = torch.stack(
                    [
                        torch.multinomial(row, 1, generator=torch.Generator().manual_seed(int(seed)))[:, 0]
                        for row, seed in zip(probs, row_seeds)
                    ]
                )
            tokens = tokens.to(logits.device)
        chosen = log_probs.gather(-1, tokens[..., None])[..., 0]
        return ActOutput(
            tokens.cpu(), chosen.cpu(), self.decode_actions(tokens), inputs.jpegs, inputs.proprio, inputs
        )

    def step_batch(
        self,
        jpegs: Sequence[Sequence[bytes]],
        instructions: Sequence[str],
        proprio: torch.Tensor | None,
        action_tokens: torch.Tensor | None,
        cache: Any = None,
    ) -> dict[str, torch.Tensor]:
        """A `log_prob` batch of stored decision steps: images decoded from their JPEG record (the
        exact pixels the rollout's forward saw; through `cache` when given), prompts re-tokenised."""
        decode = self.processor.decode_image
        if cache is not None:
            images = torch.from_numpy(cache.stack(jpegs, decode))
        else:
            images = torch.from_numpy(np.stack([[decode(j) for j in row] for row in jpegs]))
        input_ids, attention_mask = self.processor.tokenize([str(t) for t in instructions])
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": self.processor.pixel_values(images),  # [n, 6 n_img, S, S]
        }
        if proprio is not None:
            batch["proprio"] = proprio
        if action_tokens is not None:
            batch["action_tokens"] = action_tokens
        return batch

    def idle_batch(self) -> dict[str, torch.Tensor]:
        size, n_img = self.processor.image_size, self.config.num_images_in_input
        blank = torch.zeros(1, n_img, size, size, 3, dtype=torch.uint8)
        input_ids, attention_mask = self.processor.tokenize(["idle"])
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "pixel_values": self.processor.pixel_values(blank),
            "action_tokens": torch.zeros(1, self.tokens_per_step, dtype=torch.long),
        }
        if self.config.use_proprio:
            batch["proprio"] = torch.zeros(1, self.config.proprio_dim)
        return batch

    def log_prob(
        self, batch: Mapping[str, torch.Tensor], temperature: float = 1.0, chunk_size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropies [N, A] of `batch["action_tokens"]` at `temperature`.

        batch: input_ids [N, L], attention_mask [N, L], pixel_values [N, 6 n_img, S, S] float or
        images [N, (n_img,) S, S, 3] uint8, optional proprio [N, p], action_tokens [N, A] (0..255).
        `chunk_size` runs the forward on slices of at most that many rows to bound activation memory
        (under no_grad; with grad, the slices' graphs are all kept until backward).
        """
        n = batch["input_ids"].shape[0]
        step = chunk_size or n
        log_probs, entropies = [], []
        for start in range(0, n, step):
            part = {k: v[start : start + step] for k, v in batch.items()}
            logits = self.action_logits(part)  # [n, A, 256]
            lp, ent = token_log_probs(logits, part["action_tokens"].to(logits.device), temperature)
            log_probs.append(lp)
            entropies.append(ent)
        return torch.cat(log_probs), torch.cat(entropies)

    # ------------------------------------------------------------------ training switches
    def gradient_checkpointing_enable(self) -> None:
        self.model.gradient_checkpointing_enable()

    def gradient_checkpointing_disable(self) -> None:
        self.model.gradient_checkpointing_disable()

    def enable_lora(
        self, rank: int, alpha: float, target_modules: list[str] | None = None, dropout: float = 0.0
    ) -> None:
        """Add LoRA adapters (peft) and freeze everything else; see `lora.add_lora`."""
        lora.add_lora(self.model, rank, alpha, target_modules, dropout)

    def save_pretrained(self, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        """Write the checkpoint in the released layout: config, safetensors (LoRA deltas merged into the
        weights), processor and tokenizer files, dataset statistics. `state_dict` (full, with peft
        key names when LoRA is on) replaces the module's own, e.g. the gathered weights of a sharded
        model."""
        from verl.utils.checkpoint import atomic_write_json
        from verl.utils.lora import merge_lora_state

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = lora.merged_state_dict(self.model) if state_dict is None else state_dict
        if any(".lora_A." in k for k in state):
            state = merge_lora_state(state, self._lora_scale())
        self.model.save_pretrained(path, state_dict=state)
        self.processor.save_pretrained(path)
        atomic_write_json(path / DATASET_STATISTICS_NAME, self.statistics)

    def _lora_scale(self) -> float:
        """alpha / rank of the model's LoRA adapters."""
        for module in self.model.modules():
            if hasattr(module, "scaling") and isinstance(module.scaling, dict) and module.scaling:
                return float(next(iter(module.scaling.values())))
        raise ValueError("state dict has LoRA weights but the model has no LoRA adapters")
