"""scripts/bench/faults.py at a small size: the bad-input catalogue answers every case with an error
naming the field or file and changes no file; killed and frozen simulators never yield a success,
never hang a call past its timeout and leave no process behind."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str):
    path = ROOT / "scripts" / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def faults():
    return _module("faults")


def test_bad_config_checkpoint_and_resume_inputs_get_clear_errors(faults, tmp_path):
    cat = faults._catalogue()
    tiny = faults._tiny(tmp_path)
    results = [faults._check(n, e, f) for n, e, f in cat.config_cases(tmp_path) if "CLI" not in n]
    results += [faults._check(n, e, f, watch=w) for n, e, f, w in cat.checkpoint_cases(tiny, tmp_path)]
    results += [faults._check(n, e, f, watch=w) for n, e, f, w in cat.resume_cases(tmp_path)]
    assert len(results) >= 30
    bad = [r for r in results if not (r["clear"] and r["intact"])]
    assert not bad, bad
    assert not (tmp_path / "pwned").exists()


def test_the_catalogue_check_flags_an_unclear_error(faults):
    def vague():
        raise ValueError("something went wrong")

    assert not faults._check("vague", ["data.n_samples"], vague)["clear"]
    assert not faults._check("silent", ["x"], lambda: None)["clear"]


@pytest.mark.sim
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["kill_sim", "hang_sim"])
def test_simulator_faults_small(faults, mode):
    line = faults.sim_faults(mode, episodes=4, workers=2, faults=2, seed=0)
    assert line["false_successes"] == 0 and line["hangs"] == 0 and line["orphans"] == 0, line
    assert line["episodes_failed_by_fault"] >= line["signals"] > 0 or line["signals"] == 0, line
