"""A scripted pick-and-place expert for LIBERO, driven by privileged simulator state.

It solves tasks whose goal is "(On|In) <object> <target>" (libero_object, libero_spatial) and acts
like a policy: `act(obs)` takes the observation dict of the env layer (with obs["privileged"], see
verl.envs.libero.privileged) and returns an action chunk [chunk, 7] in the POLICY convention
(6 delta-eef dims in LIBERO's action units, gripper 1 = open, 0 = close). It runs in the main
process and needs numpy only.

Control: a proportional controller on the grip-site position (speed capped) and orientation
(fingers down, closing axis at the grasp yaw), through phases approach -> descend -> close -> lift
-> carry -> lower -> release -> retreat. An object put "on" a target is lowered until its base
touches the target's surface under it (or stops descending), so that it does not drop; the hand
then holds still until the fingers are open and leaves straight up, so that the fingers do not
drag the object off-centre (LIBERO's "on" needs the two bodies within 3 cm). Within a chunk the
expert predicts its own motion with a kinematic model (measured: ~1.25 cm per step per action
unit, ~0.107 rad per step per rotation unit), so chunks of 8 can run open loop; with chunk=1 it is
closed loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verl.envs.libero.grasp import Grasp, plan_grasp, plan_push

POS_GAIN = 20.0  # action units per metre of position error
ROT_GAIN = 3.0  # action units per radian of orientation error
MAX_POS_ACTION = 1.0
MAX_ROT_ACTION = 0.5
METRES_PER_UNIT_STEP = 0.0125  # measured steady-state eef speed per action unit
RADIANS_PER_UNIT_STEP = 0.107
PRE_GRASP_M = 0.08  # approach height above the grasp
# Turning the wrist while the arm swings out fast makes it overshoot into its elbow limit when the
# object is far from the base; the approach slows down until the wrist error is below this.
TURN_FIRST_RAD = 0.5
CARRY_CLEARANCE_M = 0.04  # carried object's bottom above obstacles on the way
CLOSE_STEPS = 12
RELEASE_MAX_STEPS = 20  # the fingers take ~10 steps to open; stop waiting after this many
OPENED_WIDTH_M = 0.07  # finger joint span (qpos[0] - qpos[1]) that counts as open (fully: 0.08)
SET_DOWN_GAP_M = 0.002  # object base above the target surface when lowering stops
BASE_BAND_M = 0.005  # object points this close to its bottom form its base
FOOTPRINT_MARGIN_M = 0.015  # target points this far outside the base's radius still support it
STALL_STEPS = 6
OPEN, CLOSE = 1.0, 0.0

APPROACH, DESCEND, GRIP, LIFT, CARRY, LOWER, RELEASE, RETREAT, PUSH = range(9)
PUSH_TRAVEL_M = 0.06  # closed fingers' travel when sliding an object out from under an overhang


def _axis_angle(rot: np.ndarray) -> np.ndarray:
    """Axis-angle [3] of a rotation matrix [3, 3]."""
    cos = np.clip((np.trace(rot) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([rot[2, 1] - rot[1, 2], rot[0, 2] - rot[2, 0], rot[1, 0] - rot[0, 1]])
    norm = np.linalg.norm(axis)
    if norm < 1e-9:  # angle near pi: axis from the symmetric part
        w, vecs = np.linalg.eigh((rot + rot.T) / 2)
        return vecs[:, np.argmax(w)] * angle
    return axis / norm * angle


def _rotation(vec: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector [3] (Rodrigues)."""
    angle = np.linalg.norm(vec)
    if angle < 1e-12:
        return np.eye(3)
    k = vec / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def _down_frame(yaw: float) -> np.ndarray:
    """Grip-site frame with z pointing down and x (closing axis) at `yaw`."""
    x = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    z = np.array([0.0, 0.0, -1.0])
    return np.stack([x, np.cross(z, x), z], axis=1)


@dataclass
class _Estimate:
    """What the expert believes about the scene at the current step."""

    eef: np.ndarray  # [3]
    rot: np.ndarray  # [3, 3]
    points: np.ndarray  # [N, 3] target collision points
    qpos: np.ndarray  # [2]


class ScriptedPickPlaceExpert:
    """Pick-and-place expert; see the module docstring.

    Args:
        chunk: actions returned per `act` call (8 = open loop as in RL; 1 = closed loop).
    """

    def __init__(self, chunk: int = 1):
        if chunk < 1:
            raise ValueError(f"chunk: must be >= 1, got {chunk}")
        self.chunk = chunk
        self._grasp: Grasp | None = None

    def reset(self, privileged: dict, instruction: str = "") -> None:
        """Start an episode from the first observation's privileged state."""
        goal = [str(x) for x in privileged["goal"]]
        if len(goal) != 3 or goal[0].lower() not in ("on", "in") or "target_points" not in privileged:
            raise ValueError(
                f"goal: the expert handles '(On|In) <object> <target>' goals, got {goal} ({instruction!r})"
            )
        self._inside = goal[0].lower() == "in"
        self._obstacles = (
            privileged["obstacle_centre"],
            privileged["obstacle_half"],
            privileged["obstacle_rot"],
        )
        self._place_pos = np.asarray(privileged["place_pos"], dtype=np.float64)
        self._place_size = np.asarray(privileged["place_size"], dtype=np.float64)
        self._place_points = np.asarray(privileged["place_points"], dtype=np.float64)
        base = privileged.get("robot_base_pos")
        self._base_xy = None if base is None else np.asarray(base, dtype=np.float64)[:2]
        self._surface_z = self._surface_under(np.asarray(privileged["target_points"], dtype=np.float64))
        self._release_at: np.ndarray | None = None
        self._phase, self._phase_steps, self._best_err, self._stall = APPROACH, 0, np.inf, 0
        self._carry_z = None
        self._retries = 0
        self._held: tuple | None = None
        self._pushed = False
        self._waypoints: list[np.ndarray] = []
        self._plan(privileged["target_points"], self._yaw(privileged["grip_rot"]))

    # ------------------------------------------------------------------ planning
    @staticmethod
    def _yaw(rot: np.ndarray) -> float:
        return float(np.arctan2(rot[1, 0], rot[0, 0]))

    def _plan(self, points: np.ndarray, yaw: float) -> None:
        """Plan the grasp; when none is collision-free, first push the object from under overhangs."""
        points = np.asarray(points, dtype=np.float64)
        reach = None if self._base_xy is None else (self._base_xy, self._place_xy())
        self._grasp, free = plan_grasp(points, self._obstacles, yaw, reach)
        self._frame = _down_frame(self._grasp.yaw)
        push = None if free or self._pushed else plan_push(points, self._obstacles)
        if push is not None:
            start, direction, push_yaw = push
            up = np.array([0.0, 0.0, PRE_GRASP_M])
            end = start + direction * PUSH_TRAVEL_M
            self._waypoints = [start + up, start, end, end + up / 2]
            self._frame = _down_frame(yaw + (push_yaw - yaw + np.pi / 2) % np.pi - np.pi / 2)
            self._pushed = True
            self._advance(PUSH)

    def _place_xy(self) -> np.ndarray:
        if self._inside or len(self._place_points) == 0:
            return self._place_pos[:2]
        return (self._place_points[:, :2].min(0) + self._place_points[:, :2].max(0)) / 2

    def _surface_under(self, points: np.ndarray) -> float:
        """Height of the placement target under the base of the object (points [N, 3]) once centred on it.

        The highest target point within the base's radius (plus a margin) of the placement centre;
        the target's top when none is (its collision points are sparse: box corners).
        """
        if not len(self._place_points):
            return float(self._place_pos[2])
        centre = (points[:, :2].min(0) + points[:, :2].max(0)) / 2
        base = points[points[:, 2] < points[:, 2].min() + BASE_BAND_M]
        radius = np.linalg.norm(base[:, :2] - centre, axis=1).max() + FOOTPRINT_MARGIN_M
        under = np.linalg.norm(self._place_points[:, :2] - self._place_xy(), axis=1) < radius
        return float(self._place_points[under if under.any() else slice(None), 2].max())

    def _release_bottom_z(self) -> float:
        """Height of the carried object's bottom at release."""
        if self._inside:  # a few cm above the floor of the container region
            return float(self._place_pos[2] - self._place_size[2] + 0.03)
        return self._surface_z + SET_DOWN_GAP_M

    def _carry_height(self, est: _Estimate) -> float:
        """Grip-site height that keeps the carried object clear of everything between here and the target."""
        hang = est.eef[2] - est.points[:, 2].min()
        start, end = est.eef[:2], self._place_xy()
        tops = [self._release_bottom_z() + 0.05]
        if len(self._place_points):
            tops.append(self._place_points[:, 2].max())
        centre, half, rot = self._obstacles
        extent = np.abs(rot) @ half[:, :, None] if len(centre) else np.zeros((0, 3, 1))
        seg = end - start
        for c, e in zip(centre, extent[..., 0]):
            t = np.clip(np.dot(c[:2] - start, seg) / max(np.dot(seg, seg), 1e-9), 0, 1)
            if np.linalg.norm(c[:2] - (start + t * seg)) < 0.06 + max(e[0], e[1]):
                tops.append(c[2] + e[2])
        return float(max(tops) + CARRY_CLEARANCE_M + hang)

    # ------------------------------------------------------------------ control
    def _motion(self, est: _Estimate, target: np.ndarray, grip: float, speed: float = 1.0) -> np.ndarray:
        """Action towards `target` [3] at up to `speed` times the top speed; the wrist turns to the frame."""
        limit = MAX_POS_ACTION * speed
        dpos = np.clip(POS_GAIN * (target - est.eef), -limit, limit)
        drot = np.clip(ROT_GAIN * _axis_angle(self._frame @ est.rot.T), -MAX_ROT_ACTION, MAX_ROT_ACTION)
        return np.concatenate([dpos, drot, [grip]])

    def _advance(self, phase: int) -> None:
        self._phase, self._phase_steps, self._best_err, self._stall = phase, 0, np.inf, 0

    def _reached(self, err: float, tol: float) -> bool:
        """Target reached, or no progress for a while (contact)."""
        if err < self._best_err - 5e-4:
            self._best_err, self._stall = err, 0
        else:
            self._stall += 1
        return err < tol or self._stall >= STALL_STEPS

    def _policy_step(self, est: _Estimate) -> np.ndarray:
        g = self._grasp
        assert g is not None
        self._phase_steps += 1
        if self._phase == PUSH:
            target = self._waypoints[0]
            if self._reached(np.linalg.norm(target - est.eef), 0.01):
                self._waypoints.pop(0)
                self._best_err, self._stall = np.inf, 0
                if not self._waypoints:
                    self._plan(est.points, self._yaw(est.rot))
                    if self._phase == PUSH:
                        self._advance(APPROACH)
            return self._motion(est, target, CLOSE)
        if self._phase == APPROACH:
            target = g.pos + [0, 0, PRE_GRASP_M]
            rot_err = np.linalg.norm(_axis_angle(self._frame @ est.rot.T))
            if self._reached(np.linalg.norm(target - est.eef), 0.012) and rot_err < 0.08:
                self._advance(DESCEND)
            return self._motion(est, target, OPEN, speed=min(1.0, TURN_FIRST_RAD / max(rot_err, 1e-9)))
        if self._phase == DESCEND:
            if self._reached(np.linalg.norm(g.pos - est.eef), 0.006):
                self._advance(GRIP)
            return self._motion(est, g.pos, OPEN)
        if self._phase == GRIP:
            if self._phase_steps >= CLOSE_STEPS:
                self._advance(LIFT)
            return self._motion(est, g.pos, CLOSE)
        if self._phase == LIFT:
            if self._carry_z is None:
                self._carry_z = self._carry_height(est)
            target = np.array([g.pos[0], g.pos[1], self._carry_z])
            if self._reached(abs(target[2] - est.eef[2]), 0.02):
                self._advance(CARRY)
            return self._motion(est, target, CLOSE)
        centre_xy = (est.points[:, :2].min(0) + est.points[:, :2].max(0)) / 2
        goal_xy = self._place_xy() + (est.eef[:2] - centre_xy)
        if self._phase == CARRY:
            target = np.array([goal_xy[0], goal_xy[1], self._carry_z])
            if self._reached(np.linalg.norm(target[:2] - est.eef[:2]), 0.008):
                self._advance(LOWER)
            return self._motion(est, target, CLOSE)
        if self._phase == LOWER:
            drop = est.points[:, 2].min() - self._release_bottom_z()
            target = np.array([goal_xy[0], goal_xy[1], est.eef[2] - drop])
            if self._reached(max(drop, 0.0), 0.004):
                self._advance(RELEASE)
            return self._motion(est, target, CLOSE)
        if self._phase == RELEASE:  # hold still while the fingers open
            if self._release_at is None:
                self._release_at = est.eef.copy()
            opened = est.qpos[0] - est.qpos[1] >= OPENED_WIDTH_M
            if opened or self._phase_steps >= RELEASE_MAX_STEPS:
                self._advance(RETREAT)
            return self._motion(est, self._release_at, OPEN)
        above = self._release_at if self._release_at is not None else est.eef
        return self._motion(est, np.array([above[0], above[1], est.eef[2] + 0.05]), OPEN)

    def _check_grasp(self, p: dict) -> None:
        """Back to the approach when the object does not follow the hand (live state only)."""
        points, eef = np.asarray(p["target_points"]), np.asarray(p["eef_pos"])
        if self._phase == GRIP:
            self._held = (eef.copy(), points.min(0), points.max(0))
            return
        if self._phase not in (LIFT, CARRY, LOWER) or self._held is None:
            return
        eef0, lo0, hi0 = self._held
        moved = eef - eef0
        obj_moved = (points.min(0) + points.max(0)) / 2 - (lo0 + hi0) / 2
        lost = np.linalg.norm(moved - obj_moved) > 0.04
        if lost and self._retries < 2:
            self._retries += 1
            self._carry_z, self._held = None, None
            self._advance(APPROACH)
            self._plan(points, self._yaw(p["grip_rot"]))

    def act(self, obs: dict) -> np.ndarray:
        """Actions [chunk, 7] (policy convention) from an observation with obs["privileged"]."""
        p = obs["privileged"]
        if self._grasp is None:
            raise RuntimeError("reset() must be called before act()")
        self._check_grasp(p)
        if self._phase == APPROACH and self._phase_steps > 0:
            self._plan(p["target_points"], self._grasp.yaw)  # follow the object while it settles
        est = _Estimate(
            eef=np.array(p["eef_pos"], dtype=np.float64),
            rot=np.array(p["grip_rot"], dtype=np.float64),
            points=np.array(p["target_points"], dtype=np.float64),
            qpos=np.array(p["gripper_qpos"], dtype=np.float64),
        )
        actions = np.zeros((self.chunk, 7), dtype=np.float32)
        for k in range(self.chunk):
            action = self._policy_step(est)
            actions[k] = action
            # Predict the effect of this action for the rest of the chunk.
            delta = action[:3] * METRES_PER_UNIT_STEP
            est.eef = est.eef + delta
            est.rot = _rotation(action[3:6] * RADIANS_PER_UNIT_STEP) @ est.rot
            if self._phase in (LIFT, CARRY, LOWER):
                est.points = est.points + delta
        return actions
