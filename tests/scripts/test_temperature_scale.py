"""Temperature scaling of the action head: the model method and scripts/temperature_scale.py."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from tests.models.conftest import make_observations
from verl.models.openvla_oft.configuration import tiny
from verl.models.openvla_oft.policy import OpenVLAOFTPolicy
from verl.models.openvla_oft.tiny import write_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location(
        "temperature_scale", ROOT / "scripts" / "temperature_scale.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), tiny(use_proprio=True), seed=3)


def test_scaled_checkpoint_samples_at_t_as_the_original_at_t_over_scale(script, checkpoint, tmp_path):
    out = script.scale_checkpoint(checkpoint, 3.2, tmp_path / "scaled")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in checkpoint.iterdir())
    assert not (tmp_path / "scaled.partial").exists()
    original = OpenVLAOFTPolicy.from_pretrained(checkpoint)
    scaled = OpenVLAOFTPolicy.from_pretrained(out)
    batch = original.prepare(make_observations(4, seed=1)).batch()
    logits, logits_scaled = original.action_logits(batch), scaled.action_logits(batch)
    torch.testing.assert_close(logits_scaled, 3.2 * logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(logits_scaled.argmax(-1), logits.argmax(-1))

    # Sampling the scaled policy at 1.6 is sampling the original at 0.5: same tokens, same log-probs.
    obs = make_observations(4, seed=2)
    a = scaled.act(obs, temperature=1.6, row_seeds=[11, 12, 13, 14])
    b = original.act(obs, temperature=0.5, row_seeds=[11, 12, 13, 14])
    assert torch.equal(a.action_tokens, b.action_tokens)
    torch.testing.assert_close(a.log_probs, b.log_probs, rtol=1e-4, atol=1e-4)
    # ... and not the original at 1.6 (the scaled policy is sharper there).
    c = original.act(obs, temperature=1.6, row_seeds=[11, 12, 13, 14])
    assert not torch.equal(a.action_tokens, c.action_tokens)

    # Only the action rows of lm_head changed.
    before, after = original.model.state_dict(), scaled.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["language_model.lm_head.weight"]
    begin, bins = original.config.action_token_begin, original.config.n_action_bins
    head, head_scaled = before[changed[0]], after[changed[0]]
    assert torch.equal(head[:begin], head_scaled[:begin])
    assert torch.equal(head[begin + bins :], head_scaled[begin + bins :])


def test_scale_checkpoint_refuses_bad_input(script, checkpoint, tmp_path):
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(SystemExit, match="--scale"):
            script.scale_checkpoint(checkpoint, bad, tmp_path / f"bad{bad}")
        assert not (tmp_path / f"bad{bad}").exists()
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        script.scale_checkpoint(checkpoint, 2.0, tmp_path / "taken")
    with pytest.raises(SystemExit, match="no config.json"):
        script.scale_checkpoint(tmp_path / "taken", 2.0, tmp_path / "new")


def test_command_line(script, checkpoint, tmp_path, capsys):
    script.main(["--checkpoint", str(checkpoint), "--scale", "2", "--out", str(tmp_path / "s2")])
    assert json.loads(capsys.readouterr().out) == {"checkpoint": str(tmp_path / "s2"), "scale": 2.0}
    assert (tmp_path / "s2" / "model.safetensors").is_file()
