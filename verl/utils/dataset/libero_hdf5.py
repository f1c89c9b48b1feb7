"""LIBERO demonstration files (robomimic-style HDF5): the format's keys, a writer and a reader.

One file per task, named ``<task name>_demo.hdf5`` like the official LIBERO datasets::

    data/                       attrs: env_name, env_args (json), problem_info (json), bddl_file_name,
                                       bddl_file_content, macros_image_convention, num_demos, total
    data/demo_i/                attrs: num_samples, init_state, model_file (when known), init_state_id
    data/demo_i/actions         float64 [T, 7]  LIBERO convention: 6 delta-eef dims, gripper -1 open / +1 close
    data/demo_i/states          float64 [T, S]  flattened MuJoCo state before each action
    data/demo_i/robot_states    float64 [T, 9]  gripper qpos (2), eef pos (3), eef quat xyzw (4)
    data/demo_i/rewards, dones  uint8 [T]       1 on the last step only
    data/demo_i/obs/agentview_rgb, eye_in_hand_rgb   uint8 [T, H, W, 3] as the simulator renders them
                                                     (upside down; ``macros_image_convention`` "opengl")
    data/demo_i/obs/ee_states   float64 [T, 6]  eef pos (3) + axis-angle of the eef quat (3)
    data/demo_i/obs/ee_pos, ee_ori, gripper_states [T, 2], joint_states [T, 7]

Row t of every array is the observation *before* action t, as in the official files.

The reader returns episodes in the conventions our policies train on: upright images (rotated
180 degrees, as OpenVLA-OFT's pipeline does), actions with the gripper mapped to [0, 1]
(1 = open, 0 = close; OFT's ``libero_dataset_transform``: clip to [0, 1], then invert), and
proprio = ee_states (6) + gripper_states (2).

The writer appends one demo at a time and flushes, so a collection can resume after a crash:
``num_samples`` is written last and marks a demo as complete; incomplete groups are removed when
the file is opened again.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DATA = "data"
ACTIONS = "actions"
STATES = "states"
ROBOT_STATES = "robot_states"
REWARDS = "rewards"
DONES = "dones"
OBS = "obs"
AGENTVIEW = "agentview_rgb"
WRIST = "eye_in_hand_rgb"
EE_STATES = "ee_states"
EE_POS = "ee_pos"
EE_ORI = "ee_ori"
GRIPPER_STATES = "gripper_states"
JOINT_STATES = "joint_states"
NUM_SAMPLES = "num_samples"
INIT_STATE = "init_state"
INIT_STATE_ID = "init_state_id"
MODEL_FILE = "model_file"
IMAGE_CONVENTION = "opengl"  # robosuite's name for "stored as rendered": rows bottom-up


def demo_file_name(task_name: str) -> str:
    """The official per-task file name, e.g. ``pick_up_the_ketchup_and_place_it_in_the_basket_demo.hdf5``."""
    return f"{task_name}_demo.hdf5"


@dataclass
class DemoStep:
    """One recorded step: the observation before the action, and the action (LIBERO convention)."""

    action: np.ndarray  # [7] float, gripper -1 open / +1 close
    state: np.ndarray  # [S] flattened MuJoCo state
    agentview: np.ndarray  # uint8 [H, W, 3], as rendered (upside down)
    wrist: np.ndarray  # uint8 [H, W, 3], as rendered (upside down)
    eef_pos: np.ndarray  # [3]
    eef_quat: np.ndarray  # [4] xyzw, robosuite's robot0_eef_quat (hand body)
    gripper_qpos: np.ndarray  # [2]
    joint_pos: np.ndarray  # [7]


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Axis-angle [3] of an xyzw quaternion [4]; the angle is taken in [0, pi] (w clipped to [-1, 1])."""
    q = np.asarray(quat, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-9:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


class LiberoDemoWriter:
    """Appends demos to one task's HDF5 file; see the module docstring for the layout.

    Args:
        path: the ``<task name>_demo.hdf5`` file; created if missing, resumed if present.
        file_attrs: attributes of ``data`` (env_name, env_args, problem_info, bddl_file_name, ...);
            strings or json-serialisable dicts (written as json).
    """

    def __init__(self, path: str, file_attrs: dict[str, object]):
        import h5py

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._file = h5py.File(path, "a")
        data = self._file.require_group(DATA)
        for key in [k for k in data if NUM_SAMPLES not in data[k].attrs]:
            del data[key]  # interrupted before completion
        for key, value in file_attrs.items():
            data.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
        self._update_totals()

    @property
    def done_init_state_ids(self) -> set[int]:
        """Initial-state indices that already have a complete demo in the file."""
        data = self._file[DATA]
        return {int(data[k].attrs[INIT_STATE_ID]) for k in data if INIT_STATE_ID in data[k].attrs}

    @property
    def num_demos(self) -> int:
        return len(self._file[DATA])

    def add_demo(self, steps: Sequence[DemoStep], init_state_id: int, model_file: str | None = None) -> str:
        """Writes one successful episode as ``demo_<n>``; returns the group name."""
        if not steps:
            raise ValueError("steps: an episode needs at least one step, got 0")
        data = self._file[DATA]
        name = f"demo_{self._next_index()}"
        grp = data.create_group(name)
        stack = lambda f: np.stack([f(s) for s in steps])  # noqa: E731
        ee_pos = stack(lambda s: s.eef_pos).astype(np.float64)
        ee_ori = stack(lambda s: quat_to_axis_angle(s.eef_quat))
        n = len(steps)
        last = np.zeros(n, dtype=np.uint8)
        last[-1] = 1
        grp.create_dataset(ACTIONS, data=stack(lambda s: s.action).astype(np.float64))
        grp.create_dataset(STATES, data=stack(lambda s: s.state).astype(np.float64))
        robot = stack(lambda s: np.concatenate([s.gripper_qpos, s.eef_pos, s.eef_quat]))
        grp.create_dataset(ROBOT_STATES, data=robot.astype(np.float64))
        grp.create_dataset(REWARDS, data=last)
        grp.create_dataset(DONES, data=last.copy())
        obs = grp.create_group(OBS)
        for key, fn in ((AGENTVIEW, lambda s: s.agentview), (WRIST, lambda s: s.wrist)):
            obs.create_dataset(key, data=stack(fn).astype(np.uint8), compression="gzip", compression_opts=4)
        obs.create_dataset(EE_STATES, data=np.concatenate([ee_pos, ee_ori], axis=1))
        obs.create_dataset(EE_POS, data=ee_pos)
        obs.create_dataset(EE_ORI, data=ee_ori)
        obs.create_dataset(GRIPPER_STATES, data=stack(lambda s: s.gripper_qpos).astype(np.float64))
        obs.create_dataset(JOINT_STATES, data=stack(lambda s: s.joint_pos).astype(np.float64))
        grp.attrs[INIT_STATE] = np.asarray(steps[0].state, dtype=np.float64)
        grp.attrs[INIT_STATE_ID] = int(init_state_id)
        if model_file is not None:
            grp.attrs[MODEL_FILE] = model_file
        grp.attrs[NUM_SAMPLES] = n  # last: marks the demo complete
        self._update_totals()
        self._file.flush()
        return name

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> LiberoDemoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_index(self) -> int:
        used = [int(k.split("_")[1]) for k in self._file[DATA] if re.fullmatch(r"demo_\d+", k)]
        return max(used, default=-1) + 1

    def _update_totals(self) -> None:
        data = self._file[DATA]
        data.attrs["num_demos"] = len(data)
        data.attrs["total"] = int(sum(int(data[k].attrs[NUM_SAMPLES]) for k in data))


@dataclass
class LiberoEpisode:
    """One demonstration in training conventions."""

    images: np.ndarray  # uint8 [T, H, W, 3] agent view, upright
    wrist_images: np.ndarray | None  # uint8 [T, H, W, 3] upright, or None when not loaded
    actions: np.ndarray  # float32 [T, 7] policy convention, gripper 1 open / 0 close
    proprio: np.ndarray  # float32 [T, 8] eef pos (3) + axis-angle (3) + gripper qpos (2)
    instruction: str
    source: str  # "<file>:<demo key>"


def env_to_policy_actions(actions: np.ndarray) -> np.ndarray:
    """[T, 7] LIBERO actions (gripper -1 open / +1 close) -> policy convention (1 open / 0 close)."""
    out = np.asarray(actions, dtype=np.float32).copy()
    out[:, -1] = 1.0 - np.clip(out[:, -1], 0.0, 1.0)
    return out


def instruction_of(path: str, data_attrs: dict) -> str:
    """The task language: ``problem_info.language_instruction``, else derived from the file name.

    Official file names are the task name plus ``_demo.hdf5``; libero_10 / libero_90 names start with
    the scene (``KITCHEN_SCENE3_turn_on_the_stove...``), which is not part of the instruction.
    """
    info = data_attrs.get("problem_info")
    if info is not None:
        text = json.loads(info).get("language_instruction", "")
        if text:
            return str(text)
    stem = os.path.basename(path).removesuffix(".hdf5").removesuffix("_demo")
    stem = re.sub(r"^[A-Z_]+_SCENE\d+_", "", stem)
    return stem.replace("_", " ")


def _demo_keys(data) -> list[str]:
    keys = [k for k in data if re.fullmatch(r"demo_\d+", k)]
    return sorted(keys, key=lambda k: int(k.split("_")[1]))


def read_episodes(path: str, load_wrist: bool = True, drop_noops: bool = False) -> list[LiberoEpisode]:
    """Reads every demo of one LIBERO HDF5 file (ours or official) into training-convention episodes.

    Args:
        path: a ``*_demo.hdf5`` file.
        load_wrist: also load the wrist camera.
        drop_noops: drop OFT's no-op steps (see ``statistics.noop_mask``), as OFT's ``*_no_noops``
            datasets do; the observation kept for a step is still the one before its action.
    """
    import h5py

    from verl.utils.dataset.statistics import noop_mask

    episodes = []
    with h5py.File(path, "r") as f:
        if DATA not in f:
            raise ValueError(f"{path}: no '{DATA}' group; expected a LIBERO/robomimic demonstration file")
        data = f[DATA]
        instruction = instruction_of(path, dict(data.attrs))
        for key in _demo_keys(data):
            demo = data[key]
            obs = demo[OBS]
            raw_actions = demo[ACTIONS][()]
            keep = ~noop_mask(raw_actions) if drop_noops else np.ones(len(raw_actions), dtype=bool)
            if EE_STATES in obs:
                ee = obs[EE_STATES][()]
            else:
                ee = np.concatenate([obs[EE_POS][()], obs[EE_ORI][()]], axis=1)
            proprio = np.concatenate([ee, obs[GRIPPER_STATES][()]], axis=1).astype(np.float32)[keep]
            images = obs[AGENTVIEW][()][keep][:, ::-1, ::-1]
            wrist = obs[WRIST][()][keep][:, ::-1, ::-1] if load_wrist else None
            episodes.append(
                LiberoEpisode(
                    images=np.ascontiguousarray(images),
                    wrist_images=None if wrist is None else np.ascontiguousarray(wrist),
                    actions=env_to_policy_actions(raw_actions[keep]),
                    proprio=proprio,
                    instruction=instruction,
                    source=f"{os.path.basename(path)}:{key}",
                )
            )
    return episodes
