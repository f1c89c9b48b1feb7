"""EnvConfig validation, the registry, suite metadata, conversions and videos (no simulator)."""

from __future__ import annotations

import math

import imageio.v2 as imageio
import numpy as np
import pytest
from omegaconf import OmegaConf

from verl.envs import EnvConfig, ResetRequest, available_envs, get_env_spec, make_env
from verl.envs.libero import (
    DEFAULT_MAX_STEPS,
    SUITES,
    default_max_steps,
    num_init_states,
    num_tasks,
    split_init_states,
    task_language,
)
from verl.envs.libero.config import LiberoConfig, PerturbationConfig, libero_env_config
from verl.envs.libero.convert import policy_to_libero_actions, proprio_from_obs, quat_to_axis_angle, upright
from verl.envs.libero.suites import check_reset_request
from verl.envs.video import save_video, video_name


def test_defaults_follow_the_openvla_oft_protocol():
    cfg = libero_env_config()
    cfg.validate()
    assert (cfg.sim.num_steps_wait, cfg.sim.camera_size, cfg.max_steps, cfg.render_mode) == (
        10,
        256,
        None,
        "chunk",
    )
    assert EnvConfig().sim == LiberoConfig() and EnvConfig().default_suite == "libero_spatial"
    assert [default_max_steps(s) for s in SUITES] == [220, 280, 300, 520, 400]
    assert DEFAULT_MAX_STEPS["libero_10"] == 520


def test_config_is_a_structured_config():
    schema = OmegaConf.structured(LiberoConfig)
    merged = OmegaConf.merge(schema, OmegaConf.from_dotlist(["perturbation.pos_noise_m=0.04"]))
    sim = OmegaConf.to_object(merged)
    assert isinstance(sim, LiberoConfig) and isinstance(sim.perturbation, PerturbationConfig)
    cfg = EnvConfig(max_steps=512, sims={"libero": sim})
    assert cfg.max_steps == 512 and cfg.sim.perturbation.enabled
    cfg.validate()


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"suite": "libero_100"}, "env.suite", "libero_object"),
        ({"render_mode": "sometimes"}, "env.render_mode", "every_step"),
        ({"max_steps": 0}, "env.max_steps", "or null"),
        ({"num_steps_wait": -1}, "env.libero.num_steps_wait", ">= 0"),
        ({"step_timeout_s": 0.0}, "env.step_timeout_s", "> 0"),
        (
            {"perturbation": PerturbationConfig(pos_noise_m=-0.1)},
            "env.libero.perturbation.pos_noise_m",
            ">= 0",
        ),
        ({"render_mode": "none", "use_wrist_image": True}, "env.libero.use_wrist_image", "chunk"),
        ({"num_workers": 2, "pipeline_stages": 3}, "env.pipeline_stages", "0..env.num_workers (2)"),
        ({"num_workers": 2, "pipeline_stages": -1}, "env.pipeline_stages", "0..env.num_workers (2)"),
    ],
)
def test_validate_names_the_field_and_allowed_values(overrides, field, allowed):
    with pytest.raises(ValueError) as err:
        libero_env_config(**overrides).validate()
    assert field in str(err.value) and allowed in str(err.value)


def test_unknown_env_name_lists_the_registered_ones():
    with pytest.raises(ValueError, match="env.name.*libero"):
        EnvConfig(name="mujoco_soccer").validate()


def test_registry_lists_known_envs_for_unknown_names():
    assert "libero" in available_envs()
    assert get_env_spec("libero").action_dim == 7
    with pytest.raises(ValueError, match="available: .*libero"):
        get_env_spec("robot_soccer")
    with pytest.raises(ValueError, match="libero"):
        make_env(EnvConfig(name="robot_soccer"))


def test_suite_metadata():
    assert [num_tasks(s) for s in SUITES] == [10, 10, 10, 10, 90]
    assert task_language("libero_object", 0) == "pick up the alphabet soup and place it in the basket"
    assert task_language("libero_goal", 0) == "open the middle drawer of the cabinet"
    assert num_init_states("libero_10", 9) == 50
    with pytest.raises(ValueError, match=r"allowed: 0\.\.9"):
        task_language("libero_spatial", 10)
    with pytest.raises(ValueError, match="allowed: .*libero_90"):
        num_tasks("libero_100")


def test_reset_request_checks():
    check_reset_request(ResetRequest("libero_90", 89, 49))
    for bad, msg in [
        (ResetRequest("libero_xx", 0, 0), "suite"),
        (ResetRequest("libero_goal", -1, 0), "task_id"),
        (ResetRequest("libero_goal", 0, 50), r"init_state_id=50 .*allowed: 0\.\.49"),
    ]:
        with pytest.raises(ValueError, match=msg):
            check_reset_request(bad)


def test_split_init_states_is_disjoint_and_complete():
    train, val = split_init_states(50, 10)
    assert train == list(range(40)) and val == list(range(40, 50))
    assert split_init_states(50, 0) == (list(range(50)), [])
    with pytest.raises(ValueError, match="num_val"):
        split_init_states(50, 51)


def test_gripper_conversion_matches_oft_eval():
    policy = np.zeros((4, 7))
    policy[:, 0] = [0.1, -0.2, 0.3, 0.4]
    policy[:, 6] = [1.0, 0.0, 0.7, 0.5]  # open, close, open-ish, undecided
    libero = policy_to_libero_actions(policy)
    np.testing.assert_array_equal(libero[:, 6], [-1.0, 1.0, -1.0, 0.0])
    np.testing.assert_array_equal(libero[:, :6], policy[:, :6])
    assert policy[0, 6] == 1.0  # the input is not modified


def test_axis_angle_and_proprio():
    s = math.sin(math.pi / 4)
    np.testing.assert_allclose(quat_to_axis_angle(np.array([0.0, 0.0, s, s])), [0.0, 0.0, math.pi / 2])
    np.testing.assert_allclose(quat_to_axis_angle(np.array([1.0, 0.0, 0.0, 0.0])), [math.pi, 0.0, 0.0])
    np.testing.assert_array_equal(quat_to_axis_angle(np.array([0.0, 0.0, 0.0, 1.0])), np.zeros(3))
    raw = {
        "robot0_eef_pos": np.array([0.1, 0.2, 0.3]),
        "robot0_eef_quat": np.array([0.0, 0.0, s, s]),
        "robot0_gripper_qpos": np.array([0.04, -0.04]),
    }
    proprio = proprio_from_obs(raw)
    assert proprio.dtype == np.float32 and proprio.shape == (8,)
    np.testing.assert_allclose(proprio, [0.1, 0.2, 0.3, 0.0, 0.0, math.pi / 2, 0.04, -0.04], rtol=1e-6)


def test_upright_rotates_180_degrees():
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    out = upright(img)
    np.testing.assert_array_equal(out[0, 0], img[1, 2])
    assert out.flags["C_CONTIGUOUS"]


def test_video_round_trip(tmp_path):
    name = video_name("libero_goal", 3, 17, True, tag="step100")
    assert name == "libero_goal_task03_init17_success_step100.mp4"
    assert video_name("libero_10", 0, 0, False) == "libero_10_task00_init00_failure.mp4"
    frames = [np.full((64, 64, 3), 10 * i, dtype=np.uint8) for i in range(12)]
    path = save_video(frames, str(tmp_path / "videos" / name), fps=30)
    read = imageio.mimread(path)
    assert len(read) == 12 and read[0].shape == (64, 64, 3)
    assert abs(int(read[5].mean()) - 50) <= 2
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == [name]  # no temp file left
    with pytest.raises(ValueError, match="uint8"):
        save_video([np.zeros((4, 4, 3), dtype=np.float32)], str(tmp_path / "x.mp4"))
