"""The released 7B architecture on the meta device: parameter count, key names and shapes
(expected values written from the OpenVLA-OFT facts sheet, section 2), and config.json parsing."""

from __future__ import annotations

import pytest
import torch

from verl.models.openvla_oft.configuration import OpenVLAOFTConfig, openvla_7b
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction

OPENVLA_PARAMS = 7_541_237_184  # OpenVLA-7B (DINOv2-L + SigLIP-So400m + projector + Llama-2-7B)


def _vit_block(prefix: str, dim: int, hidden: int, layer_scale: bool) -> dict[str, tuple]:
    keys = {
        "norm1.weight": (dim,), "norm1.bias": (dim,),
        "attn.qkv.weight": (3 * dim, dim), "attn.qkv.bias": (3 * dim,),
        "attn.proj.weight": (dim, dim), "attn.proj.bias": (dim,),
        "norm2.weight": (dim,), "norm2.bias": (dim,),
        "mlp.fc1.weight": (hidden, dim), "mlp.fc1.bias": (hidden,),
        "mlp.fc2.weight": (dim, hidden), "mlp.fc2.bias": (dim,),
    }  # fmt: skip
    if layer_scale:
        keys.update({"ls1.scale_factor": (dim,), "ls2.scale_factor": (dim,)})
    return {f"{prefix}.{k}": v for k, v in keys.items()}


def expected_7b_state() -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    dino = "vision_backbone.featurizer"
    out.update(
        {
            f"{dino}.cls_token": (1, 1, 1024),
            f"{dino}.reg_token": (1, 4, 1024),
            f"{dino}.pos_embed": (1, 256, 1024),
        }
    )
    out.update(
        {f"{dino}.patch_embed.proj.weight": (1024, 3, 14, 14), f"{dino}.patch_embed.proj.bias": (1024,)}
    )
    for i in range(24):
        out.update(_vit_block(f"{dino}.blocks.{i}", 1024, 4096, layer_scale=True))
    out.update({f"{dino}.norm.weight": (1024,), f"{dino}.norm.bias": (1024,)})

    sig = "vision_backbone.fused_featurizer"
    out.update({f"{sig}.pos_embed": (1, 256, 1152), f"{sig}.patch_embed.proj.weight": (1152, 3, 14, 14)})
    out[f"{sig}.patch_embed.proj.bias"] = (1152,)
    for i in range(27):
        out.update(_vit_block(f"{sig}.blocks.{i}", 1152, 4304, layer_scale=False))
    out.update({f"{sig}.norm.weight": (1152,), f"{sig}.norm.bias": (1152,)})
    pool = f"{sig}.attn_pool"
    out.update({
        f"{pool}.latent": (1, 1, 1152),
        f"{pool}.q.weight": (1152, 1152), f"{pool}.q.bias": (1152,),
        f"{pool}.kv.weight": (2304, 1152), f"{pool}.kv.bias": (2304,),
        f"{pool}.proj.weight": (1152, 1152), f"{pool}.proj.bias": (1152,),
        f"{pool}.norm.weight": (1152,), f"{pool}.norm.bias": (1152,),
        f"{pool}.mlp.fc1.weight": (4304, 1152), f"{pool}.mlp.fc1.bias": (4304,),
        f"{pool}.mlp.fc2.weight": (1152, 4304), f"{pool}.mlp.fc2.bias": (1152,),
    })  # fmt: skip

    out.update({
        "projector.fc1.weight": (8704, 2176), "projector.fc1.bias": (8704,),
        "projector.fc2.weight": (4096, 8704), "projector.fc2.bias": (4096,),
        "projector.fc3.weight": (4096, 4096), "projector.fc3.bias": (4096,),
    })  # fmt: skip

    llm = "language_model.model"
    out[f"{llm}.embed_tokens.weight"] = (32064, 4096)
    for i in range(32):
        layer = f"{llm}.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out[f"{layer}.self_attn.{proj}.weight"] = (4096, 4096)
        out.update({
            f"{layer}.mlp.gate_proj.weight": (11008, 4096), f"{layer}.mlp.up_proj.weight": (11008, 4096),
            f"{layer}.mlp.down_proj.weight": (4096, 11008),
            f"{layer}.input_layernorm.weight": (4096,), f"{layer}.post_attention_layernorm.weight": (4096,),
        })  # fmt: skip
    out[f"{llm}.norm.weight"] = (4096,)
    out["language_model.lm_head.weight"] = (32064, 4096)
    return out


@pytest.fixture(scope="module")
def meta_7b() -> OpenVLAOFTForActionPrediction:
    with torch.device("meta"):
        return OpenVLAOFTForActionPrediction(openvla_7b())


def test_7b_keys_and_shapes(meta_7b):
    state = {k: tuple(v.shape) for k, v in meta_7b.state_dict().items()}
    expected = expected_7b_state()
    assert sorted(set(state) - set(expected)) == []
    assert sorted(set(expected) - set(state)) == []
    assert {k: v for k, v in state.items() if expected[k] != v} == {}


def test_7b_parameter_count(meta_7b):
    assert sum(p.numel() for p in meta_7b.parameters()) == OPENVLA_PARAMS
    assert sum(p.numel() for p in meta_7b.parameters()) == sum(
        int(torch.Size(s).numel()) for s in expected_7b_state().values()
    )


def test_7b_derived_sizes(meta_7b):
    config = meta_7b.config
    assert config.llm_vocab_size == 32000 and config.action_token_begin == 31744
    assert config.num_action_tokens == 56 and meta_7b.num_prefix_tokens() == 256
    assert meta_7b.vision_backbone.embed_dim == 2176
    attention = [m for m in meta_7b.language_model.modules() if hasattr(m, "is_causal")]
    assert attention and not any(m.is_causal for m in attention)
    robotwin = openvla_7b(num_actions_chunk=25, action_dim=14)
    assert robotwin.num_action_tokens == 350


def test_published_config_round_trip():
    """A config.json as published (transformers 4.40 dump, remote-code keys) parses and is written back."""
    published = openvla_7b().to_dict()
    for key in ("num_actions_chunk", "action_dim", "use_proprio", "proprio_dim", "num_images_in_input",
                "normalization_type", "timm_overrides", "attn_implementation"):  # fmt: skip
        published.pop(key)
    published.update(
        architectures=["OpenVLAForActionPrediction"],
        auto_map={"AutoConfig": "configuration_prismatic.OpenVLAConfig"},
        hf_llm_id="meta-llama/Llama-2-7b-hf",
        transformers_version="4.40.1",
        norm_stats={"libero_spatial_no_noops": {"action": {"q01": [0.0] * 7}}},
    )
    config = OpenVLAOFTConfig.from_dict(published)
    assert config.num_actions_chunk is None and config.extra["hf_llm_id"] == "meta-llama/Llama-2-7b-hf"
    assert config.timm_model_ids[0].startswith("vit_large_patch14_reg4_dinov2")
    written = config.to_dict()
    assert all(written[k] == v for k, v in published.items())
    with pytest.raises(ValueError, match="model_type"):
        OpenVLAOFTConfig.from_dict(dict(published, model_type="llama"))
