"""The device-latency policy stand-in of the rollout benchmarks (scripts/bench/device_latency.py): its
device-time arithmetic, recorded actions and `act` contract. No timings are asserted."""

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.bench.device_latency import DeviceLatencyPolicy, DeviceModel, recorded_chunk

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "checkpoints" / "tiny-sft-libero-object"


def test_device_time_is_a_plus_b_times_batch():
    model = DeviceModel(56.0, 56.0)  # the default: 112 ms at batch 1
    assert model.seconds(1) == pytest.approx(0.112)
    assert model.seconds(16) == pytest.approx(0.056 + 16 * 0.056)  # 0.952 s
    assert DeviceModel(10.0, 0.0).seconds(8) == pytest.approx(0.010)
    with pytest.raises(ValueError, match="batch=0"):
        model.seconds(0)
    with pytest.raises(ValueError, match="allowed: numbers >= 0"):
        DeviceModel(-1.0, 5.0)


def test_recorded_chunks_are_fixed_per_episode_and_step():
    a = recorded_chunk(1000, 3, 8, 7)
    assert a.shape == (8, 7) and a.dtype == np.float32
    assert np.array_equal(a, recorded_chunk(1000, 3, 8, 7))
    assert not np.array_equal(a, recorded_chunk(1000, 4, 8, 7))
    assert not np.array_equal(a, recorded_chunk(1001, 3, 8, 7))
    assert np.all(np.abs(a[:, :6]) <= 0.5) and set(np.unique(a[:, 6])) <= {0.0, 1.0}


def test_act_waits_the_modelled_time_and_returns_recorded_actions():
    waits = []
    act = DeviceLatencyPolicy(None, DeviceModel(20.0, 5.0), chunk=8, action_dim=7, sleep=waits.append)
    obs = [{}, {}, {}]
    tokens, log_probs, actions, jpegs, proprio = act(obs, [(7, 0), (8, 2), (9, 5)])
    assert waits == [pytest.approx(0.035)]
    assert tokens.shape == (3, 56) and tokens.dtype == np.int32 and log_probs.shape == (3, 56)
    assert actions.shape == (3, 8, 7) and proprio is None and jpegs == [[], [], []]
    # An episode's chunk does not depend on the batch it shares.
    _, _, alone, _, _ = act([{}], [(8, 2)])
    assert np.array_equal(alone[0], actions[1])
    assert waits[-1] == pytest.approx(0.025)
    assert act.calls == 2 and act.observations == 4 and act.device_s == pytest.approx(0.06)
    with pytest.raises(ValueError, match="2 observations for 1 keys"):
        act([{}, {}], [(1, 0)])


def test_no_device_time_means_no_wait():
    waits = []
    act = DeviceLatencyPolicy(None, DeviceModel(0.0, 0.0), chunk=1, action_dim=7, sleep=waits.append)
    act([{}], [(1, 0)])
    assert waits == [] and act.device_s == 0.0


def test_real_input_preparation_and_the_cpu_left_free():
    from verl.models.openvla_oft.policy import OpenVLAOFTPolicy

    policy = OpenVLAOFTPolicy.from_pretrained(str(TINY)).eval()
    rng = np.random.default_rng(0)
    spec_cameras = policy.camera_keys or ["agentview", "wrist"]
    obs = [
        {
            "images": {k: rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for k in spec_cameras},
            "proprio": rng.normal(size=8),
            "instruction": "pick up the ketchup and place it in the basket",
        }
        for _ in range(2)
    ]
    act = DeviceLatencyPolicy(policy.prepare, DeviceModel(400.0, 0.0), policy.chunk_size, policy.action_dim)
    cpu, wall = time.process_time(), time.perf_counter()
    tokens, _, actions, jpegs, proprio = act(obs, [(1, 0), (2, 0)])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # The real processor's JPEG record of each camera image, and its normalised proprio.
    n_img = policy.config.num_images_in_input
    assert len(jpegs) == 2 and all(len(row) == n_img for row in jpegs)
    assert Image.open(io.BytesIO(jpegs[0][0])).format == "JPEG"
    if policy.config.use_proprio:
        assert proprio.shape[0] == 2
    assert actions.shape == (2, policy.chunk_size, policy.action_dim)
    assert tokens.shape == (2, policy.chunk_size * policy.action_dim)
    # The modelled device time is a wait: the call takes at least 0.4 s of wall time, and the CPU
    # works only for the input preparation (here well under half of it).
    assert wall >= 0.4 and cpu < 0.2 and act.prepare_cpu_s <= cpu + 1e-3
