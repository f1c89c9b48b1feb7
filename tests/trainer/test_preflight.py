"""Bad checkpoint paths and files fail before Ray starts, naming the field or the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from verl.trainer.preflight import check_model_dir, check_resume, check_safetensors_file
from verl.utils import checkpoint as ckpt
from verl.utils.safe_load import TrainStateError, save_extra_state

FIELD = "actor_rollout_ref.model.path"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from verl.models.openvla_oft.tiny import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt", unnorm_key="libero_object")


@pytest.fixture
def copy(tiny, tmp_path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(tiny, dst)
    return dst


def test_a_good_checkpoint_passes(tiny):
    check_model_dir(str(tiny), FIELD, "libero_object", "actor_rollout_ref.model.unnorm_key")


def test_missing_directory_and_files_name_the_field(copy, tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{FIELD}=.*no such directory"):
        check_model_dir(str(tmp_path / "nope"), FIELD)
    (copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=f"{FIELD}=.*model.safetensors"):
        check_model_dir(str(copy), FIELD)


def test_truncated_safetensors_names_the_file(copy):
    file = copy / "model.safetensors"
    data = file.read_bytes()
    for cut in (4, 200, len(data) // 2):
        file.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="model.safetensors.*truncated"):
            check_safetensors_file(file)


def test_no_statistics_and_wrong_unnorm_key(copy):
    with pytest.raises(ValueError, match="actor_rollout_ref.model.unnorm_key='libero_99'.*known keys"):
        check_model_dir(str(copy), FIELD, "libero_99", "actor_rollout_ref.model.unnorm_key")
    (copy / "dataset_statistics.json").unlink()
    config = json.loads((copy / "config.json").read_text())
    config["norm_stats"] = None
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="no dataset_statistics.json and no norm_stats"):
        check_model_dir(str(copy), FIELD)


def test_wrong_shape_weights_name_the_checkpoint(copy):
    from safetensors.torch import load_file, save_file

    from verl.models.registry import load_policy

    state = load_file(str(copy / "model.safetensors"))
    key = next(k for k, v in state.items() if v.ndim == 2)
    state[key] = torch.zeros(3, 3)
    save_file(state, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match=f"(?s)checkpoint {copy}.*{key}"):
        load_policy("openvla-oft", copy)


def test_partial_and_tampered_resume_checkpoints_are_refused(tmp_path):
    root = tmp_path / "run"
    ckpt.begin_checkpoint(root, 3)  # a killed save: only global_step_3.partial
    with pytest.raises(FileNotFoundError, match="trainer.resume_from_path=.*COMPLETE"):
        check_resume("resume_path", str(root / "global_step_3.partial"), root)
    assert check_resume("auto", None, root) is None  # auto ignores the partial directory
    path = ckpt.begin_checkpoint(root, 4)
    (path / "trainer_state.json").write_text("{}")
    torch.save({"scheduler": {}, "rng": {"x": print}}, path / "extra_state_rank0.pt")
    ckpt.commit_checkpoint(root, 4)
    with pytest.raises(TrainStateError, match="extra_state_rank0.pt"):
        check_resume("auto", None, root)
    save_extra_state({"scheduler": {}, "rng": {}}, root / "global_step_4" / "extra_state_rank0.pt")
    assert check_resume("auto", None, root) == root / "global_step_4"
