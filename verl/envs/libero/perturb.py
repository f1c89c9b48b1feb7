"""Seeded perturbation of the movable objects' initial poses (x/y offset and yaw only).

Applied after the fixed initial state is set. Height and tilt are kept, so objects stay on their
support; a sample that would push an object into its neighbours deeper than in the original scene
is rejected and redrawn, and an object with no acceptable sample keeps its original pose. The wait
steps that follow the reset let the scene settle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from verl.envs.libero.config import PerturbationConfig


def _object_geoms(model: Any, root_body: int) -> np.ndarray:
    """Ids of the geoms whose body hangs under `root_body` (a free-jointed object's root)."""
    return np.flatnonzero(model.body_rootid[model.geom_bodyid] == root_body)


def _deepest_penetration(model: Any, data: Any, geoms: np.ndarray) -> float:
    """Deepest contact penetration (metres, >= 0) between `geoms` and any other geom."""
    pairs = np.asarray(data.contact.geom).reshape(-1, 2)
    mine = np.isin(pairs, geoms)
    across = mine[:, 0] != mine[:, 1]
    if not across.any():
        return 0.0
    return max(0.0, float(-np.asarray(data.contact.dist)[across].min()))


def _yaw_quat_wxyz(yaw: float) -> np.ndarray:
    return np.array([math.cos(yaw / 2.0), 0.0, 0.0, math.sin(yaw / 2.0)])


def perturb_objects(env: Any, cfg: PerturbationConfig, seed: int) -> dict[str, tuple[float, float, float]]:
    """Shift and turn every movable object of a LIBERO env in place; returns name -> (dx, dy, dyaw).

    env: the LIBERO wrapper (ControlEnv/OffScreenRenderEnv); its `.env` holds `objects_dict`.
    Objects without a free joint are skipped. Deterministic in (scene, cfg, seed).
    """
    import mujoco

    domain = env.env
    model, data = domain.sim.model._model, domain.sim.data._data
    rng = np.random.default_rng(seed)
    applied: dict[str, tuple[float, float, float]] = {}
    mujoco.mj_forward(model, data)
    for name, obj in domain.objects_dict.items():
        joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, obj.joints[-1])
        if joint < 0 or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_FREE:
            continue
        qadr, vadr = model.jnt_qposadr[joint], model.jnt_dofadr[joint]
        geoms = _object_geoms(model, model.body_rootid[model.jnt_bodyid[joint]])
        original = data.qpos[qadr : qadr + 7].copy()
        allowed = _deepest_penetration(model, data, geoms) + cfg.penetration_tol_m
        for _ in range(cfg.max_tries):
            dx, dy = rng.uniform(-cfg.pos_noise_m, cfg.pos_noise_m, size=2)
            dyaw = rng.uniform(-cfg.yaw_noise_rad, cfg.yaw_noise_rad)
            pose = original.copy()
            pose[0] += dx
            pose[1] += dy
            mujoco.mju_mulQuat(pose[3:7], _yaw_quat_wxyz(dyaw), original[3:7])
            data.qpos[qadr : qadr + 7] = pose
            data.qvel[vadr : vadr + 6] = 0.0
            mujoco.mj_forward(model, data)
            if _deepest_penetration(model, data, geoms) <= allowed:
                applied[name] = (float(dx), float(dy), float(dyaw))
                break
        else:
            data.qpos[qadr : qadr + 7] = original
            mujoco.mj_forward(model, data)
    return applied
