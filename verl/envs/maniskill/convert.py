"""Pure conversions between ManiSkill's conventions and the policy's (no simulator import)."""

from __future__ import annotations

import math

import numpy as np

# 3 position deltas, 3 axis-angle rotation deltas (ManiSkill's pd_ee_delta_pose, normalised to
# [-1, 1] = +-0.1 m and +-0.1 rad per step, in the robot base frame), gripper.
ACTION_DIM = 7
# TCP position (3), TCP axis-angle (3), finger joint positions (2): the layout of LIBERO's proprio.
PROPRIO_DIM = 8
CONTROL_MODE = "pd_ee_delta_pose"


def policy_to_maniskill_actions(actions: np.ndarray) -> np.ndarray:
    """Policy actions [k, 7] (gripper in [0, 1], 1 = open) -> ManiSkill actions [k, 7] float32
    (gripper +1 open, -1 closed). The gripper is binarised with sign(2g - 1), as OpenVLA-OFT does
    for LIBERO; exactly g = 0.5 maps to 0 (half open). ManiSkill clips the rest to [-1, 1]."""
    out = np.array(actions, dtype=np.float32, copy=True)
    out[:, -1] = np.sign(2.0 * out[:, -1] - 1.0)
    return out


def maniskill_to_policy_gripper(gripper: np.ndarray) -> np.ndarray:
    """ManiSkill gripper commands (+1 open, -1 closed) -> the policy's [0, 1] (1 = open)."""
    return (np.asarray(gripper, dtype=np.float64) > 0).astype(np.float64)


def quat_wxyz_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z), SAPIEN's order -> axis-angle [3] with the angle in [0, pi]."""
    w, x, y, z = (float(v) for v in quat)
    if w < 0:  # q and -q are the same rotation; pick the one with angle <= pi
        w, x, y, z = -w, -x, -y, -z
    w = min(w, 1.0)
    den = math.sqrt(max(1.0 - w * w, 0.0))
    if den < 1e-12:
        return np.zeros(3)
    return np.array([x, y, z]) * (2.0 * math.acos(w) / den)


def proprio(tcp_pos: np.ndarray, tcp_quat_wxyz: np.ndarray, finger_qpos: np.ndarray) -> np.ndarray:
    """float32 [8]: TCP position (3), TCP axis-angle (3), finger joint positions (2)."""
    return np.concatenate(
        [
            np.asarray(tcp_pos, dtype=np.float64),
            quat_wxyz_to_axis_angle(tcp_quat_wxyz),
            np.asarray(finger_qpos, dtype=np.float64),
        ]
    ).astype(np.float32)


def action_statistics(num_transitions: int = 0, num_trajectories: int = 0) -> dict:
    """Dataset statistics in OpenVLA-OFT's layout covering the whole action range: q01/q99 = -1/+1
    for the six pose deltas (BOUNDS_Q99 un-normalisation is then the identity), the gripper
    unnormalised in [0, 1]. For policies that start before any demonstration (tests, RL from
    scratch); an SFT run writes statistics of its demonstrations instead."""
    dims = ACTION_DIM
    lo, hi = [-1.0] * (dims - 1) + [0.0], [1.0] * dims
    return {
        "action": {
            "mean": [0.0] * (dims - 1) + [0.5],
            "std": [0.5] * dims,
            "min": lo,
            "max": hi,
            "q01": lo,
            "q99": hi,
            "mask": [True] * (dims - 1) + [False],
        },
        "proprio": {
            # TCP position, axis-angle and finger joints over the Panda tabletop workspace.
            "mean": [0.0, 0.0, 0.15, 0.0, 0.0, 0.0, 0.02, 0.02],
            "std": [0.2, 0.2, 0.1, 2.0, 2.0, 2.0, 0.02, 0.02],
            "min": [-0.6, -0.6, 0.0, -math.pi, -math.pi, -math.pi, 0.0, 0.0],
            "max": [0.6, 0.6, 0.6, math.pi, math.pi, math.pi, 0.04, 0.04],
            "q01": [-0.5, -0.5, 0.0, -math.pi, -math.pi, -math.pi, 0.0, 0.0],
            "q99": [0.5, 0.5, 0.5, math.pi, math.pi, math.pi, 0.04, 0.04],
        },
        "num_transitions": num_transitions,
        "num_trajectories": num_trajectories,
    }
