"""ManiSkill3's registration, task table, conversions and config, without building a simulator."""

from __future__ import annotations

import math

import numpy as np
import pytest

from verl.envs import ResetRequest
from verl.envs.maniskill import SUITE, TASKS, action_statistics, maniskill_env_config, task_id_of
from verl.envs.maniskill.convert import (
    maniskill_to_policy_gripper,
    policy_to_maniskill_actions,
    proprio,
    quat_wxyz_to_axis_angle,
)
from verl.envs.maniskill.tasks import check_no_download, check_reset_request
from verl.envs.registry import get_env_spec, observation_spec


def test_registered_with_its_own_config_node():
    spec = get_env_spec("maniskill")
    assert spec.suites == (SUITE,) and spec.action_dim == 7
    assert spec.num_tasks(SUITE) == len(TASKS)
    cfg = maniskill_env_config(use_hand_camera=True)
    cfg.validate()
    assert observation_spec(cfg).cameras == ("base_camera", "hand_camera")
    assert observation_spec(maniskill_env_config(render_mode="none")).cameras == ()
    with pytest.raises(ValueError, match="env.maniskill.use_hand_camera"):
        maniskill_env_config(render_mode="none", use_hand_camera=True).validate()
    with pytest.raises(ValueError, match="env.maniskill.camera_size"):
        maniskill_env_config(camera_size=0).validate()
    with pytest.raises(ValueError, match="env.maniskill.render_backend='gpu'; allowed"):
        maniskill_env_config(render_backend="gpu").validate()
    with pytest.raises(TypeError, match="camera_sise"):
        maniskill_env_config(camera_sise=3)


def test_requests_and_task_names_are_checked():
    check_reset_request(ResetRequest(SUITE, 0, 99_999))
    with pytest.raises(ValueError, match="task_id=5 .*allowed: 0..4"):
        check_reset_request(ResetRequest(SUITE, 5, 0))
    with pytest.raises(ValueError, match="init_state_id=-1"):
        check_reset_request(ResetRequest(SUITE, 0, -1))
    with pytest.raises(ValueError, match="suite='libero_10'"):
        check_reset_request(ResetRequest("libero_10", 0, 0))
    with pytest.raises(ValueError, match="PickSingleYCB-v1.*allowed"):
        task_id_of("PickSingleYCB-v1")
    assert len({t.instruction for t in TASKS}) == len(TASKS)


def test_gripper_and_pose_conversions():
    actions = np.array(
        [[0.1, -0.2, 0.3, 0.0, 0.0, 0.5, 1.0], [0, 0, 0, 0, 0, 0, 0.0], [0, 0, 0, 0, 0, 0, 0.5]]
    )
    out = policy_to_maniskill_actions(actions)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0, :6], actions[0, :6], rtol=1e-6)
    assert list(out[:, 6]) == [1.0, -1.0, 0.0]  # +1 open, -1 closed
    assert list(maniskill_to_policy_gripper([1.0, -1.0])) == [1.0, 0.0]
    # 90 degrees about z, and its negated quaternion (the same rotation).
    q = np.array([math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)])
    np.testing.assert_allclose(quat_wxyz_to_axis_angle(q), [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_axis_angle(-q), [0, 0, math.pi / 2], atol=1e-12)
    np.testing.assert_allclose(quat_wxyz_to_axis_angle([1.0, 0, 0, 0]), [0, 0, 0])
    p = proprio(np.array([1.0, 2.0, 3.0]), q, np.array([0.04, 0.03]))
    assert p.dtype == np.float32 and p.shape == (8,)
    stats = action_statistics()
    assert stats["action"]["q01"][:6] == [-1.0] * 6 and stats["action"]["mask"][-1] is False


@pytest.mark.maniskill
def test_tasks_need_no_download_and_download_tasks_are_rejected():
    for t in TASKS:
        check_no_download(t.env_id)
    with pytest.raises(ValueError, match=r"PickSingleYCB-v1.*\['ycb'\]"):
        check_no_download("PickSingleYCB-v1")
