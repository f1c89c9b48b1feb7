"""Run the scripted expert through an EnvPool, like a policy: one episode per worker at a time.

Used by the expert benchmark (scripts/bench/expert_success.py) and the demonstration collector
(scripts/collect_demos.py). Jobs are served in order; a free worker takes the next job, and jobs of
the same task follow each other so that workers rebuild their simulator rarely.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verl.envs.base import OBS_PRIVILEGED, ResetRequest
from verl.envs.libero.expert import ScriptedPickPlaceExpert


def parse_ids(text: str) -> list[int]:
    """Command-line id lists: "0,2,5-7" -> [0, 2, 5, 6, 7] (ranges inclusive)."""
    out: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        if not lo.strip().isdigit() or (sep and not hi.strip().isdigit()):
            raise ValueError(f"ids: expected numbers and ranges like '0,2,5-7', got {text!r}")
        out.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    return out


@dataclass(frozen=True)
class ExpertJob:
    suite: str
    task_id: int
    init_state_id: int
    seed: int = 0


@dataclass
class ExpertEpisode:
    """Outcome of one expert episode.

    steps: policy steps executed (after the wait steps). error: the env's failure reason, if any.
    observations / actions: when recorded, the observation before each executed action and the
    action (policy convention [7]); one pair per step.
    """

    job: ExpertJob
    success: bool
    steps: int
    error: str | None = None
    observations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Running:
    job: ExpertJob
    expert: ScriptedPickPlaceExpert
    obs: dict[str, Any]
    episode: ExpertEpisode


def run_expert(
    pool: Any,
    jobs: Sequence[ExpertJob],
    chunk: int = 1,
    record: bool = False,
    on_reset: Callable[[ExpertJob], bool] | None = None,
) -> Iterator[ExpertEpisode]:
    """Yields one ExpertEpisode per job, in completion order.

    Args:
        pool: an EnvPool whose config has privileged_obs=True.
        jobs: episodes to run.
        chunk: actions per step call; the expert acts open loop within a chunk.
        record: keep every (observation, action) pair (needs chunk == 1, so that each action has
            the observation it was computed from).
        on_reset: called before a job starts; returning False skips it (no episode is yielded).
    """
    if record and chunk != 1:
        raise ValueError(f"chunk: recording needs chunk=1 (one observation per action), got {chunk}")
    queue = list(jobs)
    running: dict[int, _Running] = {}
    while queue or running:
        free = [w for w in range(pool.num_workers) if w not in running]
        starts: list[tuple[int, ExpertJob]] = []
        while free and queue:
            job = queue.pop(0)
            if on_reset is not None and not on_reset(job):
                continue
            starts.append((free.pop(0), job))
        if starts:
            requests = [
                (w, ResetRequest(j.suite, j.task_id, j.init_state_id, seed=j.seed)) for w, j in starts
            ]
            for (w, job), result in zip(starts, pool.reset(requests)):
                if result.failed or result.obs is None:
                    yield ExpertEpisode(job, success=False, steps=0, error=result.error)
                    continue
                if OBS_PRIVILEGED not in result.obs:
                    raise ValueError("env.libero.privileged_obs must be True to run the scripted expert")
                expert = ScriptedPickPlaceExpert(chunk=chunk)
                expert.reset(result.obs[OBS_PRIVILEGED], result.obs.get("instruction", ""))
                running[w] = _Running(job, expert, result.obs, ExpertEpisode(job, success=False, steps=0))
        if not running:
            continue
        requests = []
        for w, run in running.items():
            actions = run.expert.act(run.obs)
            if record:
                run.episode.observations.append(run.obs)
                run.episode.actions.append(actions[0].copy())
            requests.append((w, actions))
        for (w, _), result in zip(requests, pool.step(requests)):
            run = running[w]
            run.episode.steps += result.steps
            if result.done or result.failed or result.obs is None:
                run.episode.success = bool(result.success)
                run.episode.error = result.error
                del running[w]
                yield run.episode
            else:
                run.obs = result.obs
