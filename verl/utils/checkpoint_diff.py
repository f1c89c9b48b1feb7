"""How far apart two complete checkpoints are: the evidence that a resumed run equals an uninterrupted one.

Compares the released weights (`actor/*.safetensors`), the sharded model and optimiser state
(`train_state/`, torch.distributed.checkpoint) and each rank's scheduler state (`extra_state_rank*.pt`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from verl.utils.safe_load import load_extra_state, safe_dcp_reader


def read_dcp_state(path: str | Path) -> dict[str, Any]:
    """A whole torch.distributed.checkpoint directory as one nested dict, in this process, through the
    restricted metadata reader (what `format_utils.dcp_to_torch_save` does, without the unsafe read)."""
    from torch.distributed.checkpoint.default_planner import _EmptyStateDictLoadPlanner
    from torch.distributed.checkpoint.state_dict_loader import _load_state_dict

    state: dict[str, Any] = {}
    _load_state_dict(
        state, storage_reader=safe_dcp_reader(path), planner=_EmptyStateDictLoadPlanner(), no_dist=True
    )
    return state


def _flatten(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().float().cpu()
    elif isinstance(obj, bool):
        out[prefix] = torch.tensor(float(obj))
    elif isinstance(obj, (int, float)):
        out[prefix] = torch.tensor(float(obj), dtype=torch.float64)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, f"{prefix}/{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{prefix}/{i}", out)


def checkpoint_tensors(step_dir: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """{"weights": ..., "optimizer": ..., "scheduler": ...}, each a flat name -> tensor dict."""
    from safetensors.torch import load_file

    step_dir = Path(step_dir)
    weights: dict[str, torch.Tensor] = {}
    for f in sorted((step_dir / "actor").glob("*.safetensors")):
        weights.update({k: v.float() for k, v in load_file(str(f)).items()})
    optimizer: dict[str, torch.Tensor] = {}
    if (step_dir / "train_state").is_dir():
        state = read_dcp_state(step_dir / "train_state")
        _flatten(state.get("optimizer", {}), "optimizer", optimizer)
        _flatten(state.get("model", {}), "model", optimizer)
    scheduler: dict[str, torch.Tensor] = {}
    for f in sorted(step_dir.glob("extra_state_rank*.pt")):
        _flatten(load_extra_state(f)["scheduler"], f.stem, scheduler)
    return {"weights": weights, "optimizer": optimizer, "scheduler": scheduler}


def max_abs_diff(a_dir: str | Path, b_dir: str | Path) -> dict[str, float]:
    """Per part, the largest absolute element difference (inf when shapes differ or a part is empty).

    A resumed run holds optimiser state for parameters that never receive a gradient (torch's
    checkpoint API initialises every parameter's state before loading into it: step 1, zero moments),
    where the uninterrupted run holds none. AdamW skips such parameters, so that state is compared
    with zeros (its `step` counters are ignored)."""
    a, b = checkpoint_tensors(a_dir), checkpoint_tensors(b_dir)
    out = {}
    for part in a:
        if not a[part] or not b[part]:
            out[part] = float("inf")
            continue
        worst = 0.0
        for k in set(a[part]) | set(b[part]):
            x, y = a[part].get(k), b[part].get(k)
            if x is None or y is None:
                if part != "optimizer":
                    worst = float("inf")
                elif not k.endswith("/step"):
                    worst = max(worst, float((x if y is None else y).abs().max()))
                continue
            if x.shape != y.shape:
                worst = float("inf")
            elif x.numel():
                worst = max(worst, float((x.double() - y.double()).abs().max()))
        out[part] = worst
    return out
