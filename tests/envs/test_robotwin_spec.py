"""The robotwin2 spec's pure logic: suites, protocols, seeds, step limits, config errors, worker runtime."""

from __future__ import annotations

import pytest

from verl.envs import EnvConfig, ResetRequest, get_env_spec
from verl.envs.registry import max_episode_steps
from verl.envs.robotwin import RobotwinConfig, default_venv
from verl.envs.robotwin.config import embodiment_parts
from verl.envs.robotwin.tasks import episode_seed, max_steps


def cfg(**kwargs) -> EnvConfig:
    return EnvConfig(name="robotwin2", sims={"robotwin2": RobotwinConfig(**kwargs)})


def test_one_suite_per_task_with_both_protocols_step_limits():
    spec = get_env_spec("robotwin2")
    assert len(spec.suites) == 50 and "robotwin2_stack_blocks_two" in spec.suites
    assert spec.action_dim == 14 and spec.observation(cfg()).proprio_dim == 14
    assert spec.observation(cfg()).cameras == ("head_camera",)
    assert max_steps("robotwin2_stack_blocks_two", "simplevla") == 400
    assert max_steps("robotwin2_shake_bottle", "simplevla") == 75
    assert max_steps("robotwin2_lift_pot", "simplevla") == 200
    assert max_steps("robotwin2_stack_blocks_two", "official") == 800
    suites = "robotwin2_stack_blocks_two,robotwin2_shake_bottle"
    assert max_episode_steps(cfg(), suites) == 400
    assert max_episode_steps(cfg(protocol="official"), suites) == 800


def test_seeds_follow_the_protocol_rules():
    assert episode_seed(0, "simplevla") == 100000 and episode_seed(999, "simplevla") == 100999
    assert episode_seed(1000, "simplevla") == 100100000 and episode_seed(1127, "simplevla") == 100100127
    assert episode_seed(5, "official") == 100005 and episode_seed(5, "official", official_seed=1) == 200005
    with pytest.raises(ValueError, match=r"init_state_id=100; allowed: 0..99"):
        episode_seed(100, "official")


def test_bad_requests_and_settings_name_the_field():
    spec = get_env_spec("robotwin2")
    with pytest.raises(ValueError, match="robotwin2_stack_blocks_two"):
        spec.check_request(ResetRequest("robotwin2_no_such_task", 0, 0))
    with pytest.raises(ValueError, match="task_id=1; allowed: 0"):
        spec.check_request(ResetRequest("robotwin2_stack_blocks_two", 1, 0))
    with pytest.raises(ValueError, match=r"env.robotwin2.shader='rtx'; allowed"):
        cfg(shader="rtx").validate()
    with pytest.raises(ValueError, match=r"env.robotwin2.protocol"):
        cfg(protocol="leaderboard").validate()
    with pytest.raises(ValueError, match=r"env.robotwin2.embodiment=\['piper', 'piper'\]; allowed"):
        cfg(embodiment=["piper", "piper"]).validate()
    assert embodiment_parts(["piper", "piper", "0.6"]) == ["piper", "piper", 0.6]
    assert embodiment_parts(["aloha-agilex"]) == ["aloha-agilex"]


def test_workers_run_the_robotwin_venv_unless_worker_python_says_otherwise(tmp_path):
    spec = get_env_spec("robotwin2")
    runtime = spec.worker_runtime(cfg(assets_root=str(tmp_path)))
    assert runtime.python == str(default_venv() / "bin" / "python")
    assert ("ROBOTWIN_ASSETS_ROOT", str(tmp_path)) in runtime.env
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "robotwin.env").write_text("VK_ICD_FILENAMES=/x/lvp.json\n")
    runtime = spec.worker_runtime(cfg(venv_python=str(venv / "bin" / "python")))
    assert dict(runtime.env)["VK_ICD_FILENAMES"] == "/x/lvp.json"
    override = cfg()
    override.worker_python = "/usr/bin/python3"
    assert spec.worker_runtime(override).python == "/usr/bin/python3"
    # Other simulators keep the pool's interpreter.
    assert get_env_spec("libero").worker_runtime(EnvConfig()).python is None
