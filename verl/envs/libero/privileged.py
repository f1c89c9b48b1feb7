"""Privileged simulator state for scripted experts (obs["privileged"] when env.libero.privileged_obs=True).

`privileged_state(env)` is the one entry point the env worker calls. It returns plain numpy arrays
and strings only, so the expert can run in the main process like a policy. Quaternions are
(x, y, z, w), robosuite's convention; positions are in the world frame, in metres.

Geometry comes from the collision geoms (meshes: their vertices; primitives: corner / ring points),
because body origins are neither centres nor tops. Obstacles are oriented boxes: a geom's world
centre, half extents and rotation, taken from the extent of its points in its own frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Obstacles farther than this (xy, metres) from the target object and the placement target are left out.
OBSTACLE_RADIUS_M = 0.3


def _xyzw(quat_wxyz: np.ndarray) -> np.ndarray:
    return np.asarray(quat_wxyz, dtype=np.float64)[[1, 2, 3, 0]].copy()


def _mat_to_xyzw(mat: np.ndarray) -> np.ndarray:
    import mujoco

    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(mat, dtype=np.float64).reshape(9))
    return _xyzw(quat)


def _local_points(model: Any, geom: int) -> np.ndarray | None:
    """Points [N, 3] spanning a collision geom, in the geom's frame (None for planes / unsupported)."""
    import mujoco

    kind, size = model.geom_type[geom], model.geom_size[geom]
    if kind == mujoco.mjtGeom.mjGEOM_MESH:
        mesh = model.geom_dataid[geom]
        start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
        return np.array(model.mesh_vert[start : start + count], dtype=np.float64)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        return corners * size
    if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        return corners * size[0]
    if kind in (mujoco.mjtGeom.mjGEOM_CYLINDER, mujoco.mjtGeom.mjGEOM_CAPSULE):
        ang = np.linspace(0.0, 2.0 * np.pi, 16, endpoint=False)
        half = size[1] + (size[0] if kind == mujoco.mjtGeom.mjGEOM_CAPSULE else 0.0)
        ring = np.stack([size[0] * np.cos(ang), size[0] * np.sin(ang), np.zeros(16)], axis=1)
        return np.concatenate([ring + [0, 0, -half], ring + [0, 0, half]])
    return None


class _GeomCache:
    """Per-model constants: each body's collision geoms and each geom's local points."""

    def __init__(self, model: Any):
        self.model_ptr = id(model)
        collide = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
        self.points: dict[int, np.ndarray] = {}
        for g in np.flatnonzero(collide):
            pts = _local_points(model, int(g))
            if pts is not None and len(pts):
                self.points[int(g)] = pts
        self.parent = np.asarray(model.body_parentid)
        self.geom_body = np.asarray(model.geom_bodyid)
        self._subtrees: dict[int, list[int]] = {}

    def subtree_geoms(self, root: int) -> list[int]:
        """Collision geoms of body `root` and of every body below it."""
        if root in self._subtrees:
            return self._subtrees[root]
        out = []
        for g in self.points:
            b = int(self.geom_body[g])
            while b not in (0, root):
                b = int(self.parent[b])
            if b == root:
                out.append(g)
        self._subtrees[root] = out
        return out


def _cache(env: Any, model: Any) -> _GeomCache:
    cache = getattr(env, "_verl_geom_cache", None)
    if cache is None or cache.model_ptr != id(model):
        cache = _GeomCache(model)
        env._verl_geom_cache = cache
    return cache


def _world_points(data: Any, cache: _GeomCache, geoms: list[int]) -> np.ndarray:
    pts = [cache.points[g] @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g] for g in geoms]
    return np.concatenate(pts) if pts else np.zeros((0, 3))


def _boxes(data: Any, cache: _GeomCache, geoms: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Oriented boxes (centre [K, 3], half extents [K, 3], rotation [K, 3, 3]) bounding `geoms`."""
    centres, halves, rots = [], [], []
    for g in geoms:
        local = cache.points[g]
        lo, hi = local.min(0), local.max(0)
        rot = data.geom_xmat[g].reshape(3, 3)
        centres.append(data.geom_xpos[g] + rot @ ((lo + hi) / 2))
        halves.append((hi - lo) / 2)
        rots.append(rot.copy())
    if not geoms:
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 3, 3))
    return np.array(centres), np.array(halves), np.array(rots)


def privileged_state(env: Any) -> dict[str, np.ndarray]:
    """Robot, target-object and placement-target state of the current LIBERO episode.

    env: the LIBERO wrapper (ControlEnv / OffScreenRenderEnv).
    Keys:
        "robot_base_pos" [3] (the robot's root body), "eef_pos" [3], "eef_quat" [4], "grip_rot" [3, 3] (gripper0_grip_site frame; the fingers
        close along its x axis), "robot_eef_quat" [4] (robosuite's robot0_eef_quat: the hand body's
        orientation, the one in proprio and in the demonstration files), "gripper_qpos" [2], "joint_pos" [7], "sim_state" [S] (flattened
        MuJoCo state), "obj_of_interest" (str array), per name of interest "<name>_pos" [3] and
        "<name>_quat" [4];
        "goal" (str array [3]: predicate, object, target, from the task's first goal atom),
        "target_points" [N, 3] collision points of the object to move,
        "place_pos" [3] placement target: region-site position or object body origin,
        "place_size" [3] the region site's half size (zeros for an object target),
        "place_points" [M, 3] collision points of the placement object (or of the region's parent),
        "obstacle_centre" [K, 3], "obstacle_half" [K, 3], "obstacle_rot" [K, 3, 3]: oriented
        boxes of every other collision geom of the scene's objects and fixtures near the target or
        the placement target (the placement object included).
    """
    domain = env.env
    sim = domain.sim
    robot = domain.robots[0]
    grip_rot = np.array(sim.data.site_xmat[robot.eef_site_id]).reshape(3, 3)
    base = sim.model.body_name2id(robot.robot_model.root_body)
    state: dict[str, np.ndarray] = {
        "robot_base_pos": np.array(sim.data.body_xpos[base]),
        "eef_pos": np.array(sim.data.site_xpos[robot.eef_site_id]),
        "eef_quat": _mat_to_xyzw(grip_rot),
        "grip_rot": grip_rot,
        "robot_eef_quat": _xyzw(sim.data.body_xquat[sim.model.body_name2id(robot.robot_model.eef_name)]),
        "gripper_qpos": np.array(sim.data.qpos[robot._ref_gripper_joint_pos_indexes]),
        "joint_pos": np.array(sim.data.qpos[robot._ref_joint_pos_indexes]),
        "sim_state": np.array(sim.get_state().flatten()),
        "obj_of_interest": np.array(list(domain.obj_of_interest), dtype=str),
    }
    bodies = {**domain.fixtures_dict, **domain.objects_dict}
    for name in domain.obj_of_interest:
        if name in bodies:
            body = sim.model.body_name2id(bodies[name].root_body)
            state[f"{name}_pos"] = np.array(sim.data.body_xpos[body])
            state[f"{name}_quat"] = _xyzw(sim.data.body_xquat[body])
        else:
            site = sim.model.site_name2id(name)
            state[f"{name}_pos"] = np.array(sim.data.site_xpos[site])
            state[f"{name}_quat"] = _mat_to_xyzw(sim.data.site_xmat[site])
    state.update(_task_geometry(env, domain, bodies))
    return state


def _task_geometry(env: Any, domain: Any, bodies: dict[str, Any]) -> dict[str, np.ndarray]:
    """Target, placement and obstacle geometry for a two-argument goal ("on"/"in" obj target)."""
    goal = [str(x) for x in domain.parsed_problem["goal_state"][0]]
    if len(goal) != 3 or goal[1] not in bodies:
        return {"goal": np.array(goal, dtype=str)}
    model, data = domain.sim.model._model, domain.sim.data._data
    cache = _cache(env, model)
    root = {name: model.body(obj.root_body).id for name, obj in bodies.items()}
    target_geoms = cache.subtree_geoms(root[goal[1]])
    place_name = goal[2]
    if place_name in bodies:
        place_pos = np.array(data.xpos[root[place_name]])
        place_size = np.zeros(3)
        place_owner = place_name
    else:
        site = model.site(place_name).id
        place_pos = np.array(data.site_xpos[site])
        place_size = np.array(model.site_size[site])
        # Region sites are named "<object>_<region>"; the owner is the longest object name prefix.
        owners = [n for n in bodies if place_name.startswith(n + "_")]
        place_owner = max(owners, key=len) if owners else None
    place_geoms = cache.subtree_geoms(root[place_owner]) if place_owner else []
    target_points = _world_points(data, cache, target_geoms)
    centre_xy = target_points[:, :2].mean(0) if len(target_points) else place_pos[:2]
    others = []
    for name in bodies:
        if name == goal[1]:
            continue
        for g in cache.subtree_geoms(root[name]):
            xy = data.geom_xpos[g][:2]
            near = min(np.linalg.norm(xy - centre_xy), np.linalg.norm(xy - place_pos[:2]))
            if near - model.geom_rbound[g] < OBSTACLE_RADIUS_M:
                others.append(g)
    centre, half, rot = _boxes(data, cache, others)
    return {
        "goal": np.array(goal, dtype=str),
        "target_points": target_points,
        "place_pos": place_pos,
        "place_size": place_size,
        "place_points": _world_points(data, cache, place_geoms),
        "obstacle_centre": centre,
        "obstacle_half": half,
        "obstacle_rot": rot,
    }
