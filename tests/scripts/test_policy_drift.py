"""scripts/bench/policy_drift.py: drift figures, the noise control, and a comparison in real LIBERO."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def drift():
    spec = importlib.util.spec_from_file_location(
        "policy_drift", ROOT / "scripts" / "bench" / "policy_drift.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_drift_of_identical_and_shifted_logits(drift):
    g = torch.Generator().manual_seed(0)
    ref = torch.randn(5, 14, 256, generator=g)  # 5 observations, chunk 2 x 7 dims
    same = drift.drift_stats(ref, ref.clone(), action_dim=7)
    assert same["observations"] == 5
    assert same["kl_per_token"]["T1"] == pytest.approx(0.0, abs=1e-12)
    assert same["argmax_changed"] == 0.0 and same["argmax_shift_bins"] == 0.0
    assert same["entropy_reference"] == same["entropy_policy"]

    # Move dimension 3's greedy bin by 20 bins at every token of that dimension, nothing else.
    moved = ref.clone()
    dim3 = torch.arange(14) % 7 == 3
    best = ref.argmax(-1)
    target = (best + 20) % 256
    rows, cols = torch.nonzero(dim3.expand(5, 14), as_tuple=True)
    moved[rows, cols, target[rows, cols]] = ref[rows, cols].max(-1).values + 5.0
    stats = drift.drift_stats(ref, moved, action_dim=7)
    per_dim = np.array(stats["argmax_changed_per_dim"])
    assert per_dim[3] == 1.0 and np.all(np.delete(per_dim, 3) == 0.0)
    assert stats["argmax_changed"] == pytest.approx(1 / 7)
    assert stats["argmax_moved_over_16_bins"] == pytest.approx(1 / 7)
    kl = np.array(stats["kl_per_dim"]["T1"])
    assert kl[3] > 0.5 and np.all(np.delete(kl, 3) < 1e-12)
    # A higher temperature flattens both distributions: less KL between them.
    assert stats["kl_per_token"]["T1.6"] < stats["kl_per_token"]["T1"]

    with pytest.raises(ValueError, match="whole number of 7-d actions"):
        drift.drift_stats(ref[:, :13], ref[:, :13], action_dim=7)


def test_noise_control_copy(drift, tmp_path):
    from safetensors.torch import load_file

    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    ref = write_tiny_checkpoint(tmp_path / "ref")
    out = drift.write_noise_copy(ref, tmp_path / "noisy", std=0.01, seed=3)
    assert {p.name for p in ref.iterdir()} == {p.name for p in out.iterdir()}
    a, b = load_file(ref / "model.safetensors"), load_file(out / "model.safetensors")
    diffs = torch.cat([(b[k].float() - a[k].float()).flatten() for k in a if a[k].is_floating_point()])
    assert diffs.std().item() == pytest.approx(0.01, rel=0.02) and abs(diffs.mean().item()) < 1e-3
    # Same seed, same noise; an existing directory is refused rather than overwritten.
    again = drift.write_noise_copy(ref, tmp_path / "noisy2", std=0.01, seed=3)
    c = load_file(again / "model.safetensors")
    assert all(torch.equal(b[k], c[k]) for k in b)
    with pytest.raises(SystemExit, match="exists"):
        drift.write_noise_copy(ref, tmp_path / "noisy", std=0.01, seed=3)
    with pytest.raises(SystemExit, match="--noise-std must be > 0"):
        drift.write_noise_copy(ref, tmp_path / "noisy3", std=0.0, seed=3)


def test_compare_in_libero(drift, tmp_path, capsys):
    """A policy against itself drifts by nothing; against its noise control, by something."""
    from verl.models.openvla_oft.configuration import tiny
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    ref = write_tiny_checkpoint(tmp_path / "ref", config=tiny(image_size=112))
    noisy = drift.write_noise_copy(ref, tmp_path / "noisy", std=0.02, seed=0)
    common = [
        "--reference",
        str(ref),
        "--tasks",
        "0",
        "--init-states",
        "0",
        "--decisions",
        "2",
        "--max-steps",
        "24",
    ]
    drift.main([*common, "--policy", str(ref)])
    drift.main([*common, "--policy", str(noisy)])
    same, moved = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert same["bench"] == "policy_drift" and same["observations"] == 2
    assert same["kl_per_token"]["T1"] == pytest.approx(0.0, abs=1e-9) and same["argmax_changed"] == 0.0
    assert moved["observations"] == 2 and moved["kl_per_token"]["T1"] > 1e-4
