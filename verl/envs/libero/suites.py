"""Cheap LIBERO suite metadata: task lists, instructions, initial states, step limits.

Reads only LIBERO's benchmark table, bddl paths and init-state files; never builds a simulator or
imports robosuite/MuJoCo, so the trainer can use it to build its dataset.
"""

from __future__ import annotations

import contextlib
import io
import os
from functools import cache, lru_cache
from typing import Any

import numpy as np

from verl.envs.base import ResetRequest

SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10", "libero_90")

# Policy steps per episode in the official OpenVLA-OFT evaluation (longest demos: 193/254/270/505/373).
DEFAULT_MAX_STEPS = {
    "libero_spatial": 220,
    "libero_object": 280,
    "libero_goal": 300,
    "libero_10": 520,
    "libero_90": 400,
}


def check_suite(suite: str) -> None:
    if suite not in SUITES:
        raise ValueError(f"suite={suite!r} is unknown; allowed: {SUITES}")


@cache
def _benchmark(suite: str) -> Any:
    check_suite(suite)
    from libero.libero import benchmark

    # The benchmark prints its task order on construction; keep logs clean.
    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark.get_benchmark_dict()[suite]()


def default_max_steps(suite: str) -> int:
    """The OpenVLA-OFT step limit of `suite` (policy steps, excluding the wait steps)."""
    check_suite(suite)
    return DEFAULT_MAX_STEPS[suite]


def num_tasks(suite: str) -> int:
    """Number of tasks in `suite` (10, or 90 for libero_90)."""
    return _benchmark(suite).get_num_tasks()


def check_task(suite: str, task_id: int) -> None:
    n = num_tasks(suite)
    if not isinstance(task_id, (int, np.integer)) or not 0 <= task_id < n:
        raise ValueError(f"task_id={task_id!r} is out of range for {suite}; allowed: 0..{n - 1}")


def task_language(suite: str, task_id: int) -> str:
    """The task's language instruction (LIBERO `task.language`)."""
    check_task(suite, task_id)
    return _benchmark(suite).get_task(task_id).language


def task_name(suite: str, task_id: int) -> str:
    """The task's bddl problem name, e.g. 'pick_up_the_alphabet_soup_and_place_it_in_the_basket'."""
    check_task(suite, task_id)
    return _benchmark(suite).get_task(task_id).name


def bddl_file(suite: str, task_id: int) -> str:
    """Absolute path of the task's bddl file."""
    check_task(suite, task_id)
    return os.path.abspath(_benchmark(suite).get_task_bddl_file_path(task_id))


@lru_cache(maxsize=16)
def init_states(suite: str, task_id: int) -> np.ndarray:
    """The task's fixed initial states, float64 [num_init_states, 1 + nq + nv] (flattened MuJoCo states)."""
    check_task(suite, task_id)
    states = np.asarray(_benchmark(suite).get_task_init_states(task_id), dtype=np.float64)
    states.setflags(write=False)
    return states


def num_init_states(suite: str, task_id: int) -> int:
    """Number of fixed initial states of the task (50 for every LIBERO task)."""
    return int(init_states(suite, task_id).shape[0])


def check_reset_request(request: ResetRequest) -> None:
    """Raise ValueError naming the field and allowed values if `request` cannot be served."""
    check_suite(request.suite)
    check_task(request.suite, request.task_id)
    n = num_init_states(request.suite, request.task_id)
    if not isinstance(request.init_state_id, (int, np.integer)) or not 0 <= request.init_state_id < n:
        raise ValueError(
            f"init_state_id={request.init_state_id!r} is out of range for {request.suite} task "
            f"{request.task_id}; allowed: 0..{n - 1}"
        )


def split_init_states(num_states: int, num_val: int) -> tuple[list[int], list[int]]:
    """Disjoint train/validation ranges of init-state ids: train 0..n-v-1, validation n-v..n-1."""
    if not 0 <= num_val <= num_states:
        raise ValueError(f"num_val={num_val} must be in 0..num_states={num_states}")
    split = num_states - num_val
    return list(range(split)), list(range(split, num_states))
