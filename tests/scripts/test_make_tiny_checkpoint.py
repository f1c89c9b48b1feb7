"""scripts/make_tiny_checkpoint.py writes checkpoints both model families load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "make_tiny_checkpoint.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_openvla_tiny_checkpoint_loads_as_openvla(tmp_path):
    from verl.models.registry import load_policy

    proc = run(str(tmp_path / "ckpt"), "--vla", "openvla", "--unnorm-key", "libero_object")
    assert proc.returncode == 0, proc.stderr
    for name in ("config.json", "model.safetensors", "dataset_statistics.json", "tokenizer.json"):
        assert (tmp_path / "ckpt" / name).is_file(), name
    policy = load_policy("openvla", tmp_path / "ckpt", unnorm_key="libero_object")
    assert (policy.chunk_size, policy.tokens_per_step) == (1, 7)
    proc = run(str(tmp_path / "bad"), "--vla", "openvla", "--chunk", "8")
    assert proc.returncode != 0 and "--chunk 1" in proc.stderr
