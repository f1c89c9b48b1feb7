"""SFT data: LIBERO demonstration files -> a frame cache of (observation, action-chunk) samples.

    files = resolve_paths(["/data/libero_object"])            # files, globs, directories
    demos = load_demos(files, "libero_object", task_ids=[0, 1], demos_per_task=10)
    stats = demo_statistics(demos)                            # dataset_statistics.json entry
    samples = build_samples(demos, processor, chunk=8, num_images=1)

Every frame goes once through the policy's image pipeline (JPEG round trip, resize, centre crop,
the same as at evaluation) into a uint8 cache, so a training step only indexes arrays. Samples are
drawn by `batch_indices`, a pure function of the step: shuffled epochs, seeded, identical on every
rank, so a run is reproducible and each rank takes its own slice of the global batch.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

import numpy as np

from verl.utils.config_values import ConfigError
from verl.utils.dataset.libero_hdf5 import DATA, INIT_STATE_ID, LiberoEpisode, instruction_of, read_episodes
from verl.utils.dataset.statistics import chunk_actions, compute_statistics


@dataclass
class Demo:
    """One demonstration with the task it belongs to."""

    episode: LiberoEpisode  # images upright, actions in the policy convention (gripper 1 open / 0 close)
    task_id: int
    init_state_id: int | None  # the LIBERO initial state it started from, when the file records it


@dataclass
class SFTSamples:
    """The frame cache: one row per (demonstration step, chunk target)."""

    images: np.ndarray  # uint8 [N, n_img, S, S, 3] after the policy's image pipeline
    proprio: np.ndarray  # float32 [N, P] raw (normalised by the worker with the policy's statistics)
    actions: np.ndarray  # float32 [N, chunk, D] robot units, policy gripper convention
    instruction_index: np.ndarray  # int64 [N] into `instructions`
    instructions: list[str]
    task_ids: np.ndarray  # int64 [N]
    demo_index: np.ndarray  # int64 [N] demonstration each row comes from

    def __len__(self) -> int:
        return int(self.images.shape[0])


def resolve_paths(paths: list[str]) -> list[str]:
    """Files, glob patterns and directories (every *.hdf5 below them) -> sorted unique HDF5 files."""
    files: set[str] = set()
    for spec in paths:
        spec = os.path.expanduser(str(spec))
        if os.path.isdir(spec):
            found = glob.glob(os.path.join(spec, "**", "*.hdf5"), recursive=True)
        elif any(c in spec for c in "*?["):
            found = glob.glob(spec, recursive=True)
        else:
            found = [spec] if os.path.isfile(spec) else []
        if not found:
            raise ConfigError(f"data.paths: {spec!r} matches no HDF5 file")
        files.update(os.path.abspath(f) for f in found)
    return sorted(files)


def _canonical(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().rstrip("."))


def recorded_task(path: str, suite: str) -> tuple[int, str] | None:
    """(task id, instruction) of a file of scripts/collect_demos.py, which records its suite and task
    id (any simulator); None for other files or another suite."""
    import h5py

    with h5py.File(path, "r") as f:
        if DATA not in f:
            raise ConfigError(f"data.paths: {path} has no '{DATA}' group; not a LIBERO demonstration file")
        attrs = dict(f[DATA].attrs)
    if attrs.get("suite") != suite or "task_id" not in attrs:
        return None
    return int(attrs["task_id"]), instruction_of(path, attrs)


def task_of_file(path: str, suite: str) -> int:
    """The task id in `suite` of a demonstration file: recorded by our collector, else (LIBERO) by its
    instruction or its official file name."""
    import h5py

    recorded = recorded_task(path, suite)
    if recorded is not None:
        return recorded[0]
    from verl.envs.libero import suites

    with h5py.File(path, "r") as f:
        instruction = _canonical(instruction_of(path, dict(f[DATA].attrs)))
    stem = os.path.basename(path).removesuffix(".hdf5").removesuffix("_demo")
    for task in range(suites.num_tasks(suite)):
        if instruction == _canonical(suites.task_language(suite, task)) or stem == suites.task_name(
            suite, task
        ):
            return task
    raise ConfigError(
        f"data.paths: {path} (instruction {instruction!r}) is no task of data.suite={suite!r}; "
        f"its tasks: {[suites.task_language(suite, t) for t in range(suites.num_tasks(suite))]}"
    )


def _init_state_ids(path: str) -> dict[str, int]:
    """demo key -> recorded initial-state id (files of scripts/collect_demos.py record it)."""
    import h5py

    with h5py.File(path, "r") as f:
        data = f[DATA]
        return {k: int(data[k].attrs[INIT_STATE_ID]) for k in data if INIT_STATE_ID in data[k].attrs}


def load_demos(
    files: list[str],
    suite: str,
    task_ids: list[int] | None = None,
    demos_per_task: int | None = None,
    drop_noops: bool = True,
    load_wrist: bool = False,
) -> list[Demo]:
    """Read the demonstrations of the selected tasks, the first `demos_per_task` of each task.

    Instructions are replaced by the suite's canonical task language (what the simulator gives the
    policy at evaluation; files of our collector record it). Raises ConfigError when a requested task
    has no demonstration.
    """
    by_task: dict[int, list[Demo]] = {}
    for path in files:
        task = task_of_file(path, suite)
        if task_ids is not None and task not in task_ids:
            continue
        have = by_task.setdefault(task, [])
        if demos_per_task is not None and len(have) >= demos_per_task:
            continue
        init_ids = _init_state_ids(path)
        recorded = recorded_task(path, suite)
        if recorded is not None:
            language = recorded[1]
        else:
            from verl.envs.libero import suites

            language = suites.task_language(suite, task)
        for ep in read_episodes(path, load_wrist=load_wrist, drop_noops=drop_noops):
            if demos_per_task is not None and len(have) >= demos_per_task:
                break
            if len(ep.actions) == 0:
                continue
            ep.instruction = language
            have.append(Demo(ep, task, init_ids.get(ep.source.rsplit(":", 1)[1])))
    missing = sorted(set(task_ids or []) - {t for t, d in by_task.items() if d})
    if missing:
        raise ConfigError(f"data.task_ids: tasks {missing} of {suite} have no demonstration in data.paths")
    if not by_task:
        raise ConfigError("data.paths: no demonstration found")
    return [d for task in sorted(by_task) for d in by_task[task]]


def demo_statistics(demos: list[Demo]) -> dict:
    """OpenVLA-OFT dataset statistics (q01/q99 per action dimension, gripper mask, proprio) of `demos`."""
    return compute_statistics([d.episode.actions for d in demos], [d.episode.proprio for d in demos])


def build_samples(
    demos: list[Demo], processor, chunk: int, num_images: int = 1, pad_end: bool = True
) -> SFTSamples:
    """Decode every frame once through `processor` (encode_image -> decode_image) and pair it with its
    action chunk (see `chunk_actions`; `pad_end` repeats the last action past the episode end)."""
    images, proprio, actions, instr, tasks, owner = [], [], [], [], [], []
    instructions: list[str] = []
    for i, demo in enumerate(demos):
        ep = demo.episode
        targets = chunk_actions(ep.actions, chunk, pad_end=pad_end)  # [n, chunk, D]
        n = len(targets)
        if n == 0:
            continue
        cams = [ep.images] + ([ep.wrist_images] if num_images == 2 else [])
        if any(c is None for c in cams):
            raise ValueError(f"{ep.source}: num_images={num_images} needs the wrist camera")
        frames = np.stack(
            [[processor.decode_image(processor.encode_image(c[t])) for c in cams] for t in range(n)]
        )
        if ep.instruction not in instructions:
            instructions.append(ep.instruction)
        images.append(frames)
        proprio.append(ep.proprio[:n])
        actions.append(targets.astype(np.float32))
        instr.append(np.full(n, instructions.index(ep.instruction), dtype=np.int64))
        tasks.append(np.full(n, demo.task_id, dtype=np.int64))
        owner.append(np.full(n, i, dtype=np.int64))
    if not images:
        raise ValueError(
            f"no sample: every demonstration is shorter than the chunk ({chunk}) and pad_end is off"
        )
    return SFTSamples(
        images=np.concatenate(images),
        proprio=np.concatenate(proprio).astype(np.float32),
        actions=np.concatenate(actions),
        instruction_index=np.concatenate(instr),
        instructions=instructions,
        task_ids=np.concatenate(tasks),
        demo_index=np.concatenate(owner),
    )


def batch_indices(step: int, batch_size: int, num_samples: int, seed: int) -> np.ndarray:
    """Sample indices [batch_size] of global step `step` (0-based).

    The stream is the concatenation of per-epoch permutations of range(num_samples), each seeded by
    (seed, epoch); step k takes positions [k * batch_size, (k + 1) * batch_size) of it, so batches may
    straddle epochs and every sample is seen once per epoch.
    """
    if num_samples < 1 or batch_size < 1:
        raise ValueError(f"need num_samples >= 1 and batch_size >= 1, got {num_samples}, {batch_size}")
    start = step * batch_size
    out = np.empty(batch_size, dtype=np.int64)
    filled = 0
    while filled < batch_size:
        epoch, offset = divmod(start + filled, num_samples)
        perm = np.random.default_rng([seed, epoch]).permutation(num_samples)
        take = min(batch_size - filled, num_samples - offset)
        out[filled : filled + take] = perm[offset : offset + take]
        filled += take
    return out
