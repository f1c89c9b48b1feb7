"""OpenVLA-OFT policy on the tiny checkpoint: loading, act/log_prob, batching, attention pattern."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.models.conftest import make_observations
from verl.models.openvla_oft.checkpoint_io import INDEX_FILE
from verl.models.openvla_oft.configuration import OpenVLAOFTConfig
from verl.models.openvla_oft.modeling import OpenVLAOFTForActionPrediction
from verl.models.openvla_oft.policy import OpenVLAOFTPolicy


@pytest.fixture(scope="module")
def observations():
    return make_observations(5, seed=0)


def test_save_load_gives_identical_logits(tiny_policy, observations, tmp_path):
    batch = tiny_policy.prepare(observations).batch()
    tiny_policy.save_pretrained(tmp_path / "copy")
    names = {p.name for p in (tmp_path / "copy").iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "dataset_statistics.json",
        "preprocessor_config.json",
    } <= names
    assert {
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
    } <= names
    reloaded = OpenVLAOFTPolicy.from_pretrained(tmp_path / "copy")
    assert torch.equal(reloaded.action_logits(batch), tiny_policy.action_logits(batch))


def test_sharded_save_and_load(tiny_policy, observations, tmp_path):
    model = tiny_policy.model
    model.save_pretrained(tmp_path, max_shard_size=2 << 20)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    assert set(index["weight_map"]) == set(model.state_dict())
    loaded = OpenVLAOFTForActionPrediction.from_pretrained(tmp_path)
    batch = tiny_policy.prepare(observations[:2]).batch()
    pixels = tiny_policy.processor.pixel_values(batch["images"])
    with torch.no_grad():
        expected = model(batch["input_ids"], batch["attention_mask"], pixels)
        assert torch.equal(loaded(batch["input_ids"], batch["attention_mask"], pixels), expected)


def test_act_log_probs_equal_log_prob(tiny_policy, observations):
    out = tiny_policy.act(observations, temperature=1.6, generator=torch.Generator().manual_seed(0))
    a = tiny_policy.config.num_action_tokens
    assert out.action_tokens.shape == (5, a) and out.action_tokens.dtype == torch.int64
    assert 0 <= int(out.action_tokens.min()) and int(out.action_tokens.max()) <= 255
    assert out.actions.shape == (5, 8, 7) and out.actions.dtype == np.float32
    log_probs, entropy = tiny_policy.log_prob(
        out.inputs.batch(out.action_tokens), temperature=1.6, chunk_size=2
    )
    torch.testing.assert_close(log_probs, out.log_probs, atol=1e-5, rtol=0)
    assert entropy.shape == (5, a) and (entropy > 0).all() and (entropy <= np.log(256) + 1e-5).all()
    # the lean record rebuilds the same pixels
    assert torch.equal(tiny_policy.images_from_jpegs(out.inputs.jpegs), out.inputs.images)


def test_log_prob_with_pixel_values_and_gradients(tiny_policy, observations):
    inputs = tiny_policy.prepare(observations[:3])
    tokens = torch.randint(
        0, 256, (3, tiny_policy.config.num_action_tokens), generator=torch.Generator().manual_seed(1)
    )
    batch = inputs.batch(tokens)
    from_images, _ = tiny_policy.log_prob(batch, temperature=1.0)
    batch_px = {k: v for k, v in batch.items() if k != "images"}
    batch_px["pixel_values"] = tiny_policy.processor.pixel_values(inputs.images)
    from_pixels, _ = tiny_policy.log_prob(batch_px, temperature=1.0)
    torch.testing.assert_close(from_pixels, from_images, atol=1e-6, rtol=0)
    # hand formula: log_softmax(logits / T) gathered at the tokens
    logits = tiny_policy.action_logits(batch)
    manual = torch.log_softmax(logits / 2.0, -1).gather(-1, tokens[..., None])[..., 0]
    torch.testing.assert_close(tiny_policy.log_prob(batch, temperature=2.0)[0], manual, atol=1e-6, rtol=0)
    from_images.sum().backward()
    grad = tiny_policy.model.language_model.lm_head.weight.grad
    assert grad is not None and grad[31744:32000].abs().sum() > 0 and grad[:31744].abs().sum() == 0
    tiny_policy.model.zero_grad(set_to_none=True)


def test_greedy_is_deterministic(tiny_policy, observations):
    first = tiny_policy.act(observations, temperature=1.0, greedy=True)
    second = tiny_policy.act(observations, temperature=1.0, greedy=True)
    assert torch.equal(first.action_tokens, second.action_tokens)
    assert np.array_equal(first.actions, second.actions)
    logits = tiny_policy.action_logits(first.inputs.batch())
    assert torch.equal(first.action_tokens, logits.argmax(-1))
    sampled = [tiny_policy.act(observations, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(sampled[0].action_tokens, sampled[1].action_tokens)  # seeded sampling repeats


def test_batch_rows_match_single_runs(tiny_policy, observations):
    inputs = tiny_policy.prepare(observations)
    lengths = inputs.attention_mask.sum(1)
    assert len(set(lengths.tolist())) > 1  # prompts of different lengths, right-padded
    batched = tiny_policy.action_logits(inputs.batch())
    greedy = tiny_policy.act(observations, greedy=True).action_tokens
    for row, obs in enumerate(observations):
        alone = tiny_policy.action_logits(tiny_policy.prepare([obs]).batch())
        torch.testing.assert_close(batched[row : row + 1], alone, atol=1e-5, rtol=1e-5)
        assert torch.equal(greedy[row : row + 1], alone.argmax(-1))


def test_row_seeded_sampling_ignores_batch_composition(tiny_policy, observations):
    """With row seeds an observation's sampled tokens depend on its seed, not on its batch-mates."""
    assert len(observations) >= 2
    seeds = [101 + i for i in range(len(observations))]
    together = tiny_policy.act(observations, temperature=1.6, row_seeds=seeds).action_tokens
    for row, obs in enumerate(observations):
        alone = tiny_policy.act([obs], temperature=1.6, row_seeds=[seeds[row]]).action_tokens
        assert torch.equal(together[row], alone[0])
    swapped = tiny_policy.act(observations[::-1], temperature=1.6, row_seeds=seeds[::-1]).action_tokens
    assert torch.equal(swapped.flip(0), together)
    other = tiny_policy.act(observations, temperature=1.6, row_seeds=[s + 7 for s in seeds]).action_tokens
    assert not torch.equal(other, together)  # 56 tokens per row at T=1.6: another seed, other draws
    with pytest.raises(ValueError, match="row_seeds has 1 entries for"):
        tiny_policy.act(observations, row_seeds=[1])


def test_attention_is_bidirectional(tiny_policy, observations):
    """The first action position precedes the slots and the stop token, yet depends on them."""
    model = tiny_policy.model
    batch = tiny_policy.prepare(observations[:1]).batch()
    before = tiny_policy.action_logits(batch)
    embed = model.language_model.model.embed_tokens.weight
    saved = embed[2].detach().clone()
    with torch.no_grad():
        embed[2] += 0.5  # the stop token </s>, the last token of the sequence
    try:
        after = tiny_policy.action_logits(batch)
    finally:
        with torch.no_grad():
            embed[2] = saved
    assert (after[0, 0] - before[0, 0]).abs().max() > 1e-4
    torch.testing.assert_close(tiny_policy.action_logits(batch), before, atol=0, rtol=0)


def test_eager_attention_matches_sdpa(tiny_checkpoint, tiny_policy, observations):
    eager = OpenVLAOFTForActionPrediction.from_pretrained(tiny_checkpoint, attn_implementation="eager")
    batch = tiny_policy.prepare(observations).batch()
    pixels = tiny_policy.processor.pixel_values(batch["images"])
    with torch.no_grad():
        expected = tiny_policy.model(batch["input_ids"], batch["attention_mask"], pixels)
        torch.testing.assert_close(
            eager(batch["input_ids"], batch["attention_mask"], pixels), expected, atol=1e-5, rtol=1e-5
        )


def test_vision_features_are_timm_intermediate_layers(tiny_policy):
    backbone = tiny_policy.model.vision_backbone
    pixels = torch.randn(2, 3, 112, 112)
    for tower in (backbone.featurizer, backbone.fused_featurizer):
        expected = tower.get_intermediate_layers(pixels, n={len(tower.blocks) - 2}, norm=False)[0]
        torch.testing.assert_close(backbone._features(tower, pixels), expected, atol=0, rtol=0)
    assert backbone.featurizer.num_prefix_tokens == 5 and backbone.fused_featurizer.num_prefix_tokens == 0


def test_wrist_image_and_proprio(tiny_proprio_checkpoint):
    policy = OpenVLAOFTPolicy.from_pretrained(tiny_proprio_checkpoint)
    assert policy.model.num_prefix_tokens() == 2 * 64 + 1
    observations = make_observations(3, seed=2, wrist=True)
    out = policy.act(observations, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert out.inputs.images.shape == (3, 2, 112, 112, 3) and out.inputs.proprio.shape == (3, 8)
    assert out.inputs.proprio.abs().max() <= 1.0
    log_probs, _ = policy.log_prob(out.inputs.batch(out.action_tokens), temperature=1.0)
    torch.testing.assert_close(log_probs, out.log_probs, atol=1e-5, rtol=0)
    # both the wrist image and the proprio token reach the logits
    batch = out.inputs.batch()
    base = policy.action_logits(batch)
    wrist_changed = dict(batch, images=batch["images"].clone())
    wrist_changed["images"][:, 1] = 255 - wrist_changed["images"][:, 1]
    assert (policy.action_logits(wrist_changed) - base).abs().max() > 1e-5
    assert (policy.action_logits(dict(batch, proprio=-batch["proprio"])) - base).abs().max() > 1e-5
    with pytest.raises(ValueError, match="num_images_in_input=2 needs 2"):
        policy.prepare(make_observations(1, wrist=False))


def test_gradient_checkpointing_gives_same_gradients(tiny_checkpoint, observations):
    policy = OpenVLAOFTPolicy.from_pretrained(tiny_checkpoint)
    batch = policy.prepare(observations[:2]).batch(
        torch.zeros(2, policy.config.num_action_tokens, dtype=torch.long)
    )
    grads = []
    for checkpointing in (False, True):
        policy.train()
        (policy.gradient_checkpointing_enable if checkpointing else policy.gradient_checkpointing_disable)()
        policy.zero_grad(set_to_none=True)
        policy.log_prob(batch)[0].sum().backward()
        grads.append({n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5)


def test_lora_saves_a_merged_checkpoint(tiny_checkpoint, observations, tmp_path):
    from safetensors.torch import load_file

    policy = OpenVLAOFTPolicy.from_pretrained(tiny_checkpoint)
    batch = policy.prepare(observations[:3]).batch()
    base = policy.action_logits(batch)
    policy.enable_lora(rank=4, alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    trainable = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():
        for name, param in policy.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.2)  # B starts at zero; make the adapters matter
    adapted = policy.action_logits(batch)
    assert (adapted - base).abs().max() > 1e-4
    policy.save_pretrained(tmp_path)
    keys = load_file(str(Path(tmp_path) / "model.safetensors")).keys()
    assert not any("lora" in k or "base_layer" in k for k in keys)
    merged = OpenVLAOFTPolicy.from_pretrained(tmp_path)
    assert not any("lora" in n for n, _ in merged.named_parameters())
    torch.testing.assert_close(merged.action_logits(batch), adapted, atol=1e-5, rtol=1e-5)


def test_config_requires_chunk_and_action_dim(tiny_checkpoint):
    config = OpenVLAOFTConfig.from_pretrained(tiny_checkpoint)
    config.num_actions_chunk = None
    with pytest.raises(ValueError, match="num_actions_chunk"):
        _ = config.num_action_tokens
    with pytest.raises(ValueError, match="normalization_type"):
        OpenVLAOFTConfig.from_dict(dict(config.to_dict(), normalization_type="minmax"))


def test_bind_observations_checks_cameras_and_proprio(tiny_proprio_checkpoint):
    policy = OpenVLAOFTPolicy.from_pretrained(tiny_proprio_checkpoint)
    assert policy.config.num_images_in_input == 2 and policy.config.use_proprio
    with pytest.raises(ValueError, match="takes 2 images.*renders 1"):
        policy.bind_observations(("agentview",), 8)
    with pytest.raises(ValueError, match="8-d proprio.*provides 3"):
        policy.bind_observations(("agentview", "wrist"), 3)
    policy.bind_observations(("front", "hand", "top"), 8)
    assert policy.camera_keys == ["front", "hand"]
    # the bound cameras are read by name, whatever else the observation carries
    obs = make_observations(2, wrist=True, size=112)
    renamed = [
        dict(
            o,
            images={
                "top": o["images"]["agentview"],
                **{"front": o["images"]["agentview"], "hand": o["images"]["wrist"]},
            },
        )
        for o in obs
    ]
    a = policy.prepare(renamed).images
    policy.camera_keys = None
    b = policy.prepare(obs).images
    assert torch.equal(a, b)


def test_lora_all_linear_adapts_every_linear_layer_but_lm_head(tiny_checkpoint):
    from torch import nn

    policy = OpenVLAOFTPolicy.from_pretrained(tiny_checkpoint)
    linear = [n for n, m in policy.model.named_modules() if isinstance(m, nn.Linear)]
    policy.enable_lora(rank=2, alpha=4, target_modules=["all-linear"])
    adapted = {n.rsplit(".lora_A", 1)[0] for n, _ in policy.model.named_parameters() if ".lora_A." in n}
    expected = {n for n in linear if not n.endswith("lm_head")}
    # Vision towers and projector included, as with peft's "all-linear"; only lm_head is left out.
    assert adapted == expected
    assert any("vision" in n for n in adapted) and any("projector" in n for n in adapted)


def test_attn_implementation_is_selected_at_load(tiny_checkpoint):
    policy = OpenVLAOFTPolicy.from_pretrained(tiny_checkpoint, attn_implementation="eager")
    assert policy.model.config.attn_implementation == "eager"
    assert policy.model.language_model.config._attn_implementation == "eager"
