"""EnvPool with real simulator workers: every suite, crashes, hangs, bad input, videos, clean exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import imageio.v2 as imageio
import numpy as np
import psutil
import pytest

from verl.envs import ResetRequest
from verl.envs.libero import SUITES, task_language
from verl.envs.libero.config import libero_env_config
from verl.envs.pool import EnvPool
from verl.envs.video import save_video, video_name

pytestmark = pytest.mark.sim

STEP_TIMEOUT_S = 8.0
# The tasks test_task0_of_every_suite_resets_and_steps leaves loaded on workers 0 and 1; later
# tests use them so that no simulator has to be rebuilt (a rebuild costs seconds).
W0, W1 = "libero_90", "libero_10"


@pytest.fixture(scope="module")
def pool():
    with EnvPool(libero_env_config(step_timeout_s=STEP_TIMEOUT_S, reset_timeout_s=120.0), num_workers=2) as p:
        yield p


def _still(k: int = 8) -> np.ndarray:
    actions = np.zeros((k, 7))
    actions[:, 6] = 1.0
    return actions


def test_task0_of_every_suite_resets_and_steps(pool):
    for first in range(0, len(SUITES), 2):
        batch = [(w, ResetRequest(s, 0, 0)) for w, s in enumerate(SUITES[first : first + 2])]
        results = pool.reset(batch)
        for (_, request), result in zip(batch, results):
            assert not result.failed, result.error
            obs = result.obs
            assert obs["images"]["agentview"].dtype == np.uint8 and obs["images"]["agentview"].shape == (
                256,
                256,
                3,
            )
            assert obs["proprio"].dtype == np.float32 and obs["proprio"].shape == (8,)
            assert obs["instruction"] == task_language(request.suite, 0)
            assert result.info["episode_steps"] == 0 and result.steps == 0
        assert pool.loaded_tasks()[: len(batch)] == [(r.suite, 0) for _, r in batch]
        steps = pool.step([(w, _still()) for w, _ in batch])
        for before, after in zip(results, steps):
            assert not after.failed and after.steps == 8 and after.info["episode_steps"] == 8
            assert after.obs["images"]["agentview"] is not None and not np.array_equal(
                before.obs["proprio"], after.obs["proprio"]
            )


def test_killed_worker_is_replaced_and_the_pool_keeps_serving(pool):
    pool.reset([(0, ResetRequest(W0, 0, 1)), (1, ResetRequest(W1, 0, 1))])
    victim = pool.worker_pids()[1]
    os.kill(victim, signal.SIGKILL)
    results = pool.step([(0, _still()), (1, _still())])
    assert not results[0].failed and results[0].steps == 8
    assert results[1].failed and results[1].done and not results[1].success
    assert "died" in results[1].error and "restarted" in results[1].error
    assert results[1].info["suite"] == W1 and results[1].info["init_state_id"] == 1
    assert pool.worker_pids()[1] != victim and not psutil.pid_exists(victim)
    again = pool.reset([(1, ResetRequest(W1, 0, 2))])[0]
    assert not again.failed, again.error
    assert not pool.step([(1, _still())])[0].failed


def test_hung_worker_times_out_and_is_replaced(pool):
    pool.reset([(0, ResetRequest(W0, 0, 0)), (1, ResetRequest(W1, 0, 0))])
    hung = pool.worker_pids()[0]
    pool.debug_hang_next_step(0, 10 * STEP_TIMEOUT_S)
    start = time.monotonic()
    results = pool.step([(0, _still()), (1, _still())])
    assert time.monotonic() - start < STEP_TIMEOUT_S + 10
    assert results[0].failed and "timed out" in results[0].error
    assert not results[1].failed
    assert not psutil.pid_exists(hung)
    assert not pool.reset([(0, ResetRequest(W0, 0, 0))])[0].failed
    assert pool.step([(0, _still())])[0].steps == 8


def test_send_step_and_collect_match_step_and_guard_their_order(pool):
    requests = [(0, ResetRequest(W0, 0, 3)), (1, ResetRequest(W1, 0, 3))]
    pool.reset(requests)
    lockstep = pool.step([(0, _still()), (1, _still())])
    pool.reset(requests)
    pool.send_step([(1, _still())])
    with pytest.raises(RuntimeError, match="worker 1: the result of its last request was not collected"):
        pool.send_step([(1, _still())])
    with pytest.raises(RuntimeError, match="worker 0 has no request in flight"):
        pool.receive_steps([0])
    pool.send_step([(0, _still())])  # worker 1 steps meanwhile
    split = pool.receive_steps([0]) + pool.receive_steps([1])
    for a, b in zip(lockstep, split):
        assert not b.failed and b.steps == 8
        np.testing.assert_array_equal(a.obs["proprio"], b.obs["proprio"])
        np.testing.assert_array_equal(a.obs["images"]["agentview"], b.obs["images"]["agentview"])


def test_bad_input_gives_clear_errors_or_failed_episodes(pool):
    pids = pool.worker_pids()
    with pytest.raises(ValueError, match="libero_spatial"):
        pool.reset([(0, ResetRequest("libero_1000", 0, 0))])
    with pytest.raises(ValueError, match=r"task_id=10 .*0\.\.9"):
        pool.reset([(0, ResetRequest("libero_goal", 10, 0))])
    with pytest.raises(ValueError, match=r"worker index 5"):
        pool.reset([(5, ResetRequest("libero_goal", 0, 0))])
    with pytest.raises(ValueError, match="repeat"):
        pool.step([(0, _still()), (0, _still())])
    pool.reset([(0, ResetRequest(W0, 0, 0)), (1, ResetRequest(W1, 0, 0))])
    with pytest.raises(ValueError, match=r"\[k >= 1, 7\]"):
        pool.step([(0, np.zeros((8, 6)))])
    nan = _still()
    nan[3, 2] = np.nan
    results = pool.step([(0, nan), (1, _still())])
    assert results[0].failed and results[0].done and results[0].error == "non-finite action"
    assert not results[1].failed
    after = pool.step([(0, _still())])[0]
    assert after.failed and "reset" in after.error
    assert pool.worker_pids() == pids  # no worker was lost to bad input
    assert not pool.reset([(0, ResetRequest(W0, 0, 0))])[0].failed


def test_recorded_episode_returns_every_frame_and_saves_a_video(pool, tmp_path):
    first = pool.reset([(1, ResetRequest(W1, 0, 4, record_video=True))])[0]
    assert len(first.frames) == 1
    frames = list(first.frames)
    for _ in range(2):
        result = pool.step([(1, _still())])[0]
        assert len(result.frames) == 8
        frames += result.frames
    np.testing.assert_array_equal(frames[-1], result.obs["images"]["agentview"])
    name = video_name(W1, 0, 4, result.success)
    path = save_video(frames, str(tmp_path / name), fps=30)
    assert len(imageio.mimread(path)) == 17


def test_close_leaves_no_processes():
    pool = EnvPool(libero_env_config(), num_workers=2)
    pids = pool.worker_pids()
    assert all(psutil.pid_exists(p) for p in pids)
    pool.close()
    pool.close()  # idempotent
    assert psutil.Process().children(recursive=True) == [] or all(
        c.pid not in pids for c in psutil.Process().children(recursive=True)
    )
    assert not any(psutil.pid_exists(p) for p in pids)
    with pytest.raises(RuntimeError, match="closed"):
        pool.step([(0, _still())])


def test_workers_die_with_their_parent():
    script = textwrap.dedent(
        """
        import sys, time
        from verl.envs.libero.config import libero_env_config
        from verl.envs.pool import EnvPool
        pool = EnvPool(libero_env_config(), num_workers=1)
        print(pool.worker_pids()[0], flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    assert psutil.pid_exists(worker)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and psutil.pid_exists(worker):
        time.sleep(0.1)
    assert not psutil.pid_exists(worker) or psutil.Process(worker).status() == psutil.STATUS_ZOMBIE


def test_fresh_simulator_per_episode_starts_each_episode_in_a_new_process():
    cfg = libero_env_config(fresh_simulator_per_episode=True, reset_timeout_s=120.0)
    with EnvPool(cfg, num_workers=1) as pool:
        first = pool.worker_pids()[0]
        obs = [pool.reset([(0, ResetRequest("libero_object", 0, i))])[0].obs for i in (0, 0)]
        second = pool.worker_pids()[0]
        assert first != second and not psutil.pid_exists(first)
        # A new process, the same episode: identical first observations.
        assert np.array_equal(obs[0]["images"]["agentview"], obs[1]["images"]["agentview"])
        pool.reset([(0, ResetRequest("libero_object", 0, 1))])
        assert pool.worker_pids()[0] != second and not psutil.pid_exists(second)
        assert pool.restarts == 0  # replacements, not failures


def test_workers_share_the_cores_unless_told_otherwise(monkeypatch):
    from verl.envs.pool import worker_threads

    cores = len(os.sched_getaffinity(0))
    assert worker_threads(1) == cores and worker_threads(cores) == 1 and worker_threads(4 * cores) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    with EnvPool(libero_env_config(), num_workers=2 * cores) as pool:
        environ = psutil.Process(pool.worker_pids()[0]).environ()
    assert environ["LP_NUM_THREADS"] == "1" and environ["OPENBLAS_NUM_THREADS"] == "1"
    assert environ["OMP_NUM_THREADS"] == "3"  # the caller's setting wins


def test_receive_ready_returns_finished_chunks_first():
    with EnvPool(libero_env_config(step_timeout_s=STEP_TIMEOUT_S), num_workers=2) as pool:
        pool.reset([(w, ResetRequest("libero_object", 0, w)) for w in range(2)])
        pool.debug_hang_next_step(1, 3.0)
        pool.send_step([(0, _still()), (1, _still())])
        first = pool.receive_ready([0, 1])  # worker 0's chunk; worker 1 sleeps 3 s first
        assert [w for w, _ in first] == [0] and first[0][1].steps == 8
        assert pool.receive_ready([1], block=False) == []  # still sleeping, not waited for
        (late,) = pool.receive_ready([1])
        assert late[0] == 1 and late[1].steps == 8 and not late[1].failed
