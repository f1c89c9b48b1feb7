"""LIBERO HDF5 demo files: writer -> reader round trip, conventions, statistics, chunking."""

import json

import h5py
import numpy as np
import pytest

from verl.utils.dataset.libero_hdf5 import (
    DemoStep,
    LiberoDemoWriter,
    demo_file_name,
    env_to_policy_actions,
    instruction_of,
    quat_to_axis_angle,
    read_episodes,
)
from verl.utils.dataset.statistics import (
    chunk_actions,
    compute_statistics,
    noop_mask,
    save_dataset_statistics,
)

INSTRUCTION = "pick up the ketchup and place it in the basket"
FILE_ATTRS = {
    "env_name": "Libero_Tabletop_Manipulation",
    "problem_info": {
        "problem_name": "libero_tabletop_manipulation",
        "domain_name": "robosuite",
        "language_instruction": INSTRUCTION,
    },
    "bddl_file_name": "libero_object/pick_up_the_ketchup_and_place_it_in_the_basket.bddl",
}


def _steps(n: int, rng: np.random.Generator, size: int = 8) -> list[DemoStep]:
    steps = []
    for t in range(n):
        img = np.zeros((size, size, 3), dtype=np.uint8)
        img[0, 0] = [t, 1, 2]  # marks the first stored row / column (upside-down corner)
        angle = 0.1 * t
        steps.append(
            DemoStep(
                action=np.array([0.1 * t, 0, 0, 0, 0, 0, -1.0 if t < n - 2 else 1.0]),
                state=rng.normal(size=20),
                agentview=img,
                wrist=img + 3,
                eef_pos=np.array([0.1, 0.2, 0.3 + t]),
                eef_quat=np.array([0.0, 0.0, np.sin(angle / 2), np.cos(angle / 2)]),
                gripper_qpos=np.array([0.04, -0.04]),
                joint_pos=np.full(7, float(t)),
            )
        )
    return steps


def test_round_trip_conventions(tmp_path):
    rng = np.random.default_rng(0)
    path = str(tmp_path / demo_file_name("pick_up_the_ketchup_and_place_it_in_the_basket"))
    with LiberoDemoWriter(path, FILE_ATTRS) as writer:
        writer.add_demo(_steps(5, rng), init_state_id=3, model_file="<mujoco/>")
        writer.add_demo(_steps(4, rng), init_state_id=7)

    with h5py.File(path, "r") as f:
        data = f["data"]
        assert data.attrs["num_demos"] == 2 and data.attrs["total"] == 9
        assert json.loads(data.attrs["problem_info"])["language_instruction"] == INSTRUCTION
        demo = data["demo_0"]
        assert demo["actions"].dtype == np.float64 and demo["actions"].shape == (5, 7)
        assert demo["obs/agentview_rgb"].shape == (5, 8, 8, 3)
        assert demo["obs/ee_states"].shape == (5, 6) and demo["obs/joint_states"].shape == (5, 7)
        assert demo["robot_states"].shape == (5, 9)
        assert list(demo["dones"][()]) == [0, 0, 0, 0, 1] and list(demo["rewards"][()]) == [0, 0, 0, 0, 1]
        assert demo.attrs["num_samples"] == 5 and demo.attrs["model_file"] == "<mujoco/>"
        np.testing.assert_array_equal(demo.attrs["init_state"], demo["states"][0])

    episodes = read_episodes(path)
    assert [len(e.actions) for e in episodes] == [5, 4]
    ep = episodes[0]
    assert ep.instruction == INSTRUCTION
    # upright: the stored first corner pixel ends up at the last row / column
    assert ep.images[2, -1, -1, 0] == 2 and ep.images[2, 0, 0, 0] == 0
    assert ep.wrist_images[2, -1, -1, 0] == 5
    # gripper -1 open / +1 close -> 1 open / 0 close
    np.testing.assert_array_equal(ep.actions[:, -1], [1, 1, 1, 0, 0])
    np.testing.assert_allclose(ep.actions[:, 0], [0, 0.1, 0.2, 0.3, 0.4], atol=1e-6)
    assert ep.proprio.shape == (5, 8) and ep.proprio.dtype == np.float32
    np.testing.assert_allclose(ep.proprio[4, 3:6], [0, 0, 0.4], atol=1e-6)  # yaw 0.4 about z
    np.testing.assert_allclose(ep.proprio[:, 6:], [[0.04, -0.04]] * 5, atol=1e-6)


def test_resume_skips_done_and_drops_incomplete(tmp_path):
    rng = np.random.default_rng(1)
    path = str(tmp_path / "t_demo.hdf5")
    with LiberoDemoWriter(path, FILE_ATTRS) as writer:
        writer.add_demo(_steps(3, rng), init_state_id=0)
    with h5py.File(path, "a") as f:  # a demo interrupted before num_samples was written
        f["data"].create_group("demo_1").create_dataset("actions", data=np.zeros((2, 7)))
    with LiberoDemoWriter(path, FILE_ATTRS) as writer:
        assert writer.done_init_state_ids == {0}
        assert writer.num_demos == 1
        assert writer.add_demo(_steps(3, rng), init_state_id=1) == "demo_1"
    assert len(read_episodes(path, load_wrist=False)) == 2


def test_instruction_from_official_file_names():
    assert instruction_of("/d/pick_up_the_ketchup_and_place_it_in_the_basket_demo.hdf5", {}) == (
        "pick up the ketchup and place it in the basket"
    )
    assert instruction_of("KITCHEN_SCENE3_turn_on_the_stove_and_put_the_moka_pot_on_it_demo.hdf5", {}) == (
        "turn on the stove and put the moka pot on it"
    )


def test_gripper_conversion_clips_like_oft():
    raw = np.array([[0, 0, 0, 0, 0, 0, -1.0], [0, 0, 0, 0, 0, 0, 1.0], [0, 0, 0, 0, 0, 0, 0.25]])
    np.testing.assert_allclose(env_to_policy_actions(raw)[:, -1], [1.0, 0.0, 0.75])


def test_quat_to_axis_angle_matches_rotation():
    half = np.pi / 6  # 60 degrees about (1, 1, 0)/sqrt(2)
    axis = np.array([1.0, 1.0, 0.0]) / np.sqrt(2)
    quat = np.concatenate([axis * np.sin(half), [np.cos(half)]])
    np.testing.assert_allclose(quat_to_axis_angle(quat), axis * np.pi / 3)
    np.testing.assert_array_equal(quat_to_axis_angle(np.array([0, 0, 0, 1.0])), np.zeros(3))


def test_statistics_equal_hand_computation(tmp_path):
    a1 = np.array([[1.0, 0, 0, 0, 0, 0, 1], [3.0, 0, 0, 0, 0, 0, 0]])
    a2 = np.array([[5.0, 0, 0, 0, 0, 0, 1]])
    p1, p2 = np.ones((2, 8)), np.zeros((1, 8))
    stats = compute_statistics([a1, a2], [p1, p2])
    # dim 0 holds 1, 3, 5: mean 3, population std sqrt(8/3); quantiles interpolate linearly
    assert stats["action"]["mean"][0] == pytest.approx(3.0)
    assert stats["action"]["std"][0] == pytest.approx(np.sqrt(8 / 3))
    assert stats["action"]["q01"][0] == pytest.approx(1.0 + 0.01 * 2 * 2)
    assert stats["action"]["q99"][0] == pytest.approx(5.0 - 0.01 * 2 * 2)
    assert stats["action"]["min"][0] == 1.0 and stats["action"]["max"][0] == 5.0
    assert stats["action"]["mean"][6] == pytest.approx(2 / 3)
    assert stats["action"]["mask"] == [True] * 6 + [False]
    assert stats["proprio"]["mean"] == pytest.approx([2 / 3] * 8)
    assert "mask" not in stats["proprio"]
    assert stats["num_transitions"] == 3 and stats["num_trajectories"] == 2

    path = str(tmp_path / "dataset_statistics.json")
    save_dataset_statistics(stats, "libero_object_no_noops", path)
    with open(path) as f:
        assert json.load(f)["libero_object_no_noops"]["action"]["max"][0] == 5.0


def test_chunk_actions_oft_drops_tail_and_padding_repeats_last():
    actions = np.arange(10, dtype=np.float32)[:, None].repeat(7, 1)  # action t == t
    oft = chunk_actions(actions, 8)
    assert oft.shape == (3, 8, 7)
    np.testing.assert_array_equal(oft[2, :, 0], np.arange(2, 10))
    padded = chunk_actions(actions, 8, pad_end=True)
    assert padded.shape == (10, 8, 7)
    np.testing.assert_array_equal(padded[5, :, 0], [5, 6, 7, 8, 9, 9, 9, 9])
    np.testing.assert_array_equal(padded[9, :, 0], [9] * 8)
    assert chunk_actions(actions[:5], 8).shape == (0, 8, 7)
    with pytest.raises(ValueError, match="chunk"):
        chunk_actions(actions, 0)


def test_noop_mask_follows_previous_kept_gripper():
    z = [0.0] * 6
    acts = np.array([z + [-1], [0.5] + z[1:] + [-1], z + [-1], z + [1], z + [1], [1e-5] + z[1:] + [1]])
    np.testing.assert_array_equal(noop_mask(acts), [True, False, True, False, True, True])
