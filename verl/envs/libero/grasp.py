"""Grasp planning from privileged geometry (numpy only; used by the scripted expert).

Frames: the gripper's grip site, with its z axis pointing down and the fingers closing along its
x axis (the "closing axis", at yaw `yaw` in the world xy plane). Measured on the Panda gripper of
LIBERO: finger inner faces 3.9 cm from the site when fully open, fingers 2.6 cm thick, 2 cm wide,
from 0.9 cm below the site to 4.4 cm above it; the hand spans +-10 cm along the closing axis,
+-3.2 cm across it, from 3.1 to 12.3 cm above the site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OPEN_INNER_M = 0.039  # finger inner face to the site, fully open
FINGER_THICK_M = 0.026
FINGER_BELOW_M = 0.009  # fingertips below the site
MAX_STRADDLE_WIDTH_M = 0.07  # widest object section the open fingers fit around
RIM_INSET_M = 0.009  # site inside the outer rim edge for a rim grasp
RIM_DEPTH_M = 0.02  # site below the local rim top for a rim grasp
STRADDLE_DEPTH_M = 0.025  # site below the object's top for a straddle grasp
CLEARANCE_M = 0.004  # margin kept from obstacles
# Setting an object down far from the robot base stretches the arm to its elbow limit, where the
# hand stops short of the target; grasps that leave the hand nearer the base there are preferred.
FREE_REACH_M = 0.68  # horizontal base-to-hand distance at the placement that costs nothing
REACH_COST_PER_M = 100.0  # ranking cost (as radians of wrist rotation) per metre beyond FREE_REACH_M


@dataclass
class Grasp:
    """Where the grip site goes to grasp, and how the fingers are turned."""

    pos: np.ndarray  # [3] grip-site position at the grasp
    yaw: float  # closing-axis angle in the world xy plane, radians
    kind: str  # "straddle" (fingers on both sides of the object) or "rim" (one finger inside)


def _gripper_points(pos: np.ndarray, yaw: float) -> np.ndarray:
    """Sample points [N, 3] filling the open fingers and the hand at a site pose."""
    u = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    v = np.array([-np.sin(yaw), np.cos(yaw), 0.0])
    z = np.array([0.0, 0.0, 1.0])
    pts = []
    for side in (-1.0, 1.0):
        for a in np.linspace(OPEN_INNER_M, OPEN_INNER_M + FINGER_THICK_M, 3):
            for b in (-0.01, 0.0, 0.01):
                for h in np.linspace(-FINGER_BELOW_M, 0.044, 5):
                    pts.append(side * a * u + b * v + h * z)
    for a in np.linspace(-0.1, 0.1, 9):
        for b in (-0.032, 0.0, 0.032):
            for h in np.linspace(0.031, 0.123, 4):
                pts.append(a * u + b * v + h * z)
    return np.asarray(pts) + pos


def collides(
    points: np.ndarray, centre: np.ndarray, half: np.ndarray, rot: np.ndarray, margin: float
) -> bool:
    """Whether any point [N, 3] lies inside any oriented box (centre [K,3], half [K,3], rot [K,3,3])."""
    if len(centre) == 0:
        return False
    local = np.einsum("kji,knj->kni", rot, points[None, :, :] - centre[:, None, :])  # [K, N, 3]
    inside = np.all(np.abs(local) <= half[:, None, :] + margin, axis=-1)
    return bool(inside.any())


def sweep_free(pos: np.ndarray, yaw: float, obstacles: tuple, lift: float = 0.1) -> bool:
    """The open gripper can descend vertically from `lift` above `pos` down to `pos` without contact."""
    return not any(
        collides(_gripper_points(pos + [0, 0, dz], yaw), *obstacles, CLEARANCE_M)
        for dz in np.linspace(0.0, lift, 5)
    )


def _wrap_half_turn(angle: float) -> float:
    """Angle in (-pi/2, pi/2]: a closing axis and its opposite are the same grasp."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def is_hollow(points: np.ndarray) -> bool:
    """Open containers (bowls): points near the xy centre exist but lie well below the top."""
    centre = (points[:, :2].min(0) + points[:, :2].max(0)) / 2
    radius = np.linalg.norm(points[:, :2] - centre, axis=1)
    inner = radius < 0.3 * radius.max()
    return bool(inner.any() and points[inner, 2].max() < points[:, 2].max() - 0.02)


def _straddle_candidates(points: np.ndarray) -> list[tuple[float, Grasp]]:
    if is_hollow(points):
        return []
    top, bottom = points[:, 2].max(), points[:, 2].min()
    gz = max(top - STRADDLE_DEPTH_M, bottom + FINGER_BELOW_M + 0.003)
    band = points[points[:, 2] >= gz - FINGER_BELOW_M]
    out = []
    for yaw in np.deg2rad(np.arange(0, 180, 10)):
        u = np.array([np.cos(yaw), np.sin(yaw)])
        v = np.array([-u[1], u[0]])
        pu, pv = band[:, :2] @ u, band[:, :2] @ v
        width = pu.max() - pu.min()
        if width > MAX_STRADDLE_WIDTH_M:
            continue
        xy = u * (pu.max() + pu.min()) / 2 + v * (pv.max() + pv.min()) / 2
        out.append((width, Grasp(pos=np.array([xy[0], xy[1], gz]), yaw=float(yaw), kind="straddle")))
    return out


def _rim_candidates(points: np.ndarray) -> list[tuple[float, Grasp]]:
    """Rim grasps every 15 degrees, at two depths; the inside finger's tip stays above the object there."""
    centre = (points[:, :2].min(0) + points[:, :2].max(0)) / 2
    rel = points[:, :2] - centre
    radius = np.linalg.norm(rel, axis=1)
    angle = np.arctan2(rel[:, 1], rel[:, 0])
    outer = radius > 0.7 * radius.max()
    out = []
    for phi in np.deg2rad(np.arange(0, 360, 15)):
        diff = np.abs((angle - phi + np.pi) % (2 * np.pi) - np.pi)
        sector = outer & (diff < np.deg2rad(12))
        if sector.sum() < 3:
            continue
        r_out, z_rim = radius[sector].max(), points[sector, 2].max()
        w = np.array([np.cos(phi), np.sin(phi)])
        xy = centre + w * (r_out - RIM_INSET_M)
        # Object points under the inside finger (towards the centre, 3.9-6.5 cm from the site, +-1 cm).
        along = (points[:, :2] - xy) @ w
        across = np.abs((points[:, :2] - xy) @ np.array([-w[1], w[0]]))
        under = (
            (along < -OPEN_INNER_M + 0.01) & (along > -OPEN_INNER_M - FINGER_THICK_M - 0.01) & (across < 0.02)
        )
        floor = points[under, 2].max() + FINGER_BELOW_M + 0.004 if under.any() else -np.inf
        for depth, penalty in ((RIM_DEPTH_M, 0.0), (0.012, 0.3)):
            z = max(z_rim - depth, floor)
            if z <= z_rim - 0.008:  # the pads still reach below the rim
                out.append((penalty, Grasp(pos=np.array([xy[0], xy[1], z]), yaw=float(phi), kind="rim")))
    return out


def _reach_cost(grasp: Grasp, points: np.ndarray, reach: tuple[np.ndarray, np.ndarray] | None) -> float:
    """Cost of the hand's distance from the robot base once the object is centred on the target.

    reach: (base_xy [2], place_xy [2]) or None (no cost).
    """
    if reach is None:
        return 0.0
    base_xy, place_xy = reach
    centre = (points[:, :2].min(0) + points[:, :2].max(0)) / 2
    hand_xy = np.asarray(place_xy) + grasp.pos[:2] - centre
    return REACH_COST_PER_M * max(0.0, float(np.linalg.norm(hand_xy - base_xy)) - FREE_REACH_M)


def plan_grasp(
    points: np.ndarray,
    obstacles: tuple,
    current_yaw: float,
    reach: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[Grasp, bool]:
    """Pick a grasp of the object whose collision points are `points` [N, 3].

    Straddle grasps across the narrowest section that fits the open fingers come first; objects
    too wide for that (bowls) get a rim grasp, with one finger inside. Among collision-free grasps
    the one needing the least wrist rotation wins, with a preference for narrow sections (4 cm of
    width weigh like 1.6 rad of rotation), deep rim grasps and, given `reach` = (robot base xy,
    placement xy), a hand near enough to the base when the object is set down.
    Returns (grasp, collision_free); when nothing is collision-free, the best grasp ignoring
    obstacles comes with False.
    """

    def cost(item: tuple[float, Grasp]) -> float:
        penalty, grasp = item
        turn = abs(_wrap_half_turn(grasp.yaw - current_yaw))
        return penalty * 40 + turn + _reach_cost(grasp, points, reach)

    fallback = None
    for family in (_straddle_candidates(points), _rim_candidates(points)):
        if not family:
            continue
        ranked = sorted(family, key=cost)
        fallback = fallback or ranked[0][1]
        for _, grasp in ranked:
            if sweep_free(grasp.pos, grasp.yaw, obstacles):
                grasp.yaw = current_yaw + _wrap_half_turn(grasp.yaw - current_yaw)
                return grasp, True
    if fallback is None:
        raise ValueError("target_points: no grasp found (object wider than the gripper and without a rim)")
    fallback.yaw = current_yaw + _wrap_half_turn(fallback.yaw - current_yaw)
    return fallback, False


def _corners(centre: np.ndarray, half: np.ndarray, rot: np.ndarray) -> np.ndarray:
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    return (signs * half) @ rot.T + centre


def plan_push(points: np.ndarray, obstacles: tuple) -> tuple[np.ndarray, np.ndarray, float] | None:
    """A push that slides the object out from under obstacles hanging over it (a bowl in a drawer).

    Returns (start, direction, yaw): the closed fingers go down to `start` [3] inside the object,
    then move along the horizontal unit `direction` [3]; `yaw` turns the hand's thin side towards
    the push. None when nothing hangs over the object.
    """
    lo, hi = points.min(0), points.max(0)
    over = []
    for c, h, r in zip(*obstacles):
        box = _corners(c, h, r)
        b_lo, b_hi = box.min(0), box.max(0)
        if b_lo[2] >= hi[2] - 0.01 and np.all(b_lo[:2] < hi[:2]) and np.all(b_hi[:2] > lo[:2]):
            over.append((c[:2], b_hi[2]))
    if not over:
        return None
    centre = (lo + hi) / 2
    away = centre[:2] - np.mean([c for c, _ in over], axis=0)
    direction = np.array([*away / max(np.linalg.norm(away), 1e-9), 0.0])
    # The hand's bottom (3.1 cm above the site) passes over the overhanging obstacles.
    z = max(hi[2] - RIM_DEPTH_M, max(top for _, top in over) + 0.005 - 0.031)
    if z - FINGER_BELOW_M > hi[2] - 0.005:
        return None  # the fingertips would not reach into the object
    yaw = float(np.arctan2(direction[1], direction[0]) + np.pi / 2)
    return np.array([centre[0], centre[1], z]), direction, yaw
