"""The closed-loop scheduler and trajectory packing, against a scripted in-process pool."""

import numpy as np
import pytest
import torch

from verl.envs.base import EnvResult
from verl.workers.rollout.env_rollout import Episode, run_episodes
from verl.workers.rollout.trajectories import response_mask, trajectories_to_proto


class ScriptedPool:
    """Episodes end after `length[(task, init)]` actions (success iff the init-state id is even);
    records every call so the test can check what the scheduler asked for."""

    def __init__(self, num_workers, lengths, chunk=8):
        self.num_workers = num_workers
        self.lengths = lengths
        self.chunk = chunk
        self.tasks = [None] * num_workers
        self.state = {}
        self.calls = []
        self.results = {}

    def loaded_tasks(self):
        return list(self.tasks)

    def reset(self, requests):
        out = []
        for w, r in requests:
            self.calls.append(("reset", w, r.task_id, r.init_state_id))
            if r.init_state_id == 99:
                out.append(EnvResult.failure("simulator crashed"))
                continue
            self.tasks[w] = (r.suite, r.task_id)
            self.state[w] = [0, self.lengths[(r.task_id, r.init_state_id)], r.init_state_id]
            out.append(EnvResult(obs={"instruction": f"task {r.task_id}", "w": w}))
        return out

    def step(self, requests):
        self.send_step(requests)
        return self.receive_steps([w for w, _ in requests])

    def send_step(self, requests):
        self.calls.append(("send", tuple(w for w, _ in requests)))
        for w, actions in requests:
            assert actions.shape == (self.chunk, 7)
            done_steps, length, init = self.state[w]
            n = min(self.chunk, length - done_steps)
            self.state[w][0] += n
            done = self.state[w][0] >= length
            self.calls.append(("step", w))
            self.results[w] = EnvResult(
                obs={"instruction": "x", "w": w}, success=done and init % 2 == 0, done=done, steps=n
            )

    def receive_steps(self, workers):
        self.calls.append(("collect", tuple(workers)))
        return [self.results.pop(w) for w in workers]


def fake_act(observations, keys):
    assert len(keys) == len(observations)
    b = len(observations)
    return (
        np.full((b, 56), 7, dtype=np.uint8),
        np.full((b, 56), -1.5, dtype=np.float32),
        np.zeros((b, 8, 7), dtype=np.float32),
        [[b"jpg"] for _ in range(b)],
        None,
    )


def test_scheduler_runs_every_episode_and_prefers_loaded_tasks():
    lengths = {(0, 0): 20, (1, 1): 8, (0, 2): 16, (1, 3): 30, (0, 99): 1}
    pool = ScriptedPool(2, lengths)
    episodes = [
        Episode("s", 0, 0, 1),
        Episode("s", 1, 1, 2),
        Episode("s", 0, 2, 3),
        Episode("s", 1, 3, 4),
        Episode("s", 0, 99, 5),
    ]
    trajs, stats = run_episodes(fake_act, pool, episodes, micro_batch_size=4)
    assert [t.finish_step for t in trajs] == [20, 8, 16, 30, 0]
    assert [t.success for t in trajs] == [True, False, True, False, False]
    assert [len(t.action_tokens) for t in trajs] == [3, 1, 2, 4, 0]  # ceil(length / 8) policy calls
    assert trajs[4].failed and trajs[4].error == "simulator crashed"
    assert stats.env_steps == 74 and stats.env_failures == 1
    # Worker 1 finished task 1 first and was given task 1's next episode, not task 0's.
    resets = [c for c in pool.calls if c[0] == "reset"]
    assert ("reset", 1, 1, 3) in resets
    # A finished episode is never stepped again: steps per worker match the episodes' policy calls.
    assert sum(1 for c in pool.calls if c[0] == "step") == 3 + 1 + 2 + 4


def test_trajectories_pack_with_action_granular_mask():
    pool = ScriptedPool(1, {(0, 0): 11})
    trajs, _ = run_episodes(fake_act, pool, [Episode("s", 0, 0, 1, uid="g")], micro_batch_size=4)
    out = trajectories_to_proto(trajs, chunk=8, action_dim=7, horizon=None, max_decisions=4)
    assert out.batch["action_tokens"].shape == (1, 4, 56)
    assert out.batch["response_mask"].shape == (1, 4 * 56)
    assert int(out.batch["response_mask"].sum()) == 11 * 7  # 11 executed actions of 7 tokens
    assert out.batch["num_decision_steps"].tolist() == [2]
    assert out.batch["success"].tolist() == [1.0]
    assert list(out.non_tensor_batch["jpegs"][0]) == [[b"jpg"], [b"jpg"]]
    assert response_mask(torch.tensor([0, 1]), 14, 7).sum(-1).tolist() == [0, 7]


def test_pipelined_rollout_overlaps_groups_and_gives_the_same_episodes():
    lengths = {(t, i): 8 * (1 + (i % 4)) + t for t in range(2) for i in range(10)}
    episodes = [Episode("s", i % 2, i, i) for i in range(10)]
    lockstep, _ = run_episodes(fake_act, ScriptedPool(4, lengths), episodes, micro_batch_size=4)
    pool = ScriptedPool(4, lengths)
    acts = []

    keys_seen = []

    def act(observations, keys):
        acts.append(tuple(sorted(o["w"] for o in observations)))
        keys_seen.extend(keys)
        return fake_act(observations, keys)

    piped, stats = run_episodes(act, pool, episodes, micro_batch_size=4, stages=2)
    for a, b in zip(lockstep, piped):
        assert (a.finish_step, a.success, len(a.action_tokens)) == (
            b.finish_step,
            b.success,
            len(b.action_tokens),
        )
    assert stats.env_steps == sum(lengths[(e.task_id, e.init_state_id)] for e in episodes)
    # Every decision is keyed by (episode seed, decision step), once each: the sampling streams.
    expected = [(e.seed, t) for e, tr in zip(episodes, piped) for t in range(len(tr.action_tokens))]
    assert sorted(keys_seen) == sorted(expected)
    # The policy only ever sees one group (workers 0, 2 or 1, 3) ...
    assert set(acts) <= {(0,), (2,), (0, 2), (1,), (3,), (1, 3)}
    # ... and computes group 1's actions while group 0's chunk is in flight.
    send0 = pool.calls.index(("send", (0, 2)))
    assert pool.calls.index(("send", (1, 3))) < pool.calls.index(("collect", (0, 2)), send0)
    with pytest.raises(ValueError, match=r"stages=5; allowed: 0\.\.4"):
        run_episodes(fake_act, pool, episodes, micro_batch_size=4, stages=5)


class TimedPool(ScriptedPool):
    """A scripted pool whose chunks finish in order of `speed[w]` ticks: worker w's chunk is ready
    after speed[w] calls to `receive_ready` (the slow worker of a group no longer holds the others)."""

    def __init__(self, num_workers, lengths, speed):
        super().__init__(num_workers, lengths)
        self.speed = speed
        self.age = {}

    def send_step(self, requests):
        super().send_step(requests)
        for w, _ in requests:
            self.age[w] = 0

    def receive_ready(self, workers, block=True):
        self.calls.append(("ready", tuple(workers), block))
        for w in workers:
            self.age[w] += 1
        done = [w for w in workers if self.age[w] >= self.speed[w]]
        if block and not done:
            slowest = min(workers, key=lambda w: self.speed[w] - self.age[w])
            self.age[slowest] = self.speed[slowest]
            done = [slowest]
        return [(w, self.results.pop(w)) for w in done]


def test_continuous_rollout_takes_whoever_is_ready_and_gives_the_same_episodes():
    lengths = {(t, i): 8 * (1 + (i % 4)) + t for t in range(2) for i in range(10)}
    episodes = [Episode("s", i % 2, i, i) for i in range(10)]
    lockstep, _ = run_episodes(fake_act, ScriptedPool(4, lengths), episodes, micro_batch_size=4)
    pool = TimedPool(4, lengths, speed={0: 1, 1: 1, 2: 3, 3: 5})
    batches, keys_seen = [], []

    def act(observations, keys):
        batches.append(tuple(sorted(o["w"] for o in observations)))
        keys_seen.extend(keys)
        return fake_act(observations, keys)

    flowing, stats = run_episodes(act, pool, episodes, micro_batch_size=4, stages=0)
    for a, b in zip(lockstep, flowing):
        assert (a.finish_step, a.success, len(a.action_tokens)) == (
            b.finish_step,
            b.success,
            len(b.action_tokens),
        )
    assert stats.env_steps == sum(lengths[(e.task_id, e.init_state_id)] for e in episodes)
    expected = [(e.seed, t) for e, tr in zip(episodes, flowing) for t in range(len(tr.action_tokens))]
    assert sorted(keys_seen) == sorted(expected)
    # Fast workers 0 and 1 are served on their own while the slow 2 and 3 are still stepping ...
    assert (0, 1) in batches
    # ... results are taken as they come, never by waiting for a whole group.
    assert not any(c[0] == "collect" for c in pool.calls)
    assert any(c[0] == "ready" and len(c[1]) > 1 for c in pool.calls)
