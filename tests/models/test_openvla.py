"""The original OpenVLA policy on a tiny random checkpoint in the released layout: loading and saving,
cached sampling against the teacher-forced pass, causality, ragged batches, token/bin/unnormalisation
hand cases, and the 7B module tree on the meta device."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.models.conftest import INSTRUCTIONS, make_observations
from tests.models.test_openvla_7b import OPENVLA_PARAMS, expected_7b_state
from verl.models.openvla.modeling import OpenVLAForActionPrediction
from verl.models.openvla.policy import OpenVLAPolicy
from verl.models.openvla_oft.action_tokenizer import libero_gripper_postprocess
from verl.models.openvla_oft.checkpoint_io import save_state_dict
from verl.models.openvla_oft.configuration import openvla_7b, tiny
from verl.models.openvla_oft.tiny import write_tiny_checkpoint
from verl.models.registry import load_policy, model_chunk_size


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> str:
    config = tiny(num_actions_chunk=1)
    return str(write_tiny_checkpoint(tmp_path_factory.mktemp("tiny-openvla"), config, seed=3))


@pytest.fixture(scope="module", params=["action", "full"])
def policy(request, ckpt) -> OpenVLAPolicy:
    name = {"action": "openvla", "full": "openvla-full-vocab"}[request.param]
    return load_policy(name, ckpt, unnorm_key="libero_spatial").eval()


def _batch(policy: OpenVLAPolicy, out, observations) -> dict[str, torch.Tensor]:
    return policy.step_batch(out.jpegs, [o["instruction"] for o in observations], None, out.action_tokens)


# ---------------------------------------------------------------------- loading and the contract
def test_registry_and_contract(policy):
    assert isinstance(policy, OpenVLAPolicy)
    assert (policy.chunk_size, policy.action_dim, policy.tokens_per_step) == (1, 7, 7)
    assert policy.unnorm_key == "libero_spatial_no_noops"
    assert model_chunk_size("openvla") == model_chunk_size("openvla-full-vocab") == 1
    assert model_chunk_size("openvla-oft") is None
    attention = [m for m in policy.model.language_model.modules() if hasattr(m, "is_causal")]
    assert attention and all(m.is_causal for m in attention)
    policy.bind_observations(["agentview", "wrist"], 8)
    assert policy.camera_keys == ["agentview"]


def test_libero_image_pipeline_of_the_official_eval(policy):
    """JPEG round trip, Lanczos resize and the 90%-area centre crop (the LIBERO-finetuned checkpoints
    were trained with random crops), on upright frames (our envs flip LIBERO's renders already)."""
    from verl.models.openvla_oft import image_ops

    assert policy.processor.center_crop and not policy.processor.flip
    [obs] = make_observations(1, seed=9)
    out = policy.act([obs], greedy=True)
    frame = obs["images"]["agentview"]
    assert out.jpegs[0][0] == image_ops.jpeg_encode(frame)
    expected = image_ops.policy_image(out.jpegs[0][0], policy.processor.image_size, crop=True)
    assert np.array_equal(out.inputs.images[0, 0].numpy(), expected)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_actions_chunk": 8}, "action_chunks_len"),
        ({"use_proprio": True}, "use_proprio"),
        ({"num_images_in_input": 2}, "num_images_in_input"),
        ({"vocabulary": "bpe"}, "vocabulary must be one of"),
    ],
)
def test_loader_rejects_settings_openvla_lacks(ckpt, kwargs, match):
    with pytest.raises(ValueError, match=match):
        OpenVLAPolicy.from_pretrained(ckpt, **kwargs)


def test_released_layout_loads(ckpt, tmp_path):
    """A config.json without this port's fields, 3 safetensors shards with an index, statistics."""
    src = OpenVLAPolicy.from_pretrained(ckpt)
    src.save_pretrained(tmp_path)
    for f in tmp_path.glob("model*.safetensors"):
        f.unlink()
    save_state_dict(src.model.state_dict(), tmp_path, max_shard_size=2 << 20)
    config = json.loads((tmp_path / "config.json").read_text())
    for key in ("num_actions_chunk", "action_dim", "use_proprio", "num_images_in_input"):
        config.pop(key)
    config.update(architectures=["OpenVLAForActionPrediction"], n_action_bins=256)
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert len(list(tmp_path.glob("model-*-of-*.safetensors"))) >= 2
    loaded = OpenVLAPolicy.from_pretrained(tmp_path, unnorm_key="libero_spatial")
    assert (loaded.chunk_size, loaded.action_dim) == (1, 7)
    ref, new = src.state_dict(), loaded.state_dict()
    assert ref.keys() == new.keys() and all(torch.equal(ref[k], new[k]) for k in ref)


def test_save_load_round_trip(policy, tmp_path):
    observations = make_observations(2, seed=5)
    out = policy.act(observations, greedy=True)
    policy.save_pretrained(tmp_path)
    reloaded = OpenVLAPolicy.from_pretrained(tmp_path, vocabulary=policy.vocabulary).eval()
    batch = _batch(policy, out, observations)
    torch.testing.assert_close(reloaded.action_logits(batch), policy.action_logits(batch), rtol=0, atol=0)
    assert torch.equal(reloaded.act(observations, greedy=True).action_tokens, out.action_tokens)
    assert json.loads((tmp_path / "config.json").read_text())["num_actions_chunk"] == 1


# ---------------------------------------------------------------------- sampling vs teacher forcing
@pytest.mark.parametrize("temperature", [1.0, 1.6])
def test_sampled_log_probs_equal_teacher_forced(policy, temperature):
    observations = make_observations(3, seed=1)
    out = policy.act(observations, temperature=temperature, row_seeds=[11, 12, 13])
    assert out.action_tokens.shape == (3, 7) and out.actions.shape == (3, 1, 7)
    log_probs, entropy = policy.log_prob(_batch(policy, out, observations), temperature)
    torch.testing.assert_close(log_probs, out.log_probs, rtol=0, atol=1e-5)
    assert entropy.shape == (3, 7) and bool((entropy > 0).all())


def test_greedy_cached_equals_uncached_loop(policy):
    """Greedy `act` (KV cache) equals 7 full teacher-forced passes, each taking the argmax of the next
    position given the tokens chosen so far."""
    observations = make_observations(3, seed=2)
    out = policy.act(observations, greedy=True)
    batch = _batch(policy, out, observations)
    tokens = torch.zeros_like(out.action_tokens)
    for k in range(7):
        logits = policy.action_logits({**batch, "action_tokens": tokens})
        tokens[:, k] = logits[:, k].argmax(-1)
    assert torch.equal(tokens, out.action_tokens)


def test_ragged_batch_equals_single_rows(policy):
    observations = make_observations(3, seed=4)
    lengths = {len(policy.processor.prompt_ids(o["instruction"])) for o in observations}
    assert len(lengths) == 3  # three different prompt lengths share the batch
    seeds = [7, 8, 9]
    batched = policy.act(observations, temperature=1.6, row_seeds=seeds)
    greedy = policy.act(observations, greedy=True)
    for i, obs in enumerate(observations):
        single = policy.act([obs], temperature=1.6, row_seeds=[seeds[i]])
        assert torch.equal(single.action_tokens[0], batched.action_tokens[i])
        torch.testing.assert_close(single.log_probs[0], batched.log_probs[i], rtol=0, atol=1e-5)
        assert torch.equal(policy.act([obs], greedy=True).action_tokens[0], greedy.action_tokens[i])


def test_causal(policy):
    """Logit k predicts a_k from a_<k: changing a_k.. leaves logits 0..k unchanged and changes the later
    ones (a_6 is never fed); changing the prompt changes them all."""
    observations = make_observations(2, seed=6)
    out = policy.act(observations, temperature=1.0, row_seeds=[1, 2])
    batch = _batch(policy, out, observations)
    logits = policy.action_logits(batch)
    for k in (1, 3, 6):
        changed = out.action_tokens.clone()
        changed[:, k:] = (changed[:, k:] + 17) % 256
        new = policy.action_logits({**batch, "action_tokens": changed})
        torch.testing.assert_close(new[:, : k + 1], logits[:, : k + 1], rtol=0, atol=1e-6)
        if k < 6:
            assert not torch.allclose(new[:, k + 1 :], logits[:, k + 1 :])
    other = policy.step_batch(out.jpegs, [INSTRUCTIONS[1]] * 2, None, out.action_tokens)
    assert not torch.allclose(policy.action_logits(other)[:, 0], logits[:, 0])


def test_matches_plain_causal_llama_on_one_row(policy):
    """transformers' LlamaForCausalLM with its default causal mask, fed [BOS][patches][prompt][a_0..a_5]
    as one unpadded row, gives the same 7 logit rows (read at the last prompt token and each fed token)."""
    [obs] = make_observations(1, seed=8)
    out = policy.act([obs], temperature=1.0, row_seeds=[3])
    batch = _batch(policy, out, [obs])
    model = policy.model
    prompt = batch["input_ids"][0, : int(batch["attention_mask"].sum())]
    with torch.no_grad():
        prefix = model.prefix_embeddings(batch["pixel_values"])[0]
        fed = out.action_tokens[0, :6] + (0 if policy.vocabulary == "full" else 31744)
        embed = model.language_model.model.embed_tokens
        embeds = torch.cat([embed(prompt[:1]), prefix, embed(prompt[1:]), embed(fed)])[None]
        logits = model.language_model(inputs_embeds=embeds).logits[0]  # [T, 32064]
    start = prefix.shape[0] + len(prompt) - 1
    rows = logits[start : start + 7]
    expected = rows if policy.vocabulary == "full" else rows[:, 31744:32000]
    torch.testing.assert_close(policy.action_logits(batch)[0], expected, rtol=0, atol=1e-5)


def test_teacher_forcing_needs_tokens(policy):
    batch = policy.idle_batch()
    del batch["action_tokens"]
    with pytest.raises(ValueError, match="action_tokens"):
        policy.action_logits(batch)


# ---------------------------------------------------------------------- tokens, bins, units
def test_token_bin_unnormalisation_hand_cases(ckpt):
    """d = 32000 - id, centre k = clip(d - 1, 0, 254), value = 0.5 (n + 1)(q99 - q01) + q01 (no 1e-8)
    where the mask is true; the gripper (mask false) passes through."""
    policy = OpenVLAPolicy.from_pretrained(ckpt, unnorm_key="libero_spatial")
    q01 = np.array([-0.5 - 0.05 * i for i in range(7)])  # synthetic_statistics of the tiny checkpoint
    q99 = np.array([0.6 + 0.05 * i for i in range(7)])
    top, bottom = 1.0 - 1.0 / 255, -1.0 + 1.0 / 255  # bin centres 254 and 0
    # action indices 0, 1 (ids 31744, 31745) -> highest centre; 255 (id 31999) -> lowest;
    # 128 -> centre 127 = 0; 127 -> centre 128 = 2/255
    tokens = torch.tensor([[0, 1, 255, 128, 0, 255, 0], [255, 255, 1, 127, 255, 0, 255]])
    normalised = np.array([[top, top, bottom, 0.0, top, bottom, top],
                           [bottom, bottom, top, 2 / 255, bottom, top, bottom]])  # fmt: skip
    expected = 0.5 * (normalised + 1.0) * (q99 - q01) + q01
    expected[:, 6] = normalised[:, 6]
    actions = policy.decode_actions(tokens)
    assert actions.shape == (2, 1, 7)
    np.testing.assert_allclose(actions[:, 0], expected.astype(np.float32), rtol=0, atol=1e-7)
    # encoding a decoded action gives the token back (indices 0 and 1 share a centre: 1)
    assert torch.equal(policy.encode_actions(actions), torch.where(tokens == 0, 1, tokens))

    full = OpenVLAPolicy.from_pretrained(ckpt, unnorm_key="libero_spatial", vocabulary="full")
    ids = tokens + 31744
    np.testing.assert_array_equal(full.decode_actions(ids), actions)
    # non-action ids, as the official decode maps them: below the range -> top, above -> bottom
    odd = full.decode_actions(torch.tensor([[5, 29871, 32000, 32063, 31743, 2, 32001]]))[0, 0]
    expected_odd = np.array([top, top, bottom, bottom, top, top, bottom])
    expected_odd = np.where(np.arange(7) < 6, 0.5 * (expected_odd + 1.0) * (q99 - q01) + q01, expected_odd)
    np.testing.assert_allclose(odd, expected_odd.astype(np.float32), rtol=0, atol=1e-7)
    assert torch.equal(full.encode_actions(actions), policy.encode_actions(actions) + 31744)
    # LIBERO gripper: 0 (close) -> +1, 0.996 (open) -> -1
    gripper = libero_gripper_postprocess(np.array([[0.0] * 7, [0.0] * 6 + [top]]))[:, 6]
    np.testing.assert_array_equal(gripper, [1.0, -1.0])


# ---------------------------------------------------------------------- the released 7B
def test_7b_on_meta_has_the_released_keys_shapes_and_count():
    with torch.device("meta"):
        model = OpenVLAForActionPrediction(openvla_7b(num_actions_chunk=1, action_dim=7))
    state = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert state == expected_7b_state()
    assert sum(p.numel() for p in model.parameters()) == OPENVLA_PARAMS
    assert model.config.num_action_tokens == 7 and model.num_prefix_tokens() == 256
    attention = [m for m in model.language_model.modules() if hasattr(m, "is_causal")]
    assert attention and all(m.is_causal for m in attention)
