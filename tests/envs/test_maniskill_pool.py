"""ManiSkill3 in the simulator pool: rendering only at chunk boundaries gives the images of rendering
every step; a killed or hung worker is replaced and the pool keeps serving."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest

from verl.envs import ResetRequest
from verl.envs.maniskill import SUITE, maniskill_env_config, task_id_of
from verl.envs.pool import EnvPool

pytestmark = [pytest.mark.sim, pytest.mark.maniskill, pytest.mark.slow]

STEP_TIMEOUT_S = 10.0
PICK = task_id_of("PickCube-v1")


def pool_of(render_mode: str) -> EnvPool:
    cfg = maniskill_env_config(
        render_mode=render_mode, camera_size=96, use_hand_camera=True, step_timeout_s=STEP_TIMEOUT_S
    )
    return EnvPool(cfg, num_workers=1)


def chunks(seed: int, n: int, k: int = 8) -> list[np.ndarray]:
    """Random actions that move the arm and toggle the gripper (both cameras see changes)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = rng.uniform(-0.6, 0.6, size=(k, 7))
        a[:, 6] = rng.integers(0, 2, size=k)
        out.append(a)
    return out


def test_chunk_rendering_equals_every_step_rendering():
    actions = chunks(0, 4)
    runs = {}
    with pool_of("chunk") as chunked, pool_of("every_step") as every:
        pools = {"chunk": chunked, "every_step": every}
        with ThreadPoolExecutor(2) as threads:  # both workers build their simulator at the same time
            resets = {
                m: threads.submit(p.reset, [(0, ResetRequest(SUITE, PICK, 5))]) for m, p in pools.items()
            }
            runs = {mode: future.result() for mode, future in resets.items()}
        for a in actions:
            for pool in pools.values():
                pool.send_step([(0, a)])
            for mode, pool in pools.items():
                runs[mode] += pool.receive_steps([0])
    for chunk, every in zip(runs["chunk"], runs["every_step"]):
        assert not chunk.failed and not every.failed
        assert chunk.steps == every.steps and chunk.success == every.success
        np.testing.assert_array_equal(chunk.obs["proprio"], every.obs["proprio"])
        for camera in ("base_camera", "hand_camera"):
            np.testing.assert_array_equal(chunk.obs["images"][camera], every.obs["images"][camera])
    # The arm moved: the boundary images change from chunk to chunk.
    first, last = runs["chunk"][0].obs["images"], runs["chunk"][-1].obs["images"]
    assert np.abs(first["hand_camera"].astype(int) - last["hand_camera"]).max() > 50


def test_killed_and_hung_workers_are_replaced():
    # Physics only: recovery is the pool's business, and builds without a renderer take ~2 s, not ~20 s.
    cfg = maniskill_env_config(render_mode="none", step_timeout_s=STEP_TIMEOUT_S, reset_timeout_s=240.0)
    still = np.zeros((8, 7))
    still[:, 6] = 1.0
    with EnvPool(cfg, num_workers=2) as pool:
        requests = [(0, ResetRequest(SUITE, PICK, 1)), (1, ResetRequest(SUITE, PICK, 2))]
        assert not any(r.failed for r in pool.reset(requests))

        victim = pool.worker_pids()[1]
        os.kill(victim, signal.SIGKILL)
        results = pool.step([(0, still), (1, still)])
        assert not results[0].failed and results[0].steps == 8
        assert results[1].failed and results[1].done and "died" in results[1].error
        assert results[1].info["init_state_id"] == 2
        assert pool.worker_pids()[1] != victim and not psutil.pid_exists(victim)
        again = pool.reset([(1, ResetRequest(SUITE, PICK, 3))])[0]  # a fresh worker builds the task
        assert not again.failed, again.error

        hung = pool.worker_pids()[0]
        pool.debug_hang_next_step(0, 10 * STEP_TIMEOUT_S)
        start = time.monotonic()
        results = pool.step([(0, still), (1, still)])
        assert time.monotonic() - start < STEP_TIMEOUT_S + 10
        assert results[0].failed and "timed out" in results[0].error
        assert not results[1].failed
        assert not psutil.pid_exists(hung)
        assert not pool.reset([(0, ResetRequest(SUITE, PICK, 4))])[0].failed
        assert pool.step([(0, still)])[0].steps == 8
