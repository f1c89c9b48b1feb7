"""A tiny random OpenVLA-OFT checkpoint in exactly the released layout.

Used by the CPU tests, the benchmarks and CPU RL runs (`scripts/make_tiny_checkpoint.py`). It
holds config.json, model.safetensors, dataset_statistics.json, preprocessor_config.json,
processor_config.json, generation_config.json and the tokenizer files.

The tokenizer is a small Unigram model built with `tokenizers` that keeps Llama-2's ids where the
model depends on them: <unk>=0, <s>=1, </s>=2, byte pieces <0x00>..<0xFF>=3..258 (so "\\n"=13),
"▁"=29871, ":"=29901, the 256 action ids 31744..31999, and <PAD>=32000 added on top. A few
letters and prompt words fill other ids; every other id up to 31999 is an unused placeholder.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch

from verl.models.openvla_oft.configuration import OpenVLAOFTConfig, tiny
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
from verl.models.openvla_oft.processing import PREPROCESSOR_CONFIG_NAME

LLAMA_VOCAB = 32000
SPACE_PIECE_ID = 29871
COLON_ID = 29901
_WORDS = (
    "In What action should the robot take to Out put pick up place open close turn on off in of and "
    "the top bottom middle front back left right black white red yellow bowl plate drawer cabinet "
    "stove basket box mug cup book caddy table it both"
).split()
# DINOv2 ImageNet statistics as stored (bf16-rounded) in the released preprocessor_config.json
_DINO_MEAN = [0.484375, 0.455078125, 0.40625]
_DINO_STD = [0.228515625, 0.2236328125, 0.224609375]


def build_tokenizer() -> Any:
    """A `tokenizers.Tokenizer` with the Llama-2 special ids (see the module docstring)."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, processors
    from tokenizers.models import Unigram

    pieces: dict[int, tuple[str, float]] = {0: ("<unk>", 0.0), 1: ("<s>", 0.0), 2: ("</s>", 0.0)}
    pieces.update({3 + b: (f"<0x{b:02X}>", 0.0) for b in range(256)})
    pieces[SPACE_PIECE_ID] = ("▁", -4.0)
    pieces[COLON_ID] = (":", -4.0)
    chars = [c for c in string.ascii_letters + string.digits + string.punctuation if c != ":"]
    pieces.update({300 + i: (c, -5.0) for i, c in enumerate(chars)})
    pieces.update({1000 + i: (f"▁{w}", -2.0) for i, w in enumerate(dict.fromkeys(_WORDS))})
    pieces[1999] = ("Out", -2.0)  # the prompt has "\nOut:" (no space before Out)
    vocab = [pieces.get(i, (f"<unused{i}>", -100.0)) for i in range(LLAMA_VOCAB)]

    tokenizer = Tokenizer(Unigram(vocab, unk_id=0, byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens(
        [AddedToken(t, special=True, normalized=False) for t in ("<unk>", "<s>", "</s>")]
    )
    tokenizer.add_special_tokens([AddedToken("<PAD>", special=True, normalized=False)])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return tokenizer


def synthetic_statistics(action_dim: int, proprio_dim: int) -> dict[str, Any]:
    """Plausible, made-up dataset statistics: per-dimension bounds that differ, gripper unnormalised."""

    def block(dim: int, with_mask: bool) -> dict[str, Any]:
        q01 = [round(-0.5 - 0.05 * i, 4) for i in range(dim)]
        q99 = [round(0.6 + 0.05 * i, 4) for i in range(dim)]
        stats = {
            "mean": [round(0.5 * (lo + hi), 4) for lo, hi in zip(q01, q99)],
            "std": [0.3] * dim,
            "min": [round(v - 0.2, 4) for v in q01],
            "max": [round(v + 0.2, 4) for v in q99],
            "q01": q01,
            "q99": q99,
        }
        if with_mask:
            stats["mask"] = [True] * (dim - 1) + [False]
        return stats

    return {
        "action": block(action_dim, with_mask=True),
        "proprio": block(proprio_dim, with_mask=False),
        "num_transitions": 1000,
        "num_trajectories": 10,
    }


def preprocessor_config(image_size: int) -> dict[str, Any]:
    """preprocessor_config.json with the released layout and normalisation statistics."""
    means, stds = [_DINO_MEAN, [0.5] * 3], [_DINO_STD, [0.5] * 3]
    return {
        "image_processor_type": "PrismaticImageProcessor",
        "processor_class": "PrismaticProcessor",
        "use_fused_vision_backbone": True,
        "image_resize_strategy": "resize-naive",
        "input_sizes": [[3, image_size, image_size]] * 2,
        "interpolations": ["bicubic", "bicubic"],
        "means": means,
        "stds": stds,
        "tvf_resize_params": [
            {"size": [image_size, image_size], "interpolation": 3, "max_size": None, "antialias": True}
        ]
        * 2,
        "tvf_crop_params": [{"output_size": [image_size, image_size]}] * 2,
        "tvf_normalize_params": [{"mean": m, "std": s, "inplace": False} for m, s in zip(means, stds)],
        "tvf_do_letterbox": False,
        "tvf_letterbox_fill": None,
    }


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2)


def write_tiny_checkpoint(
    path: str | Path,
    config: OpenVLAOFTConfig | None = None,
    seed: int = 0,
    unnorm_key: str = "libero_spatial_no_noops",
) -> Path:
    """Write a random checkpoint of `config` (default: `tiny()`) to `path`; returns the path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = config or tiny()
    statistics = {unnorm_key: synthetic_statistics(config.action_dim or 7, config.proprio_dim)}
    config.norm_stats = statistics
    torch.manual_seed(seed)
    model = OpenVLAOFTForActionPrediction.from_config(config)
    model.save_pretrained(path)

    _write_json(path / "dataset_statistics.json", statistics)
    _write_json(path / PREPROCESSOR_CONFIG_NAME, preprocessor_config(config.image_size))
    _write_json(path / "processor_config.json", {"processor_class": "PrismaticProcessor"})
    _write_json(
        path / "generation_config.json", {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 32000}
    )
    build_tokenizer().save(str(path / "tokenizer.json"))
    _write_json(
        path / "tokenizer_config.json",
        {
            "tokenizer_class": "LlamaTokenizer",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<PAD>",
            "add_bos_token": True,
            "add_eos_token": False,
            "model_max_length": config.llm_max_length,
            "padding_side": "right",
        },
    )
    _write_json(
        path / "special_tokens_map.json",
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<PAD>"},
    )
    _write_json(path / "added_tokens.json", {"<PAD>": 32000})
    return path
