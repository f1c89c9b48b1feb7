"""Run the scripted ManiSkill expert through an EnvPool, one episode per worker at a time, closed
loop (one action per step call). Used by scripts/bench/expert_success.py --env maniskill and by
scripts/collect_demos.py --env maniskill (which records every observation and action)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from verl.envs.base import OBS_PRIVILEGED, ResetRequest
from verl.envs.maniskill import tasks
from verl.envs.maniskill.expert import ScriptedExpert


@dataclass
class ExpertEpisode:
    """One expert episode; with `record`, the observation before each action and the action [7]."""

    task_id: int
    seed: int
    success: bool = False
    steps: int = 0
    error: str | None = None
    observations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[np.ndarray] = field(default_factory=list)


def run_expert(pool: Any, jobs: Sequence[tuple[int, int]], record: bool = False) -> Iterator[ExpertEpisode]:
    """Yields one ExpertEpisode per (task_id, seed) job, in completion order.

    pool: an EnvPool of the "maniskill" env with env.maniskill.privileged_obs=True.
    """
    queue = list(jobs)
    running: dict[int, tuple[ScriptedExpert, dict[str, Any], ExpertEpisode]] = {}
    while queue or running:
        free = [w for w in range(pool.num_workers) if w not in running]
        starts = [(w, queue.pop(0)) for w in free[: len(queue)]]
        if starts:
            requests = [(w, ResetRequest(tasks.SUITE, t, s)) for w, (t, s) in starts]
            for (w, (t, s)), result in zip(starts, pool.reset(requests)):
                episode = ExpertEpisode(task_id=t, seed=s)
                if result.failed or result.obs is None:
                    episode.error = result.error
                    yield episode
                    continue
                if OBS_PRIVILEGED not in result.obs:
                    raise ValueError("env.maniskill.privileged_obs must be True to run the scripted expert")
                running[w] = (ScriptedExpert(tasks.task(t).env_id), result.obs, episode)
        requests = []
        for w, (expert, obs, episode) in running.items():
            action = expert.act(obs[OBS_PRIVILEGED])
            if record:
                episode.observations.append(obs)
                episode.actions.append(action)
            requests.append((w, action[None]))
        if not requests:
            continue
        for (w, _), result in zip(requests, pool.step(requests)):
            expert, _, episode = running[w]
            episode.steps += result.steps
            if result.done or result.failed or result.obs is None:
                episode.success, episode.error = bool(result.success), result.error
                del running[w]
                yield episode
            else:
                running[w] = (expert, result.obs, episode)
