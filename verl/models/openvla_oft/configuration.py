"""Configuration of OpenVLA-OFT (token-head variant).

`OpenVLAOFTConfig` reads and writes the `config.json` published with the OpenVLA-OFT and
SimpleVLA-RL checkpoints (model_type "openvla"). Keys this port does not use (`auto_map`,
`architectures`, ...) are kept in `extra` and written back unchanged.

The released files do not say how long an action chunk is or how many dimensions an action has
(the original code read them from a process-wide platform variable). Here they are config fields,
`num_actions_chunk` and `action_dim`, filled from the checkpoint when we wrote it, or passed to
`from_pretrained` for a released checkpoint (LIBERO: 8 x 7, RoboTwin: 25 x 14).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "config.json"

# Llama-2 token ids the model relies on.
BOS_TOKEN_ID = 1
STOP_TOKEN_ID = 2  # "</s>", appended after the action slots
PROMPT_END_TOKEN_ID = 29871  # "▁": the prompt always ends with it (training saw "Out: " + actions)

DINOV2_ID = "vit_large_patch14_reg4_dinov2.lvd142m"
SIGLIP_ID = "vit_so400m_patch14_siglip_224"

NORMALIZATION_TYPES = ("bounds_q99", "bounds")
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flash_attention_2")


def llama2_7b_text_config() -> dict[str, Any]:
    """The `text_config` of the released checkpoints (Llama-2-7b with the vocabulary padded to 32064)."""
    return {
        "model_type": "llama",
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "max_position_embeddings": 4096,
        "vocab_size": 32064,
        "pad_token_id": 32000,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
        "attention_bias": False,
        "mlp_bias": False,
    }


@dataclass
class OpenVLAOFTConfig:
    """Every field of the published config.json this port reads, plus the fields it adds.

    Published fields keep their names and meaning; see the module docstring for the added ones.
    """

    model_type: str = "openvla"
    vision_backbone_id: str = "dinosiglip-vit-so-224px"
    llm_backbone_id: str = "llama2-7b-pure"
    arch_specifier: str = "no-align+fused-gelu-mlp"
    use_fused_vision_backbone: bool = True
    image_resize_strategy: str = "resize-naive"
    # Input resolution of each tower (both towers see the same image).
    image_sizes: list[int] = field(default_factory=lambda: [224, 224])
    # Index 0 is the DINOv2 tower (`featurizer`), index 1 the SigLIP tower (`fused_featurizer`).
    timm_model_ids: list[str] = field(default_factory=lambda: [DINOV2_ID, SIGLIP_ID])
    # Activation overrides per tower; None keeps timm's default (exact-erf GELU for both).
    timm_override_act_layers: list[str | None] = field(default_factory=lambda: [None, None])
    llm_max_length: int = 2048
    pad_token_id: int = 32000
    # The LLM vocabulary (32000 Llama ids + <PAD>) is padded to a multiple of this.
    pad_to_multiple_of: int = 64
    n_action_bins: int = 256
    # Statistics stored in config.json; `dataset_statistics.json` replaces them when present.
    norm_stats: dict[str, Any] | None = None
    text_config: dict[str, Any] = field(default_factory=llama2_7b_text_config)
    torch_dtype: str = "bfloat16"

    # ---- fields added by this port ----
    # Actions per chunk predicted by one forward (LIBERO 8, RoboTwin 25); None = not known yet.
    num_actions_chunk: int | None = None
    # Dimensions per action (LIBERO 7, RoboTwin 14); None = read from dataset_statistics.json.
    action_dim: int | None = None
    # Append one projected proprio token after the image patches.
    use_proprio: bool = False
    proprio_dim: int = 8
    # Images per observation (primary, then wrist); 6 channels each in pixel_values.
    num_images_in_input: int = 1
    # How normalised actions map back to the robot's range ("bounds_q99": q01/q99; "bounds": min/max).
    normalization_type: str = "bounds_q99"
    # Extra timm kwargs per tower (embed_dim, depth, ...) used by the tiny preset; None for released models.
    timm_overrides: list[dict[str, Any]] | None = None
    # LLM attention kernel; all are fully bidirectional with a key-padding mask.
    attn_implementation: str = "sdpa"
    # Keys of a published config.json this port does not use, written back unchanged.
    extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- derived sizes
    @property
    def image_size(self) -> int:
        return int(self.image_sizes[0])

    @property
    def llm_vocab_size(self) -> int:
        """Real vocabulary (32000): the padded embedding size minus `pad_to_multiple_of`."""
        return int(self.text_config["vocab_size"]) - self.pad_to_multiple_of

    @property
    def action_token_begin(self) -> int:
        """Vocabulary id of action index 0 (31744); the 256 action ids are the last of the real vocabulary."""
        return self.llm_vocab_size - self.n_action_bins

    @property
    def num_action_tokens(self) -> int:
        """Action tokens per forward: chunk length x action dimension (LIBERO 56, RoboTwin 350)."""
        if self.num_actions_chunk is None or self.action_dim is None:
            raise ValueError(
                "num_actions_chunk and action_dim must be set (e.g. LIBERO 8 and 7, RoboTwin 25 and 14); "
                f"got num_actions_chunk={self.num_actions_chunk}, action_dim={self.action_dim}"
            )
        return self.num_actions_chunk * self.action_dim

    def validate(self) -> None:
        """Raise ValueError naming the first invalid field and its allowed values."""
        if self.model_type != "openvla":
            raise ValueError(f"model_type must be 'openvla', got {self.model_type!r}")
        if not self.use_fused_vision_backbone or len(self.timm_model_ids) != 2:
            raise ValueError(
                "use_fused_vision_backbone must be true with two timm_model_ids (DINOv2, SigLIP); "
                f"got {self.use_fused_vision_backbone} and {self.timm_model_ids}"
            )
        if self.normalization_type not in NORMALIZATION_TYPES:
            raise ValueError(
                f"normalization_type must be one of {NORMALIZATION_TYPES}, got {self.normalization_type!r}"
            )
        if self.attn_implementation not in ATTN_IMPLEMENTATIONS:
            raise ValueError(
                f"attn_implementation must be one of {ATTN_IMPLEMENTATIONS}, got {self.attn_implementation!r}"
            )
        if self.num_images_in_input < 1:
            raise ValueError(f"num_images_in_input must be >= 1, got {self.num_images_in_input}")
        for name in ("num_actions_chunk", "action_dim"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be a positive integer or null, got {value}")
        if self.action_token_begin < 0:
            raise ValueError(f"n_action_bins={self.n_action_bins} exceeds the vocabulary")

    # ---------------------------------------------------------------- (de)serialisation
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpenVLAOFTConfig:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: copy.deepcopy(v) for k, v in data.items() if k in names}
        extra = {k: copy.deepcopy(v) for k, v in data.items() if k not in names}
        extra.update(copy.deepcopy(data.get("extra", {})))
        config = cls(**known, extra=extra)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        extra = data.pop("extra")
        return {**extra, **data}

    @classmethod
    def from_pretrained(cls, path: str | Path, **overrides: Any) -> OpenVLAOFTConfig:
        """Read `<path>/config.json`; `overrides` set fields the file lacks (e.g. num_actions_chunk)."""
        with open(Path(path) / CONFIG_NAME) as f:
            data = json.load(f)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        with open(Path(path) / CONFIG_NAME, "w") as f:
            json.dump(self.to_dict(), f, indent=2)


def openvla_7b(num_actions_chunk: int = 8, action_dim: int = 7) -> OpenVLAOFTConfig:
    """The released 7B architecture (defaults: LIBERO chunking)."""
    return OpenVLAOFTConfig(num_actions_chunk=num_actions_chunk, action_dim=action_dim)


def tiny(
    image_size: int = 112,
    num_actions_chunk: int = 8,
    action_dim: int = 7,
    use_proprio: bool = False,
    num_images_in_input: int = 1,
    vision_dim: int = 32,
    llm_dim: int = 64,
) -> OpenVLAOFTConfig:
    """The same architecture at toy sizes, fast enough for CPU tests and CPU RL.

    Both towers are the same timm classes as the released ids (DINOv2 with 4 registers and
    LayerScale, SigLIP without class token), patch 14; the LLM is a 2-layer Llama that keeps the
    32064-row vocabulary so the real token ids apply. Images default to 112 px (64 patches per
    image): on 2 CPU cores a batch of 32 runs about 6x faster than at 224 px (256 patches), and
    the image pipeline is the same, with the target size read from preprocessor_config.json.
    `vision_dim` (ViT width, 2 heads per 32) and `llm_dim` (Llama width, 4 heads, MLP twice as wide)
    scale the towers and the LLM; the defaults are the smallest sizes the tests use.
    """
    if vision_dim <= 0 or vision_dim % 32 or llm_dim <= 0 or llm_dim % 16:
        raise ValueError(
            f"vision_dim must be a positive multiple of 32 and llm_dim of 16, got {vision_dim}, {llm_dim}"
        )
    vit = {"embed_dim": vision_dim, "depth": 3, "num_heads": vision_dim // 16}
    text_config = llama2_7b_text_config()
    text_config.update(
        hidden_size=llm_dim,
        intermediate_size=2 * llm_dim,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
    )
    return OpenVLAOFTConfig(
        image_sizes=[image_size, image_size],
        timm_overrides=[dict(vit), dict(vit, mlp_ratio=3.7362)],
        text_config=text_config,
        llm_max_length=1024,
        torch_dtype="float32",
        num_actions_chunk=num_actions_chunk,
        action_dim=action_dim,
        use_proprio=use_proprio,
        num_images_in_input=num_images_in_input,
    )
