"""Closed-loop rollout: a policy drives the episodes of one rank on its `EnvPool`.

Episodes are scheduled onto the pool's simulator workers; when an episode ends (success, step limit
or failure) its worker immediately starts the next pending episode, so no simulator idles while
others finish and the policy is never called on a finished episode's stale observation. Each policy
call is one batched forward over the observations of the running episodes of a worker group; with
several groups (`stages`) the policy works on one group while the others' simulators step.

Trajectories are stored lean: per decision step the JPEG the image pipeline makes anyway (the exact
pixels are rebuilt from it for training) and the 0..255 action-token indices.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from verl.envs.base import ResetRequest


@dataclass
class Episode:
    suite: str
    task_id: int
    init_state_id: int
    seed: int
    uid: str = ""
    record_video: bool = False


@dataclass
class Trajectory:
    episode: Episode
    instruction: str = ""
    jpegs: list[bytes] = field(default_factory=list)  # one per decision step
    action_tokens: list[np.ndarray] = field(default_factory=list)  # int32 [A] per decision step
    log_probs: list[np.ndarray] = field(default_factory=list)  # float32 [A], at sampling time
    proprio: list[np.ndarray] = field(default_factory=list)  # float32 [p] normalised, when the policy uses it
    finish_step: int = 0  # env actions executed after the wait steps
    success: bool = False
    failed: bool = False
    error: str | None = None
    frames: list[np.ndarray] = field(default_factory=list)


@dataclass
class RolloutStats:
    env_steps: int = 0
    policy_calls: int = 0
    policy_batch_sum: int = 0
    env_failures: int = 0


def sampling_seed(*key: int) -> int:
    """A 63-bit seed that mixes every integer of `key` (no two keys of a run share a stream)."""
    state = np.random.SeedSequence([k & 0xFFFFFFFFFFFFFFFF for k in key]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def policy_actor(
    policy, temperature: float, greedy: bool, base_key: tuple[int, ...] = ()
) -> Callable[[list[dict], list[tuple[int, int]]], tuple]:
    """The `act` callable of `run_episodes` for a `verl.models.base.Policy`.

    Sampling draws one stream per (episode seed, decision step) mixed with `base_key` (e.g. the run's
    seed and the RL step): a rollout is a function of the weights and its episode seed only, not of
    batch composition, simulator timing or the world size.
    """

    def act(observations: list[dict], keys: list[tuple[int, int]]) -> tuple:
        row_seeds = None if greedy else [sampling_seed(*base_key, *key) for key in keys]
        out = policy.act(observations, temperature=temperature, greedy=greedy, row_seeds=row_seeds)
        proprio = out.proprio.numpy() if out.proprio is not None else None
        return out.action_tokens.numpy(), out.log_probs.numpy(), out.actions, out.jpegs, proprio

    return act


def _next_for(task: tuple[str, int] | None, pending: deque, episodes: list[Episode]) -> int:
    """Pop the next pending episode, preferring one of the task the worker's simulator already holds
    (switching tasks rebuilds the simulator, ~2-3 s on CPU)."""
    if task is not None:
        for pos, idx in enumerate(pending):
            if (episodes[idx].suite, episodes[idx].task_id) == task:
                del pending[pos]
                return idx
    return pending.popleft()


def run_episodes(
    act: Callable[[list[dict]], tuple],
    pool,
    episodes: list[Episode],
    micro_batch_size: int,
    on_finish: Callable[[Trajectory], None] | None = None,
    stages: int = 1,
) -> tuple[list[Trajectory], RolloutStats]:
    """Run every episode to its end and return the trajectories in the order of `episodes`.

    `act(observations, keys)` returns (action_tokens int [B, A], log_probs float32 [B, A],
    actions float32 [B, chunk, dim], jpegs [B][n_img] bytes, proprio float32 [B, p] or None).
    `keys[i]` is (episode seed, decision step) of observation i: a sampling policy seeds observation
    i's draws from it, so an episode's actions do not depend on which episodes share its batch.

    `stages` > 1 pipelines the rollout: the pool's workers form that many groups (worker w in group
    w % stages) and the policy computes one group's next chunks while the other groups' simulators
    step, so neither the simulators nor the policy wait for each other. 1: all workers in lockstep.
    0: no fixed groups: each policy call takes every simulator whose chunk has finished by then, so a
    simulator waits only for the policy, never for slower group-mates (the pool needs `receive_ready`).
    """
    if not 0 <= stages <= pool.num_workers:
        raise ValueError(f"stages={stages}; allowed: 0..{pool.num_workers} (0: no fixed groups)")
    pending = deque(range(len(episodes)))
    trajectories = [Trajectory(episode=e) for e in episodes]
    running: dict[int, int] = {}  # pool worker -> episode index
    observations: dict[int, dict] = {}  # pool worker -> latest observation
    stepping: list[set[int]] = [set() for _ in range(stages)]  # per group, workers with a chunk in flight
    stats = RolloutStats()

    def finish(worker: int) -> None:
        idx = running.pop(worker)
        observations.pop(worker, None)
        if on_finish is not None:
            on_finish(trajectories[idx])

    def record_result(w: int, res) -> None:
        traj = trajectories[running[w]]
        traj.finish_step += res.steps
        traj.frames.extend(res.frames)
        stats.env_steps += res.steps
        if res.failed:
            traj.failed, traj.error = True, res.error
            stats.env_failures += 1
        if res.done or res.failed:
            traj.success = bool(res.success) and not res.failed
            finish(w)
        else:
            observations[w] = res.obs

    def receive_results(group: int) -> None:
        workers = sorted(stepping[group])
        stepping[group].clear()
        for w, res in zip(workers, pool.receive_steps(workers) if workers else []):
            record_result(w, res)

    def start_episodes(group: int) -> None:
        free = [w for w in range(group, pool.num_workers, stages) if w not in running]
        starts = []
        loaded = pool.loaded_tasks()
        for w in free:
            if not pending:
                break
            idx = _next_for(loaded[w], pending, episodes)
            running[w] = idx
            e = episodes[idx]
            starts.append((w, ResetRequest(e.suite, e.task_id, e.init_state_id, e.seed, e.record_video)))
        if not starts:
            return
        for (w, _), res in zip(starts, pool.reset(starts)):
            traj = trajectories[running[w]]
            traj.frames.extend(res.frames)
            if res.failed or res.done or res.obs is None:
                traj.failed, traj.error = True, res.error or "reset produced no observation"
                stats.env_failures += 1
                finish(w)
                continue
            traj.instruction = res.obs["instruction"]
            observations[w] = res.obs

    def act_and_send(group: int) -> None:
        workers = sorted(w for w in observations if w % stages == group)
        chunks = []
        for start in range(0, len(workers), micro_batch_size):
            part = workers[start : start + micro_batch_size]
            keys = [(episodes[running[w]].seed, len(trajectories[running[w]].action_tokens)) for w in part]
            tokens, logp, actions, jpegs, proprio = act([observations[w] for w in part], keys)
            stats.policy_calls += 1
            stats.policy_batch_sum += len(part)
            for i, w in enumerate(part):
                traj = trajectories[running[w]]
                traj.jpegs.append(jpegs[i])
                traj.action_tokens.append(np.asarray(tokens[i], dtype=np.int32))
                traj.log_probs.append(np.asarray(logp[i], dtype=np.float32))
                if proprio is not None:
                    traj.proprio.append(np.asarray(proprio[i], dtype=np.float32))
                chunks.append((w, np.asarray(actions[i], dtype=np.float32)))
                del observations[w]  # consumed: the chunk's result brings the next one
        if chunks:
            pool.send_step(chunks)
            stepping[group].update(w for w, _ in chunks)

    if stages == 0:
        # One group holding every worker, but its results are taken as they come.
        stages, stepping = 1, [set()]

        def receive_results(group: int) -> None:  # noqa: F811 - the continuous variant
            block = not any(w not in stepping[0] for w in running)  # nothing else to act on
            for w, res in pool.receive_ready(sorted(stepping[0]), block=block) if stepping[0] else []:
                stepping[0].discard(w)
                record_result(w, res)

    while pending or running:
        for group in range(stages):
            receive_results(group)
            start_episodes(group)
            act_and_send(group)
    return trajectories, stats
