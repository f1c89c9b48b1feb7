"""Checks the driver runs before Ray starts, so that a bad path or file fails in a second, naming the
field and the file, instead of inside a worker minutes later.

- the model checkpoint: directory, `config.json`, every safetensors file complete (header and data
  size), action statistics present (`dataset_statistics.json` or `norm_stats`), `unnorm_key` known;
- the checkpoint a run resumes from: complete, its train-state files loadable as data only.
Nothing is written or modified.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from verl.models.registry import PRISMATIC_LAYOUT, checkpoint_layout
from verl.utils import checkpoint as ckpt
from verl.utils.safe_load import load_extra_state, read_dcp_metadata

# safetensors: an 8-byte little-endian header length, a JSON header, then the tensor bytes.
_MAX_HEADER_BYTES = 100 << 20


def check_safetensors_file(file: str | Path) -> dict[str, Any]:
    """The header of a safetensors file; ValueError naming the file when it is truncated or corrupt."""
    file = Path(file)
    size = file.stat().st_size
    with open(file, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise ValueError(f"{file}: truncated safetensors file ({size} bytes, no header)")
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, _MAX_HEADER_BYTES):
            raise ValueError(
                f"{file}: truncated or not a safetensors file (header of {n} bytes, file of {size} bytes)"
            )
        try:
            header = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ValueError(f"{file}: corrupt safetensors header (not JSON)") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise ValueError(
            f"{file}: truncated safetensors file ({size} bytes; its header needs {8 + n + end} bytes)"
        )
    return header


def check_model_dir(path: str, field: str, unnorm_key: str | None = None, unnorm_field: str = "") -> None:
    """The checkpoint directory `path` (config field `field`) holds a loadable policy."""
    from verl.models.openvla_oft.action_tokenizer import (
        DATASET_STATISTICS_NAME,
        load_dataset_statistics,
        select_unnorm_key,
    )
    from verl.models.openvla_oft.checkpoint_io import checkpoint_files

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{field}={path!r}: no such directory (expected a checkpoint in the HF layout)"
        )
    config_file = root / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{field}={path!r}: no config.json in the checkpoint directory")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_file}: not valid JSON ({err.msg} at line {err.lineno})") from None
    try:
        files = checkpoint_files(root)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{field}={path!r}: {err}") from None
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"{field}={path!r}: the index names {file.name}, which is missing")
        check_safetensors_file(file)
    try:
        statistics = load_dataset_statistics(root)
    except json.JSONDecodeError as err:
        raise ValueError(f"{root / DATASET_STATISTICS_NAME}: not valid JSON ({err.msg})") from None
    statistics = statistics or config.get("norm_stats")
    if not statistics:
        raise FileNotFoundError(
            f"{field}={path!r}: no {DATASET_STATISTICS_NAME} and no norm_stats in config.json; the action "
            "statistics are needed to turn action tokens into robot actions"
        )
    if unnorm_key is not None:
        try:
            select_unnorm_key(statistics, unnorm_key)
        except ValueError as err:
            raise ValueError(f"{unnorm_field}={unnorm_key!r}: {err}") from None


def check_resume(resume_mode: str, resume_from_path: str | None, root: str | Path) -> Path | None:
    """The checkpoint a run would resume from, checked complete and its train-state files safe."""
    path = ckpt.resolve_resume_checkpoint(
        resume_mode, resume_from_path, root, required=("trainer_state.json",)
    )
    if path is None:
        return None
    if (path / "train_state").is_dir():
        read_dcp_metadata(path / "train_state" / ".metadata")
    for extra in sorted(path.glob("extra_state_rank*.pt")):
        load_extra_state(extra)
    return path


def check_prompts(config: Any) -> None:
    """Task ids and initial states exist, and there is something to train and validate on."""
    from verl.envs.registry import get_env_spec
    from verl.trainer.config import ConfigError
    from verl.trainer.ppo.prompts import PromptSampler, build_prompts

    d, t = config.data, config.trainer
    spec = get_env_spec(config.env.name)
    val = build_prompts(spec, d.task_suite_name, d.task_ids, d.val_init_states, "data.val_init_states")
    if not val:
        raise ConfigError(f"data.task_ids={d.task_ids} selects no task: no validation prompts")
    if not t.val_only:
        train = build_prompts(spec, d.task_suite_name, d.task_ids, d.train_init_states)
        PromptSampler(train, False, 0)  # raises on an empty prompt list


def preflight_ppo(config: Any) -> None:
    """Everything `RayTrainer` would otherwise find only inside its workers, or after Ray started."""
    m, t = config.actor_rollout_ref.model, config.trainer
    check_prompts(config)
    if checkpoint_layout(m.vla) == PRISMATIC_LAYOUT:
        check_model_dir(
            m.path, "actor_rollout_ref.model.path", m.unnorm_key, "actor_rollout_ref.model.unnorm_key"
        )
    elif not Path(m.path).is_dir():
        raise FileNotFoundError(f"actor_rollout_ref.model.path={m.path!r}: no such directory")
    if not t.val_only:
        check_resume(t.resume_mode, t.resume_from_path, t.default_local_dir)
