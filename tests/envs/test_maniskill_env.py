"""ManiSkill3 through the real simulator, in-process: every supported task resets, steps and reports
its own success flag; seeds are initial states; bad input ends the episode with a reason."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from verl.envs import ResetRequest
from verl.envs.maniskill import SUITE, TASKS, maniskill_env_config, task_id_of
from verl.envs.maniskill.env import ManiskillEnv

pytestmark = [pytest.mark.sim, pytest.mark.maniskill, pytest.mark.slow]


@pytest.fixture(scope="module")
def env():
    e = ManiskillEnv(maniskill_env_config(camera_size=64, privileged_obs=True))
    yield e
    e.close()


def still(k: int = 8) -> np.ndarray:
    actions = np.zeros((k, 7))
    actions[:, 6] = 1.0  # open
    return actions


def _teleport(actor, position: torch.Tensor) -> None:
    from mani_skill.utils.structs.pose import Pose

    actor.set_pose(Pose.create_from_pq(p=position.reshape(1, 3), q=actor.pose.q))
    actor.set_linear_velocity(torch.zeros(1, 3))
    actor.set_angular_velocity(torch.zeros(1, 3))


def place_in_success_state(sim, env_id: str) -> None:
    """Move the task's object where the task's own success predicate holds."""
    if env_id == "PickCube-v1":
        _teleport(sim.cube, sim.goal_site.pose.p)
    elif env_id in ("PushCube-v1", "PullCube-v1"):
        goal = sim.goal_region.pose.p[0]
        _teleport(sim.obj, torch.tensor([goal[0], goal[1], sim.obj.pose.p[0, 2]]))
    elif env_id == "StackCube-v1":
        _teleport(sim.cubeA, sim.cubeB.pose.p[0] + torch.tensor([0.0, 0.0, 2 * float(sim.cube_half_size[2])]))
    elif env_id == "PlaceSphere-v1":
        lift = sim.radius + float(sim.block_half_size[0])
        _teleport(sim.obj, sim.bin.pose.p[0] + torch.tensor([0.0, 0.0, lift]))
    else:
        raise AssertionError(f"no success recipe for {env_id}")


def test_seed_is_the_initial_state_whatever_ran_before(env):
    pick = task_id_of("PickCube-v1")
    a = env.reset(ResetRequest(SUITE, pick, 11)).obs
    env.step_chunk(np.tile([0.3, -0.2, 0.1, 0.0, 0.0, 0.0, 0.0], (8, 1)))
    env.reset(ResetRequest(SUITE, pick, 12))
    b = env.reset(ResetRequest(SUITE, pick, 11)).obs
    c = env.reset(ResetRequest(SUITE, pick, 12)).obs
    assert np.array_equal(a["images"]["base_camera"], b["images"]["base_camera"])
    for key in ("cube_pos", "goal_site_pos", "qpos"):
        assert np.array_equal(a["privileged"][key], b["privileged"][key]), key
    assert not np.allclose(a["privileged"]["cube_pos"], c["privileged"]["cube_pos"])


def test_step_limit_and_bad_input(env):
    pick = task_id_of("PickCube-v1")
    env.reset(ResetRequest(SUITE, pick, 0))
    assert "shape" in env.step_chunk(np.zeros((8, 6))).error
    env.reset(ResetRequest(SUITE, pick, 0))
    assert "non-finite" in env.step_chunk(np.full((2, 7), np.nan)).error
    env.reset(ResetRequest(SUITE, pick, 0))
    steps = 0
    while True:
        result = env.step_chunk(still(16))
        steps += result.steps
        if result.done:
            break
    assert steps == TASKS[pick].max_steps and not result.success and not result.failed
    with pytest.raises(ValueError, match="task_id=99"):
        env.reset(ResetRequest(SUITE, 99, 0))


@pytest.mark.parametrize("task_id", range(len(TASKS)), ids=[t.env_id for t in TASKS])
def test_task_resets_steps_and_succeeds(env, task_id):
    task = TASKS[task_id]
    first = env.reset(ResetRequest(SUITE, task_id, 7))
    assert not first.failed and first.steps == 0 and first.info["max_steps"] == task.max_steps
    obs = first.obs
    assert obs["images"]["base_camera"].dtype == np.uint8 and obs["images"]["base_camera"].shape == (
        64,
        64,
        3,
    )
    assert obs["images"]["base_camera"].std() > 5  # a real scene, not a blank frame
    assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (8,)
    assert obs["instruction"] == task.instruction
    # Moving up with the gripper open does not solve any task; the TCP rises.
    up = still()
    up[:, 2] = 0.5
    moved = env.step_chunk(up)
    assert not moved.failed and moved.steps == 8 and not moved.success and not moved.done
    assert moved.obs["proprio"][2] > obs["proprio"][2] + 0.02
    assert moved.obs["images"]["base_camera"] is not None

    place_in_success_state(env.sim_env, task.env_id)
    done = env.step_chunk(still(8))
    assert done.success and done.done and done.steps < 8, done.info
    assert done.obs["images"]["base_camera"] is not None  # rendered although the chunk stopped early
    assert env.step_chunk(still()).failed  # the episode is over
