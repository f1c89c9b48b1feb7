"""The memory plan's arithmetic on hand-computed cases, and the 7B plan at the launch script's settings."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from verl.utils.memory_plan import (
    KINDS,
    PHASES,
    ModelShape,
    PlanSettings,
    VisionTower,
    llm_layer_saved_bytes,
    plan,
    sequence_tokens,
    training_activation_bytes,
    vit_block_saved_bytes,
)

# A toy shape small enough to compute by hand.
SHAPE = ModelShape(
    params=1000,
    trainable=1000,
    largest_param=100,
    largest_trainable=100,
    root_unit=200,
    largest_unit=50,
    llm_hidden=4,
    llm_intermediate=8,
    llm_layers=2,
    vision=(VisionTower(tokens=5, width=2, mlp_width=4, blocks=3),),
    images=1,
    prefix_tokens=4,
    action_tokens=3,
)


def settings(**kw) -> PlanSettings:
    base = dict(world_size=4, update_sequences=2, log_prob_sequences=3, rollout_sequences=5, prompt_tokens=2)
    return PlanSettings(**{**base, **kw})


def test_sequence_and_layer_sizes_by_hand():
    assert sequence_tokens(SHAPE, 2) == 4 + 2 + 3 + 1
    # 10 tokens: 8h fp32 norm inputs = 32, bf16 (8h + 4I) = 2 * 64 = 128 -> 160 per token.
    assert llm_layer_saved_bytes(10, 4, 8, 2) == 1600
    # 5 tokens x 2 bytes x (10 * 2 + 2 * 4) = 280.
    assert vit_block_saved_bytes(5, 2, 4, 2) == 280


def test_training_activations_by_hand():
    s = settings()
    # LLM: 20 tokens; 2 layers keep their input (20 * 4 * 2 = 160 each) + 2 x one layer (20 * 160).
    # Vision: 10 tokens; 3 blocks keep 10 * 2 * 2 = 40 each, + 2 x one block (10 * 2 * 28 = 560).
    assert training_activation_bytes(SHAPE, 2, s) == (2 * 160 + 2 * 3200) + (3 * 40 + 2 * 560)
    no_ckpt = settings(gradient_checkpointing=False)
    assert training_activation_bytes(SHAPE, 2, no_ckpt) == 3 * 3200 + 4 * 560


def test_plan_by_hand_full_fine_tuning():
    p = plan(SHAPE, settings(reference=True))
    assert set(p) == set(PHASES) and all(set(v) == set(KINDS) for v in p.values())
    update = p["update"]
    assert update["parameters"] == 4 * 1000 // 4
    assert update["gradients"] == 1000
    assert update["optimizer"] == 2000
    assert update["rollout_weights"] == 2 * 1000  # full bf16 replica on every rank
    assert update["reference"] == 2 * 1000 // 4  # bf16, sharded
    assert update["fsdp_gather"] == 2 * 2 * (200 + 2 * 50)
    assert p["weight_sync"]["transient_sync"] == 2 * 100  # one bf16 parameter
    assert p["checkpoint_save"]["transient_sync"] == 4 * 100  # one fp32 parameter
    assert p["rollout"]["gradients"] == 0 and p["startup"]["optimizer"] == 0


def test_one_rank_samples_through_the_actor_and_offload_empties_the_device():
    one = plan(SHAPE, settings(world_size=1))["rollout"]
    assert one["rollout_weights"] == 0 and one["fsdp_gather"] == 2 * (200 + 2 * 50)
    assert plan(SHAPE, settings())["rollout"]["fsdp_gather"] == 0  # the replica is not sharded
    p = plan(SHAPE, settings(optimizer_offload=True))
    assert p["rollout"]["optimizer"] == 0 and p["update"]["optimizer"] == 2000
    p = plan(SHAPE, settings(param_offload=True))
    assert p["update"]["parameters"] == p["update"]["gradients"] == p["update"]["optimizer"] == 0


def test_lora_streams_only_adapters():
    lora = ModelShape(**{**SHAPE.__dict__, "trainable": 10, "largest_trainable": 4})
    p = plan(lora, settings())
    assert p["update"]["optimizer"] == 2 * 4 * 10 // 4
    assert p["weight_sync"]["transient_sync"] == 2 * 4


def load_bench():
    path = Path(__file__).resolve().parents[2] / "scripts" / "bench" / "memory_plan.py"
    spec = importlib.util.spec_from_file_location("memory_plan_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_7b_plan_fits_80gb_at_launch_settings():
    build_plan = load_bench().build_plan

    for world, limit in ((8, 72), (16, 72), (32, 72)):
        phases = build_plan(world_size=world)
        assert max(p["peak_gib"] for p in phases) <= limit
    phases = {p["phase"]: p for p in build_plan(world_size=8)}
    # Launch settings: the update dominates; Adam + params + grads at 7.54 B / 8 ranks = 14.0 GiB.
    kinds = phases["update"]["gib_by_kind"]
    assert kinds["parameters"] + kinds["gradients"] + kinds["optimizer"] == pytest.approx(14.05, abs=0.05)
    assert kinds["rollout_weights"] == pytest.approx(14.05, abs=0.05)
