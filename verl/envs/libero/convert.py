"""Pure conversions between LIBERO's conventions and the policy's (no simulator import)."""

from __future__ import annotations

import math

import numpy as np

ACTION_DIM = 7
# eef position (3), eef axis-angle (3), gripper finger qpos (2).
PROPRIO_DIM = 8
# Zero motion with the gripper open, in LIBERO's convention (-1 open, +1 close); sent during the wait steps.
DUMMY_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float64)


def policy_to_libero_actions(actions: np.ndarray) -> np.ndarray:
    """Policy actions [k, 7] (gripper in [0, 1], 1 = open) -> LIBERO actions [k, 7] (gripper -1 open, +1 close).

    The gripper is binarised with sign(2g - 1) and then negated, as in OpenVLA-OFT's evaluation;
    exactly g = 0.5 maps to 0 (sign(0)).
    """
    out = np.array(actions, dtype=np.float64, copy=True)
    out[:, -1] = -np.sign(2.0 * out[:, -1] - 1.0)
    return out


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) -> axis-angle [3] (axis times angle), robosuite's formula.

    w is clipped to [-1, 1]; a rotation with sin(angle/2) ~ 0 gives zeros.
    """
    x, y, z, w = (float(v) for v in quat_xyzw)
    w = min(max(w, -1.0), 1.0)
    den = math.sqrt(1.0 - w * w)
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return np.array([x, y, z]) * (2.0 * math.acos(w) / den)


def proprio_from_obs(raw_obs: dict[str, np.ndarray]) -> np.ndarray:
    """float32 [8]: eef position (3), eef axis-angle (3), gripper finger qpos (2)."""
    return np.concatenate(
        [
            np.asarray(raw_obs["robot0_eef_pos"], dtype=np.float64),
            quat_to_axis_angle(raw_obs["robot0_eef_quat"]),
            np.asarray(raw_obs["robot0_gripper_qpos"], dtype=np.float64),
        ]
    ).astype(np.float32)


def upright(image: np.ndarray) -> np.ndarray:
    """LIBERO cameras render upside down: rotate 180 degrees (flip H and W), contiguous uint8 copy."""
    return np.ascontiguousarray(image[::-1, ::-1], dtype=np.uint8)
