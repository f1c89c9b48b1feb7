"""A scripted expert with privileged state for the cube tasks (PickCube, PushCube, PullCube, StackCube).

It reads `obs["privileged"]` (env.maniskill.privileged_obs=True: TCP pose, actor poses) and returns
policy-convention actions (6 pose deltas in [-1, 1] = +-0.1 m / +-0.1 rad, gripper 1 = open). Each
task is a list of phases; a phase holds a TCP target computed from the current state and ends when
the TCP is within tolerance (or after a fixed number of steps for the gripper). A proportional
controller moves the TCP; the yaw is turned to the cube's faces (mod 90 degrees) before a grasp.

Used to collect SFT demonstrations (scripts/collect_demos.py --env maniskill) and measured by
scripts/bench/expert_success.py --env maniskill. This is our own expert, not ManiSkill's
motion-planning solutions (those plan joint-space paths for pd_joint_pos control).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# Action units per metre of TCP error (1.0 = the controller's 0.1 m step); the PD controller lags,
# so a gain above 10 closes most of the error in one step without overshoot on these tasks.
POS_GAIN = 12.0
# Action units per radian of yaw error (1.0 = 0.1 rad).
YAW_GAIN = 8.0
CUBE_HALF = 0.02
OPEN, CLOSED = 1.0, 0.0

State = dict[str, np.ndarray]


def yaw_of(quat_wxyz: np.ndarray) -> float:
    """Rotation about world z of the frame's x axis."""
    w, x, y, z = (float(v) for v in quat_wxyz)
    return math.atan2(2 * (x * y + w * z), 1 - 2 * (y * y + z * z))


def face_yaw_error(target_yaw: float, tcp_yaw: float) -> float:
    """Yaw error to the nearest of the cube's four face directions, in [-pi/4, pi/4]."""
    return (target_yaw - tcp_yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


@dataclass
class Phase:
    """Move the TCP to `target(state)` with the gripper at `gripper`; done within `tol` metres (and
    the yaw aligned when `align` names a cube), or after `steps` steps when `steps` is set. With
    `freeze` the target is computed once, when the phase starts (targets relative to the TCP)."""

    target: Callable[[State], np.ndarray] | None
    gripper: float
    tol: float = 0.01
    align: str | None = None
    steps: int | None = None
    freeze: bool = False


def _above(key: str, dz: float, dx: float = 0.0) -> Callable[[State], np.ndarray]:
    return lambda s: s[f"{key}_pos"] + np.array([dx, 0.0, dz])


def _pick(cube: str) -> list[Phase]:
    return [
        Phase(_above(cube, 0.08), OPEN, tol=0.015, align=cube),
        Phase(_above(cube, 0.0), OPEN, tol=0.006, align=cube),
        Phase(None, CLOSED, steps=5),
    ]


def _tasks() -> dict[str, list[Phase]]:
    def push_to(sign: float) -> Callable[[State], np.ndarray]:
        # Keep the TCP behind the cube on the line to the goal; stop when the cube is on the goal.
        def target(s: State) -> np.ndarray:
            goal, cube = s["goal_region_pos"], s["cube_pos"]
            return np.array([goal[0] - sign * 0.035, cube[1], 0.015])

        return target

    return {
        "PickCube-v1": [*_pick("cube"), Phase(lambda s: s["goal_site_pos"], CLOSED, tol=0.0)],
        "PushCube-v1": [
            Phase(_above("cube", 0.05, dx=-0.06), CLOSED, tol=0.01),
            Phase(lambda s: s["cube_pos"] + np.array([-0.06, 0.0, -0.005]), CLOSED, tol=0.008),
            Phase(push_to(+1.0), CLOSED, tol=0.0),
        ],
        "PullCube-v1": [
            Phase(_above("cube", 0.05, dx=0.06), CLOSED, tol=0.01),
            Phase(lambda s: s["cube_pos"] + np.array([0.06, 0.0, -0.005]), CLOSED, tol=0.008),
            Phase(push_to(-1.0), CLOSED, tol=0.0),
        ],
        "StackCube-v1": [
            *_pick("cubeA"),
            Phase(
                lambda s: s["tcp_pos"] * [1, 1, 0] + [0, 0, s["cubeB_pos"][2] + 0.08],
                CLOSED,
                tol=0.015,
                freeze=True,
            ),
            Phase(_above("cubeB", 0.08), CLOSED, tol=0.01),
            Phase(_above("cubeB", 2 * CUBE_HALF + 0.004), CLOSED, tol=0.005),
            Phase(None, OPEN, steps=4),
            Phase(lambda s: s["tcp_pos"] + [0, 0, 0.05], OPEN, tol=0.0, freeze=True),
        ],
    }


PHASES = _tasks()
SUPPORTED = tuple(PHASES)


class ScriptedExpert:
    """Closed-loop expert for one episode of `env_id`; call `act` with each step's privileged state."""

    def __init__(self, env_id: str):
        if env_id not in PHASES:
            raise ValueError(f"no scripted expert for {env_id!r}; supported: {list(SUPPORTED)}")
        self.phases = PHASES[env_id]
        self.index = 0
        self.count = 0
        self._fixed: np.ndarray | None = None

    def act(self, state: State) -> np.ndarray:
        """The next action [7] in the policy convention."""
        while True:
            phase = self.phases[self.index]
            if phase.target is None:  # gripper only, for a fixed number of steps
                if self.count < (phase.steps or 0):
                    self.count += 1
                    return np.array([0, 0, 0, 0, 0, 0, phase.gripper], dtype=np.float64)
            else:
                if self._fixed is None:
                    self._fixed = phase.target(state)
                target = self._fixed if phase.freeze else phase.target(state)
                error = target - state["tcp_pos"]
                yaw_err = 0.0
                if phase.align is not None:
                    yaw_err = face_yaw_error(yaw_of(state[f"{phase.align}_quat"]), yaw_of(state["tcp_quat"]))
                last = self.index == len(self.phases) - 1
                if last or np.linalg.norm(error) > phase.tol or abs(yaw_err) > 0.05:
                    action = np.zeros(7)
                    action[:3] = np.clip(POS_GAIN * error, -1.0, 1.0)
                    action[5] = np.clip(-YAW_GAIN * yaw_err, -1.0, 1.0)  # +z action turns the TCP clockwise
                    action[6] = phase.gripper
                    return action
            self.index, self.count, self._fixed = self.index + 1, 0, None
