"""The LIBERO env in this process, with the real simulator: rendering identity, success, limits,
initial states and perturbation."""

from __future__ import annotations

import numpy as np
import pytest

from verl.envs import EnvConfig, ResetRequest, make_env
from verl.envs.libero import init_states
from verl.envs.libero.config import PerturbationConfig, libero_env_config

pytestmark = pytest.mark.sim


def _random_chunks(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([rng.uniform(-0.6, 0.6, (8, 6)), rng.uniform(0, 1, (8, 1))], axis=1) for _ in range(n)
    ]


def _run(cfg: EnvConfig, chunks: list[np.ndarray], record: bool):
    """One episode of libero_object task 0; returns (boundary images, proprios, frames, final sim state)."""
    env = make_env(cfg)
    try:
        first = env.reset(ResetRequest("libero_object", 0, 3, seed=1, record_video=record))
        images, proprios, frames = (
            [first.obs["images"]["agentview"]],
            [first.obs["proprio"]],
            list(first.frames),
        )
        for chunk in chunks:
            result = env.step_chunk(chunk)
            assert not result.failed and result.steps == 8
            images.append(result.obs["images"]["agentview"])
            proprios.append(result.obs["proprio"])
            frames += result.frames
        return images, proprios, frames, env.sim_env.get_sim_state().copy()
    finally:
        env.close()


def test_render_at_chunk_boundaries_is_identical_to_rendering_every_step():
    chunks = _random_chunks(3)
    ref_images, ref_proprio, ref_frames, ref_state = _run(
        libero_env_config(render_mode="every_step"), chunks, record=True
    )
    images, proprio, _, state = _run(libero_env_config(render_mode="chunk"), chunks, record=False)
    assert len(ref_frames) == 1 + 3 * 8
    for ref, img in zip(ref_images, images):
        assert img is not None and img.dtype == np.uint8 and img.shape == (256, 256, 3)
        np.testing.assert_array_equal(img, ref)
    # boundary images are the frames at the end of each chunk
    for j, img in enumerate(images):
        np.testing.assert_array_equal(img, ref_frames[8 * j])
    np.testing.assert_array_equal(np.stack(proprio), np.stack(ref_proprio))
    np.testing.assert_array_equal(state, ref_state)
    assert not np.array_equal(images[0], images[-1])  # the robot moved


def test_goal_predicate_gives_success_and_ends_the_episode():
    """libero_goal task 0 is "open the middle drawer of the cabinet": open it by setting its joint."""
    env = make_env(libero_env_config(suite="libero_goal", render_mode="none"))
    try:
        env.reset(ResetRequest("libero_goal", 0, 0))
        still = np.zeros((1, 7))
        still[:, 6] = 1.0  # keep the gripper open
        result = env.step_chunk(still)
        assert (result.success, result.done, result.steps) == (False, False, 1)
        domain = env.sim_env.env
        for joint in domain.object_sites_dict["wooden_cabinet_1_middle_region"].joints:
            domain.sim.data.set_joint_qpos(joint, -0.2)  # open range is below -0.14
        domain.sim.forward()
        assert env.sim_env.check_success()
        result = env.step_chunk(np.repeat(still, 8, axis=0))
        assert (result.success, result.done, result.failed, result.steps) == (True, True, False, 1)
        assert result.info["episode_steps"] == 2
        after = env.step_chunk(still)
        assert after.failed and "reset" in after.error
    finally:
        env.close()


def test_step_limit_wait_steps_and_initial_state():
    env = make_env(
        libero_env_config(suite="libero_object", max_steps=12, num_steps_wait=0, render_mode="chunk")
    )
    try:
        states = init_states("libero_object", 1)
        first = env.reset(ResetRequest("libero_object", 1, 7))
        # With no wait steps the observation is the fixed initial state itself.
        np.testing.assert_array_equal(env.sim_env.get_sim_state(), states[7])
        np.testing.assert_allclose(first.obs["proprio"][6:8], states[7][1 + 7 : 1 + 9], atol=1e-6)
        assert first.obs["images"]["agentview"].shape == (256, 256, 3)
        a = env.step_chunk(np.zeros((8, 7)))
        b = env.step_chunk(np.zeros((8, 7)))
        assert (a.steps, a.done, b.steps, b.done, b.success) == (8, False, 4, True, False)
        assert b.obs["images"]["agentview"] is not None  # the step that hits the limit renders
        other = env.reset(ResetRequest("libero_object", 1, 8))
        assert not np.array_equal(other.obs["images"]["agentview"], first.obs["images"]["agentview"])
    finally:
        env.close()


def _object_xy_yaw(env) -> dict[str, np.ndarray]:
    domain = env.sim_env.env
    out = {}
    for name, obj in domain.objects_dict.items():
        q = np.array(domain.sim.data.get_joint_qpos(obj.joints[-1]))
        out[name] = q
    return out


def test_perturbation_is_seeded_and_keeps_objects_on_the_table():
    cfg = libero_env_config(
        suite="libero_object",
        render_mode="none",
        num_steps_wait=0,
        perturbation=PerturbationConfig(pos_noise_m=0.03, yaw_noise_rad=0.5),
    )
    env = make_env(cfg)
    try:
        original = init_states("libero_object", 2)[0]
        poses = []
        for seed in (11, 11, 12):
            env.reset(ResetRequest("libero_object", 2, 0, seed=seed))
            poses.append(_object_xy_yaw(env))
        names = list(poses[0])
        for n in names:
            np.testing.assert_array_equal(poses[0][n], poses[1][n])
        assert any(not np.allclose(poses[0][n], poses[2][n]) for n in names)
        # z is never changed and x/y moves stay within the noise size
        env.settings.perturbation = PerturbationConfig()
        env.reset(ResetRequest("libero_object", 2, 0, seed=11))
        unperturbed = _object_xy_yaw(env)
        np.testing.assert_array_equal(env.sim_env.get_sim_state(), original)
        for n in names:
            d = poses[0][n][:3] - unperturbed[n][:3]
            assert abs(d[2]) < 1e-9 and np.all(np.abs(d[:2]) <= 0.03 + 1e-9)
        # after settling with the wait steps, every object rests at its unperturbed height
        env.settings.num_steps_wait = 10
        env.reset(ResetRequest("libero_object", 2, 0, seed=11))
        settled_reference = _object_xy_yaw(env)
        env.settings.perturbation = PerturbationConfig(pos_noise_m=0.03, yaw_noise_rad=0.5)
        env.reset(ResetRequest("libero_object", 2, 0, seed=11))
        settled = _object_xy_yaw(env)
        for n in names:
            assert abs(settled[n][2] - settled_reference[n][2]) < 0.01, n
    finally:
        env.close()


def test_privileged_and_wrist_observations():
    cfg = libero_env_config(
        suite="libero_object", use_wrist_image=True, privileged_obs=True, num_steps_wait=2
    )
    env = make_env(cfg)
    try:
        obs = env.reset(ResetRequest("libero_object", 0, 0)).obs
        assert obs["images"]["wrist"].shape == (256, 256, 3) and obs["images"]["wrist"].dtype == np.uint8
        assert not np.array_equal(obs["images"]["wrist"], obs["images"]["agentview"])
        privileged = obs["privileged"]
        assert isinstance(privileged, dict) and privileged
        # proprio is sampled by robosuite a few physics substeps before the end of the step
        np.testing.assert_allclose(privileged["eef_pos"], obs["proprio"][:3], atol=1e-3)
        result = env.step_chunk(np.zeros((3, 7)))
        assert result.obs["images"]["wrist"] is not None and "privileged" in result.obs
    finally:
        env.close()
