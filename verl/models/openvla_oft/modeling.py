"""OpenVLA-OFT with a discrete action head, in plain PyTorch + timm + transformers' Llama.

One forward predicts a whole action chunk: the prompt is followed by `A = chunk * action_dim`
action slots whose embeddings are zero and by the stop token, and the LLM attends over the whole
sequence in both directions (the checkpoints were trained that way). Action token k is read from
the position just before slot k. Only the 256 action rows of the LM head are applied.

Sequence of row b (n_b = prompt length including BOS and the final 29871, P = image patches):
    [BOS] [P patch tokens (+1 proprio token)] [prompt[1:n_b]] [A zero slots] [</s>] [pad ...]
Parameter names equal the released checkpoints' keys (`vision_backbone.featurizer.*`, ...).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from verl.models.openvla_oft.checkpoint_io import load_state_dict_into, save_state_dict
from verl.models.openvla_oft.configuration import STOP_TOKEN_ID, OpenVLAOFTConfig


class LayerScale(nn.Module):
    """timm's LayerScale with the parameter named `scale_factor`, as in the released checkpoints."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale_factor = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


def _build_tower(model_id: str, image_size: int, act_layer: str | None, overrides: dict | None) -> nn.Module:
    """A timm VisionTransformer for `model_id` (random init; weights come from the checkpoint)."""
    import timm

    kwargs = {"pretrained": False, "num_classes": 0, "img_size": image_size, **(overrides or {})}
    if act_layer is not None:
        kwargs["act_layer"] = act_layer
    vit = timm.create_model(model_id, **kwargs)
    for block in vit.blocks:
        for name in ("ls1", "ls2"):
            scale = getattr(block, name)
            if hasattr(scale, "gamma"):
                renamed = LayerScale(scale.gamma.shape[0]).to(scale.gamma.device, scale.gamma.dtype)
                with torch.no_grad():
                    renamed.scale_factor.copy_(scale.gamma)
                setattr(block, name, renamed)
    return vit


class VisionBackbone(nn.Module):
    """DINOv2 (`featurizer`) and SigLIP (`fused_featurizer`) towers, features concatenated per patch."""

    def __init__(self, config: OpenVLAOFTConfig):
        super().__init__()
        overrides = config.timm_overrides or [None, None]
        acts = config.timm_override_act_layers
        self.featurizer = _build_tower(config.timm_model_ids[0], config.image_size, acts[0], overrides[0])
        self.fused_featurizer = _build_tower(
            config.timm_model_ids[1], config.image_size, acts[1], overrides[1]
        )
        self.gradient_checkpointing = False

    @property
    def embed_dim(self) -> int:
        return self.featurizer.embed_dim + self.fused_featurizer.embed_dim

    @property
    def num_patches(self) -> int:
        return self.featurizer.patch_embed.num_patches

    def _features(self, vit: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] -> [B, P, D]: output of block depth-2, no final norm, prefix tokens dropped."""
        x = vit.norm_pre(vit.patch_drop(vit._pos_embed(vit.patch_embed(pixels))))
        for block in vit.blocks[: len(vit.blocks) - 1]:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x[:, vit.num_prefix_tokens :]

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[N, 6 * n_img, S, S] -> [N, n_img * P, D_dino + D_siglip] (images in order along tokens)."""
        n, c, s, _ = pixel_values.shape
        images = pixel_values.reshape(n * (c // 6), 6, s, s)
        dino = self._features(self.featurizer, images[:, :3])
        siglip = self._features(self.fused_featurizer, images[:, 3:])
        fused = torch.cat([dino, siglip], dim=-1)  # [N * n_img, P, D]
        return fused.reshape(n, -1, fused.shape[-1])


class FusedProjector(nn.Module):
    """Vision features -> LLM width: Linear(D, 4D), GELU, Linear(4D, H), GELU, Linear(H, H)."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim)
        self.fc3 = nn.Linear(llm_dim, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(F.gelu(self.fc2(F.gelu(self.fc1(x)))))


class ProprioProjector(nn.Module):
    """Normalised proprio [N, p] -> one LLM token [N, H]: Linear, GELU, Linear."""

    def __init__(self, proprio_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(proprio_dim, llm_dim)
        self.fc2 = nn.Linear(llm_dim, llm_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def _build_llm(config: OpenVLAOFTConfig, causal: bool = False) -> nn.Module:
    """Llama-2 of `config.text_config`: bidirectional (OFT) unless `causal` (the original OpenVLA)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    text_config = LlamaConfig(**config.text_config)
    text_config._attn_implementation = config.attn_implementation
    llm = LlamaForCausalLM(text_config)
    if not causal:
        for module in llm.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False  # bidirectional, also on kernels that take no mask
    return llm


class OpenVLAOFTForActionPrediction(nn.Module):
    """Vision towers -> projector -> (proprio) -> bidirectional Llama -> 256-way action logits."""

    # The original OpenVLA (verl.models.openvla) reuses this module tree with a causal Llama.
    causal_llm = False

    def __init__(self, config: OpenVLAOFTConfig):
        super().__init__()
        config.validate()
        self.config = config
        self.vision_backbone = VisionBackbone(config)
        llm_dim = int(config.text_config["hidden_size"])
        self.projector = FusedProjector(self.vision_backbone.embed_dim, llm_dim)
        self.proprio_projector = ProprioProjector(config.proprio_dim, llm_dim) if config.use_proprio else None
        self.language_model = _build_llm(config, causal=self.causal_llm)

    # ------------------------------------------------------------------ forward
    def num_prefix_tokens(self) -> int:
        """Tokens between BOS and the prompt: image patches (+1 proprio token)."""
        patches = self.vision_backbone.num_patches * self.config.num_images_in_input
        return patches + int(self.config.use_proprio)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        pixel_values: torch.Tensor,
        proprio: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Action logits of one chunk.

        input_ids [N, L] right-padded prompts (BOS ... 29871), attention_mask [N, L] (1 = token),
        pixel_values [N, 6 * n_img, S, S] normalised, proprio [N, p] normalised (when use_proprio)
        -> [N, A, 256] logits over action indices (vocabulary id = action_token_begin + index).
        """
        if pixel_values.shape[1] != 6 * self.config.num_images_in_input:
            raise ValueError(
                f"pixel_values has {pixel_values.shape[1]} channels; num_images_in_input="
                f"{self.config.num_images_in_input} needs {6 * self.config.num_images_in_input}"
            )
        if self.config.use_proprio and proprio is None:
            raise ValueError("proprio is required when config.use_proprio is true")
        llm = self.language_model
        param = self.projector.fc1.weight
        prefix = self.projector(self.vision_backbone(pixel_values.to(param.dtype)))  # [N, P, H]
        if self.config.use_proprio:
            token = self.proprio_projector(proprio.to(param.dtype))[:, None]  # [N, 1, H]
            prefix = torch.cat([prefix, token], dim=1)

        embeds, key_mask, action_positions = self._sequence(input_ids, attention_mask, prefix)
        n, t, _ = embeds.shape
        position_ids = torch.arange(t, device=embeds.device).expand(n, t)
        if self.config.attn_implementation == "flash_attention_2":
            mask = key_mask.long()  # 2-D padding mask; the layers are non-causal (is_causal=False)
        elif self.config.attn_implementation == "sdpa":
            mask = key_mask[:, None, None, :].expand(n, 1, t, t)  # bool, True = attend
        else:
            blocked = torch.finfo(embeds.dtype).min
            additive = torch.zeros(key_mask.shape, dtype=embeds.dtype, device=embeds.device)
            mask = additive.masked_fill(~key_mask, blocked)[:, None, None, :].expand(n, 1, t, t)
        hidden = llm.model(
            inputs_embeds=embeds, attention_mask=mask, position_ids=position_ids, use_cache=False
        ).last_hidden_state  # [N, T, H]
        index = action_positions[..., None].expand(-1, -1, hidden.shape[-1])
        action_hidden = hidden.gather(1, index)  # [N, A, H]
        begin = self.config.action_token_begin
        head = llm.lm_head.weight[begin : begin + self.config.n_action_bins]  # [256, H]
        return F.linear(action_hidden, head)

    def _sequence(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, prefix: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings [N, T, H], key mask [N, T] (bool) and action read positions [N, A]."""
        a = self.config.num_action_tokens
        n, length = input_ids.shape
        lengths = attention_mask.long().sum(dim=1, keepdim=True)  # [N, 1] = n_b
        j = torch.arange(length + a + 1, device=input_ids.device)[None]  # [1, L + A + 1]
        is_slot = (j >= lengths) & (j < lengths + a)
        ids = F.pad(input_ids, (0, a + 1), value=self.config.pad_token_id)
        ids = torch.where(is_slot, torch.zeros_like(ids), ids)
        ids = torch.where(j == lengths + a, torch.full_like(ids, STOP_TOKEN_ID), ids)
        ids = torch.where(j > lengths + a, torch.full_like(ids, self.config.pad_token_id), ids)
        text = self.language_model.model.embed_tokens(ids) * (~is_slot)[..., None].to(prefix.dtype)
        text_mask = j <= lengths + a  # [N, L + A + 1]

        embeds = torch.cat([text[:, :1], prefix, text[:, 1:]], dim=1)
        ones = torch.ones(n, prefix.shape[1], dtype=torch.bool, device=input_ids.device)
        key_mask = torch.cat([text_mask[:, :1], ones, text_mask[:, 1:]], dim=1)
        # action token k is predicted at the position before slot k: prefix + (n_b - 1) + k
        steps = torch.arange(a, device=input_ids.device)[None]
        action_positions = prefix.shape[1] + lengths - 1 + steps
        return embeds, key_mask, action_positions

    @torch.no_grad()
    def scale_action_logits(self, scale: float) -> None:
        """Multiply every action logit by `scale` (the 256 action rows of lm_head; temperature scaling).

        Greedy actions are unchanged; sampling at temperature T then draws what the unscaled model
        draws at T / scale. The other vocabulary rows, which no action depends on, are left as they are.
        """
        if not math.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a finite number > 0, got {scale}")
        llm = self.language_model
        if llm.lm_head.weight.data_ptr() == llm.get_input_embeddings().weight.data_ptr():
            raise ValueError("lm_head is tied to the input embeddings; scaling it would change the prompt")
        begin = self.config.action_token_begin
        llm.lm_head.weight[begin : begin + self.config.n_action_bins] *= scale

    # ------------------------------------------------------------------ training switches
    def gradient_checkpointing_enable(self) -> None:
        self.vision_backbone.gradient_checkpointing = True
        llm = self.language_model
        # transformers >= 5 renamed the switch; older releases only have the gradient_* name
        if hasattr(llm, "activation_checkpointing_enable"):
            llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    def gradient_checkpointing_disable(self) -> None:
        self.vision_backbone.gradient_checkpointing = False
        llm = self.language_model
        disable = getattr(llm, "activation_checkpointing_disable", None) or llm.gradient_checkpointing_disable
        disable()

    # ------------------------------------------------------------------ checkpoints
    @classmethod
    def from_config(
        cls, config: OpenVLAOFTConfig, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
    ) -> OpenVLAOFTForActionPrediction:
        """A randomly initialised model (timm and transformers initialisers)."""
        with torch.device(device):
            return cls(config).to(dtype)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
        **config_overrides,
    ) -> OpenVLAOFTForActionPrediction:
        """Load config.json and the (sharded) safetensors weights of `path`.

        The model is built on the meta device and its parameters are materialised from the files,
        so a 7B checkpoint is read once without a random initialisation.
        """
        config = OpenVLAOFTConfig.from_pretrained(path, **config_overrides)
        with torch.device("meta"):
            model = cls(config)
        model = model.to(dtype)
        load_state_dict_into(model, path, dtype=dtype, device=device)
        model._reset_rotary(device)
        return model

    def _reset_rotary(self, device: str | torch.device) -> None:
        """Recompute the rotary frequencies (a non-persistent buffer, not in the checkpoint)."""
        rotary = self.language_model.model.rotary_emb
        with torch.device(device):
            self.language_model.model.rotary_emb = type(rotary)(config=self.language_model.config)

    def save_pretrained(
        self,
        path: str | Path,
        state_dict: dict[str, torch.Tensor] | None = None,
        max_shard_size: int = 5 << 30,
    ) -> None:
        """Write config.json and safetensors (sharded with an index above `max_shard_size` bytes)."""
        self.config.save_pretrained(path)
        save_state_dict(self.state_dict() if state_dict is None else state_dict, path, max_shard_size)
