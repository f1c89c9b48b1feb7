"""Scripted expert: grasp planning on hand-made geometry, and real episodes through the env pool."""

import os
import subprocess
import sys

import numpy as np
import pytest

from verl.envs.libero.expert import _axis_angle, _down_frame, _rotation
from verl.envs.libero.expert_rollout import parse_ids
from verl.envs.libero.grasp import collides, plan_grasp, plan_push

NO_OBSTACLES = (np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 3)))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _box_points(centre, half):
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float)
    return corners * half + centre


def _bowl_points(centre, radius=0.053, height=0.05, tilt_x=0.0):
    """Bottom and wall points of an open bowl; tilt_x raises the +x side by tilt_x * x."""
    ang = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    pts = [np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [0.0, 0.01, 0.0]])]
    for frac in np.linspace(0, 1, 6):
        r = radius * (0.6 + 0.4 * frac)
        x, y = r * np.cos(ang), r * np.sin(ang)
        pts.append(np.stack([x, y, frac * height + tilt_x * x], 1))
    return np.concatenate(pts) + centre


def test_flat_box_is_grasped_across_its_narrow_side():
    # 8.2 x 4.3 x 1.8 cm (the cream cheese): the 8.2 cm side does not fit the 7 cm opening.
    pts = _box_points([0.1, -0.2, 0.009], [0.041, 0.0215, 0.009])
    g, free = plan_grasp(pts, NO_OBSTACLES, current_yaw=0.0)
    assert free
    assert g.kind == "straddle"
    assert abs(abs(np.sin(g.yaw)) - 1.0) < 1e-6  # closing axis along y, the narrow side
    np.testing.assert_allclose(g.pos[:2], [0.1, -0.2], atol=1e-9)
    assert 0.009 <= g.pos[2] <= 0.018  # fingertips stay above the floor


def test_bowl_gets_rim_grasp_on_the_free_side():
    bowl = _bowl_points([0.0, 0.0, 1.0])
    # A wall right next to the bowl on the -x side blocks rim grasps there.
    wall = (np.array([[-0.075, 0.0, 1.05]]), np.array([[0.01, 0.2, 0.1]]), np.eye(3)[None])
    g, free = plan_grasp(bowl, wall, current_yaw=0.0)
    assert free
    assert g.kind == "rim"
    assert g.pos[0] > 0.03  # the +x rim, away from the wall
    assert abs(g.pos[2] - (1.05 - 0.02)) < 1e-6
    other, _ = plan_grasp(bowl, NO_OBSTACLES, current_yaw=np.pi / 2)
    assert abs(np.cos(other.yaw)) < 1e-6  # least rotation: keeps the closing axis along y


def test_far_placement_prefers_a_rim_grasp_on_the_base_side():
    bowl = _bowl_points([-0.1, 0.0, 1.0])
    g, _ = plan_grasp(bowl, NO_OBSTACLES, current_yaw=np.pi / 2)
    assert abs(g.pos[0] + 0.1) < 1e-6  # least rotation: a side grasp, as far from the base as the bowl
    base_xy, place_xy = np.array([-0.66, 0.0]), np.array([0.07, 0.2])
    g, _ = plan_grasp(bowl, NO_OBSTACLES, current_yaw=np.pi / 2, reach=(base_xy, place_xy))
    assert g.pos[0] < -0.13  # the rim nearest the base, so the hand reaches the far plate


def test_tilted_bowl_grasp_height_follows_the_local_rim():
    bowl = _bowl_points([0.0, 0.0, 1.0], tilt_x=0.5)  # rim 5 cm higher on +x than on -x
    g, _ = plan_grasp(bowl, NO_OBSTACLES, current_yaw=0.0)
    side = np.sign(g.pos[0])
    local_rim = 1.05 + 0.5 * side * 0.053
    assert abs(g.pos[2] - (local_rim - 0.02)) < 0.004


def test_push_slides_a_bowl_out_from_under_an_overhang():
    bowl = _bowl_points([0.0, 0.0, 1.0])
    # A shelf 1 cm above the rim covering y < -0.01 (a drawer under a cabinet top).
    shelf = (np.array([[0.0, -0.2, 1.0575]]), np.array([[0.2, 0.19, 0.0025]]), np.eye(3)[None])
    grasp, free = plan_grasp(bowl, shelf, current_yaw=0.0)
    assert not free  # every rim grasp puts the hand or the inside finger under the shelf
    start, direction, yaw = plan_push(bowl, shelf)
    np.testing.assert_allclose(direction, [0, 1, 0], atol=1e-9)  # away from the shelf
    assert abs(np.cos(yaw)) > 0.999  # closing axis across the push: the hand's thin side leads
    assert start[2] - 0.009 < 1.05 and start[2] + 0.031 > 1.06  # tips in the bowl, hand over the shelf
    assert plan_push(bowl, NO_OBSTACLES) is None


def test_collides_with_rotated_box():
    rot = _rotation(np.array([0, 0, np.pi / 4]))[None]
    centre, half = np.zeros((1, 3)), np.array([[0.1, 0.01, 0.1]])
    assert collides(np.array([[0.05, 0.05, 0.0]]), centre, rot=rot, half=half, margin=0.0)
    assert not collides(np.array([[0.05, -0.05, 0.0]]), centre, rot=rot, half=half, margin=0.0)


def test_rotation_helpers_round_trip():
    vec = np.array([0.3, -0.2, 0.9])
    np.testing.assert_allclose(_axis_angle(_rotation(vec)), vec, atol=1e-9)
    frame = _down_frame(0.7)
    np.testing.assert_allclose(frame @ frame.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)
    np.testing.assert_allclose(frame[:, 2], [0, 0, -1])


def test_parse_ids():
    assert parse_ids("0,2,5-7") == [0, 2, 5, 6, 7]
    with pytest.raises(ValueError, match="ids"):
        parse_ids("a-b")


@pytest.mark.sim
@pytest.mark.slow
def test_expert_succeeds_through_the_pool():
    from verl.envs.libero.config import libero_env_config
    from verl.envs.libero.expert_rollout import ExpertJob, run_expert
    from verl.envs.pool import EnvPool

    cfg = libero_env_config(render_mode="none", privileged_obs=True, num_workers=2)
    # The drawer bowl (spatial 4) needs a rim grasp away from the drawer walls; object 0 a straddle.
    jobs = [ExpertJob("libero_object", 0, 0), ExpertJob("libero_spatial", 4, 0)]
    with EnvPool(cfg, num_workers=2) as pool:
        episodes = {ep.job: ep for ep in run_expert(pool, jobs, chunk=8)}
    for job in jobs:
        ep = episodes[job]
        assert ep.error is None, ep.error
        assert ep.success, f"{job}: not solved in {ep.steps} steps"


@pytest.mark.sim
@pytest.mark.slow
def test_collector_output_reads_back(tmp_path):
    from verl.envs.libero import suites
    from verl.utils.dataset.libero_hdf5 import demo_file_name, read_episodes

    out = tmp_path / "demos"
    cmd = [sys.executable, os.path.join(REPO, "scripts", "collect_demos.py"), "--suite", "libero_object"]
    cmd += [
        "--tasks",
        "0",
        "--init-states",
        "0",
        "--out-dir",
        str(out),
        "--camera-size",
        "64",
        "--workers",
        "1",
    ]
    subprocess.run(
        cmd, check=True, cwd=REPO, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    )
    path = out / demo_file_name(suites.task_name("libero_object", 0))
    (ep,) = read_episodes(str(path))
    assert ep.instruction == suites.task_language("libero_object", 0)
    assert ep.images.shape[1:] == (64, 64, 3) and ep.wrist_images.shape == ep.images.shape
    assert len(ep.actions) == len(ep.images) == len(ep.proprio) > 20
    assert set(np.unique(ep.actions[:, -1])) == {0.0, 1.0}  # opened and closed the gripper
    # Re-running resumes: the initial state already has its demo, nothing is added.
    subprocess.run(cmd, check=True, cwd=REPO)
    assert len(read_episodes(str(path), load_wrist=False)) == 1
