"""Train-state files load as data only: a tampered or foreign file is refused, never executed."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from verl.utils import checkpoint as ckpt
from verl.utils.safe_load import (
    TrainStateError,
    load_extra_state,
    read_dcp_metadata,
    safe_dcp_reader,
    save_extra_state,
)


class _Payload:
    """Unpickling this creates `marker`: proof that a loader executed code from the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _scheduler_state() -> dict:
    opt = torch.optim.AdamW(torch.nn.Linear(2, 2).parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5)
    opt.step()
    sched.step()
    return sched.state_dict()


def test_roundtrip_restores_scheduler_and_every_rng_stream(tmp_path):
    ckpt.seed_everything(3)
    state = {"scheduler": _scheduler_state(), "rng": ckpt.rng_state()}
    expected = (np.random.rand(3), torch.rand(3), __import__("random").random())
    save_extra_state(state, tmp_path / "extra_state_rank0.pt")
    ckpt.seed_everything(99)
    loaded = load_extra_state(tmp_path / "extra_state_rank0.pt")
    ckpt.set_rng_state(loaded["rng"])
    assert loaded["scheduler"] == state["scheduler"]
    got = (np.random.rand(3), torch.rand(3), __import__("random").random())
    assert np.array_equal(got[0], expected[0]) and torch.equal(got[1], expected[1]) and got[2] == expected[2]


def test_tampered_extra_state_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "extra_state_rank0.pt"
    torch.save({"scheduler": {}, "rng": _Payload(str(marker))}, path)
    with pytest.raises(TrainStateError, match="extra_state_rank0.pt"):
        load_extra_state(path)
    assert not marker.exists()


def test_truncated_and_missing_extra_state_name_the_file(tmp_path):
    path = tmp_path / "extra_state_rank1.pt"
    save_extra_state({"scheduler": {}, "rng": {}}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(TrainStateError, match="extra_state_rank1.pt"):
        load_extra_state(path)
    with pytest.raises(FileNotFoundError, match="extra_state_rank7.pt"):
        load_extra_state(tmp_path / "extra_state_rank7.pt")
    foreign = tmp_path / "extra_state_rank2.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(TrainStateError, match="lacks the entries"):
        load_extra_state(foreign)


def _dcp_save(path) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.randn(1, 3)).sum().backward()
    opt.step()
    dcp.save(
        {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, opt)},
        checkpoint_id=str(path),
    )
    return model, opt


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_dcp_metadata_loads_through_the_safe_reader(tmp_path):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    model, _ = _dcp_save(tmp_path / "train_state")
    fresh = torch.nn.Linear(3, 2)
    state = {"model": get_model_state_dict(fresh)}
    dcp.load(state, storage_reader=safe_dcp_reader(tmp_path / "train_state"))
    assert torch.equal(state["model"]["weight"], model.weight.detach())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_tampered_dcp_metadata_is_refused_and_not_executed(tmp_path):
    _dcp_save(tmp_path / "train_state")
    meta = tmp_path / "train_state" / ".metadata"
    marker = tmp_path / "pwned"
    meta.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(TrainStateError, match=r"\.metadata"):
        read_dcp_metadata(meta)
    assert not marker.exists()
    meta.write_bytes(b"\x80\x04garbage")
    with pytest.raises(TrainStateError, match="unreadable"):
        read_dcp_metadata(meta)
