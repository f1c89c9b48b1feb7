"""RoboTwin 2.0 through the EnvPool: RoboTwin's real task, step and success code in workers that run in
`.venv-robotwin` (built here by scripts/setup_robotwin.sh if needed), with the test-only stand-in Piper
(tests/envs/robotwin_standin), the raster shader and the clean configuration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import psutil
import pytest

from verl.envs import EnvConfig, ResetRequest
from verl.envs.pool import EnvPool
from verl.envs.robotwin import RobotwinConfig

pytestmark = [pytest.mark.sim, pytest.mark.robotwin, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "envs" / "robotwin_standin"
STEP_TIMEOUT_S = 30.0


@pytest.fixture(scope="session")
def robotwin_venv():
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup_robotwin.sh")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def robotwin_config(name: str = "robotwin2", **kwargs) -> EnvConfig:
    settings = RobotwinConfig(assets_root=str(STANDIN), shader="default", point_light_shadows=False, **kwargs)
    return EnvConfig(
        name=name, sims={name: settings}, step_timeout_s=STEP_TIMEOUT_S, reset_timeout_s=180.0, num_workers=2
    )


@pytest.fixture(scope="module")
def pool(robotwin_venv):
    with EnvPool(robotwin_config(), num_workers=2) as p:
        yield p


def hold(proprio: np.ndarray, k: int = 25) -> np.ndarray:
    return np.tile(np.asarray(proprio, dtype=np.float64), (k, 1))


def test_worker_side_imports_only_numpy_and_the_standard_library():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import verl.envs.worker, verl.envs.robotwin, verl.envs.libero, verl.envs.registry\n"
        "verl.envs.registry.available_envs()\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'numpy', 'verl', '__mp_main__'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_reset_gives_14d_proprio_and_a_240x320_head_image(pool):
    requests = [
        (0, ResetRequest("robotwin2_stack_blocks_two", 0, 0)),
        (1, ResetRequest("robotwin2_handover_block", 0, 3)),
    ]
    results = pool.reset(requests)
    for result in results:
        assert not result.failed, result.error
        image = result.obs["images"]["head_camera"]
        assert image.dtype == np.uint8 and image.shape == (240, 320, 3) and image.std() > 5
        assert result.obs["proprio"].dtype == np.float32 and result.obs["proprio"].shape == (14,)
        assert result.obs["instruction"]
        assert result.info["max_steps"] == 400 and result.info["episode_steps"] == 0
    assert results[0].info["robotwin_seed"] == 100000 and results[1].info["robotwin_seed"] == 100003
    # Workers run the RoboTwin venv's interpreter.
    for pid in pool.worker_pids():
        assert ".venv-robotwin" in " ".join(psutil.Process(pid).cmdline())


def test_a_25_step_chunk_moves_the_joints_to_their_targets(pool):
    start = pool.reset([(0, ResetRequest("robotwin2_blocks_ranking_rgb", 0, 1))])[0]
    assert not start.failed, start.error
    target = start.obs["proprio"].astype(np.float64)
    target[[0, 1, 2]] += [0.3, 0.2, -0.2]  # left arm joints
    target[[7, 9]] += [-0.3, -0.2]  # right arm joints
    first = pool.step([(0, hold(target))])[0]
    assert not first.failed, first.error
    assert first.steps == 25 and first.info["episode_steps"] == 25 and not first.done
    np.testing.assert_allclose(first.obs["proprio"], target, atol=1e-5)  # proprio = drive targets
    second = pool.step([(0, hold(target))])[0]
    measured = second.info["joint_qpos"]
    arm = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    print("tracking error (rad):", np.abs(measured[arm] - target[arm]).max())
    assert np.abs(measured[arm] - target[arm]).max() < 0.05


def test_step_limit_ends_the_episode(pool):
    start = pool.reset([(1, ResetRequest("robotwin2_stack_blocks_two", 0, 2))])[0]
    assert not start.failed, start.error
    steps, result = 0, start
    for _ in range(20):
        result = pool.step([(1, hold(start.obs["proprio"]))])[0]
        assert not result.failed, result.error
        steps += result.steps
        if result.done:
            break
    assert result.done and not result.success and steps == 400 == result.info["episode_steps"]


def test_killed_and_hung_workers_are_replaced_and_their_episodes_fail(pool):
    starts = pool.reset(
        [
            (0, ResetRequest("robotwin2_stack_blocks_two", 0, 4)),
            (1, ResetRequest("robotwin2_stack_blocks_two", 0, 5)),
        ]
    )
    assert not any(r.failed for r in starts)
    victim = pool.worker_pids()[1]
    os.kill(victim, signal.SIGKILL)
    pool.debug_hang_next_step(0, STEP_TIMEOUT_S + 30)
    results = pool.step([(0, hold(starts[0].obs["proprio"])), (1, hold(starts[1].obs["proprio"]))])
    assert results[0].failed and "timed out" in results[0].error and "restarted" in results[0].error
    assert results[1].failed and "died" in results[1].error and results[1].info["init_state_id"] == 5
    assert not psutil.pid_exists(victim)
    again = pool.reset(
        [
            (0, ResetRequest("robotwin2_stack_blocks_two", 0, 6)),
            (1, ResetRequest("robotwin2_stack_blocks_two", 0, 7)),
        ]
    )
    assert not any(r.failed for r in again), [r.error for r in again]


def test_missing_asset_is_a_clear_error(robotwin_venv, tmp_path):
    with EnvPool(_missing(tmp_path), num_workers=1) as p:
        result = p.reset([(0, ResetRequest("robotwin2_stack_blocks_two", 0, 0))])[0]
    assert result.failed and "objaverse/list.json" in result.error, result.error


def _missing(tmp_path) -> EnvConfig:
    cfg = robotwin_config()
    cfg.sims["robotwin2"].assets_root = str(tmp_path)
    return cfg


def test_success_ends_the_episode_with_reward_one(robotwin_venv):
    import tests.plugins.robotwin_teleport  # noqa: F401  (registers robotwin2_teleport)

    with EnvPool(robotwin_config("robotwin2_teleport"), num_workers=1) as p:
        start = p.reset([(0, ResetRequest("robotwin2_stack_blocks_two", 0, 0))])[0]
        assert not start.failed, start.error
        result = p.step([(0, hold(start.obs["proprio"]))])[0]
    assert not result.failed, result.error
    assert result.success and result.done and result.info["episode_steps"] == 25


def test_any_simulator_runs_under_another_interpreter(robotwin_venv):
    """env.worker_python: the toy simulator's workers run the RoboTwin venv's numpy-1 interpreter, and the
    numpy-2 pool exchanges arrays with them both ways."""
    import tests.plugins.toy_sim  # noqa: F401  (registers "toy")

    python = str(ROOT / ".venv-robotwin" / "bin" / "python")
    cfg = EnvConfig(name="toy", worker_python=python, step_timeout_s=5.0)
    with EnvPool(cfg, num_workers=1) as p:
        start = p.reset([(0, ResetRequest("toy_reach", 0, 0))])[0]
        assert not start.failed, start.error
        # Checked once the worker has answered (right after the spawn its command line may be empty).
        assert python in psutil.Process(p.worker_pids()[0]).cmdline()
        result = p.step([(0, np.full((3, 3), 0.1))])[0]
        assert not result.failed, result.error
        np.testing.assert_allclose(result.obs["proprio"], start.obs["proprio"] + 0.3, atol=1e-6)
        victim = p.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        assert "died" in p.step([(0, np.zeros((1, 3)))])[0].error
        assert not p.reset([(0, ResetRequest("toy_reach", 0, 1))])[0].failed
        assert python in psutil.Process(p.worker_pids()[0]).cmdline()
