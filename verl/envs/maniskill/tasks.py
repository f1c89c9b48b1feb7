"""Cheap ManiSkill3 task metadata: the supported tasks, their instructions, step limits and seeds.

Never imports ManiSkill (the trainer reads it to build its prompts); `check_no_download` does, inside
a simulator worker, before a task is built.

Only single-Panda tabletop tasks whose assets ship inside the `mani-skill` wheel are listed. Tasks
that need an asset download (YCB objects, Bridge scenes, PartNet-Mobility, ...) would ask on the
terminal and fail without one; they are rejected up front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from verl.envs.base import ResetRequest

SUITE = "maniskill"
SUITES = (SUITE,)

# A reset's initial state is ManiSkill's episode seed: `init_state_id` is passed to `reset(seed=...)`.
# Any integer seed is a valid initial state; this bounds the prompt space the trainer enumerates.
NUM_SEEDS = 100_000


@dataclass(frozen=True)
class Task:
    """One ManiSkill task as this adapter runs it.

    env_id: ManiSkill's registered id.
    instruction: our fixed English instruction (ManiSkill's core tasks have none).
    max_steps: policy steps per episode: twice ManiSkill's own `max_episode_steps` (which is sized for
        state-based RL at 20 Hz), so that a scripted expert and a VLA have room to finish.
    robot: ManiSkill robot uid; "panda_wristcam" is the Panda with a hand camera.
    """

    env_id: str
    instruction: str
    max_steps: int
    robot: str = "panda"


TASKS: tuple[Task, ...] = (
    Task("PickCube-v1", "pick up the red cube and move it to the green target", 100),
    Task("PushCube-v1", "push the cube onto the red and white target", 100),
    Task("PullCube-v1", "pull the cube back onto the red and white target", 100),
    Task("StackCube-v1", "stack the red cube on top of the green cube", 100),
    Task("PlaceSphere-v1", "place the ball into the bin", 100),
)
# Also build and step here with nothing downloaded, but are not listed because no test reaches
# their success state yet: LiftPegUpright-v1, PokeCube-v1, PegInsertionSide-v1 and PlugCharger-v1
# (the last two with robot "panda_wristcam").
TASK_IDS = {t.env_id: i for i, t in enumerate(TASKS)}


def check_suite(suite: str) -> None:
    if suite not in SUITES:
        raise ValueError(f"suite={suite!r} is unknown for env 'maniskill'; allowed: {SUITES}")


def num_tasks(suite: str) -> int:
    check_suite(suite)
    return len(TASKS)


def task(task_id: int) -> Task:
    if not isinstance(task_id, (int, np.integer)) or not 0 <= task_id < len(TASKS):
        raise ValueError(
            f"task_id={task_id!r} is out of range for {SUITE}; allowed: 0..{len(TASKS) - 1} "
            f"({', '.join(f'{i}={t.env_id}' for i, t in enumerate(TASKS))})"
        )
    return TASKS[int(task_id)]


def task_id_of(env_id: str) -> int:
    """The task id of a ManiSkill env id; unknown ids list the supported ones."""
    if env_id not in TASK_IDS:
        raise ValueError(f"ManiSkill task {env_id!r} is not supported; allowed: {list(TASK_IDS)}")
    return TASK_IDS[env_id]


def num_init_states(suite: str, task_id: int) -> int:
    check_suite(suite)
    task(task_id)
    return NUM_SEEDS


def default_max_steps(suite: str) -> int:
    """The longest step limit of the suite's tasks (a single task's is `task(i).max_steps`)."""
    check_suite(suite)
    return max(t.max_steps for t in TASKS)


def check_reset_request(request: ResetRequest) -> None:
    """Raise ValueError naming the field and allowed values if `request` cannot be served."""
    check_suite(request.suite)
    task(request.task_id)
    seed = request.init_state_id
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < NUM_SEEDS:
        raise ValueError(f"init_state_id={seed!r} (the episode seed); allowed: 0..{NUM_SEEDS - 1}")


def check_no_download(env_id: str) -> None:
    """Raise ValueError if ManiSkill's task `env_id` needs assets that are not in the wheel.

    ManiSkill would otherwise ask on the terminal whether to download them (and fail in a worker,
    which has no terminal). Imports ManiSkill.
    """
    import mani_skill.envs  # noqa: F401  (registers the tasks)
    from mani_skill.utils.registration import REGISTERED_ENVS

    if env_id not in REGISTERED_ENVS:
        raise ValueError(f"{env_id!r} is not a ManiSkill task; known: {sorted(REGISTERED_ENVS)[:20]} ...")
    needs = list(REGISTERED_ENVS[env_id].asset_download_ids or [])
    if needs:
        raise ValueError(
            f"ManiSkill task {env_id!r} needs downloaded assets {needs}, which this adapter does not "
            f"fetch; supported tasks (assets inside the wheel): {list(TASK_IDS)}"
        )
