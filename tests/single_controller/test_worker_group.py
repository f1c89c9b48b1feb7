"""Worker-group dispatch and collect with 2 CPU workers, and a 2-rank FSDP2 step inside Ray workers
whose result matches a single-process step on the same data."""

import copy
import sys

import numpy as np
import pytest
import torch
from ray.cloudpickle import register_pickle_by_value

from verl.protocol import DataProto
from verl.single_controller import Dispatch, RayResourcePool, RayWorkerGroup, Worker
from verl.single_controller.dispatch import dispatch, split_for_ranks

pytestmark = pytest.mark.ray
# Worker classes defined here travel to the Ray actors by value (tests are not an installed package).
register_pickle_by_value(sys.modules[__name__])


def test_split_for_ranks_uneven_is_contiguous():
    d = DataProto.from_dict(tensors={"i": torch.arange(7)})
    parts = split_for_ranks(d, 3)
    assert [p["i"].tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]


def test_all_to_all_needs_one_entry_per_rank():
    with pytest.raises(ValueError, match="world_size=2"):
        dispatch(Dispatch.ALL_TO_ALL, 2, ([1, 2, 3],), {})


class EchoWorker(Worker):
    def whoami(self):
        import os

        return self.rank, self.world_size, os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])

    def add_rank(self, data: DataProto, offset: int) -> DataProto:
        out = DataProto.from_dict(tensors={"r": torch.full((len(data),), self.rank + offset)})
        return data.union(out)

    def scale(self, value):
        return value * (self.rank + 1)


def test_dispatch_and_collect_two_cpu_workers(ray_local):
    pool = RayResourcePool([2], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, EchoWorker)
    try:
        who = wg.call("whoami")
        assert [w[:2] for w in who] == [(0, 2), (1, 2)]
        assert len({(w[2], w[3]) for w in who}) == 1  # one rendezvous for all ranks
        data = DataProto.from_dict(tensors={"i": torch.arange(5)}, non_tensors={"s": list("abcde")})
        out = wg.call("add_rank", data, 10, dispatch_mode=Dispatch.DP_COMPUTE_PROTO)
        assert out["i"].tolist() == [0, 1, 2, 3, 4]
        assert out["r"].tolist() == [10, 10, 10, 11, 11]
        assert list(out["s"]) == list("abcde")
        assert wg.call("scale", 3, dispatch_mode=Dispatch.RANK_ZERO) == 3
        assert wg.call("scale", [1, 2], dispatch_mode=Dispatch.ALL_TO_ALL) == [1, 4]
        refs = wg.call("scale", 5, blocking=False)
        assert RayWorkerGroup.wait(refs) == [5, 10]
    finally:
        wg.shutdown()
        pool.remove()


def _tiny_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 16),
        torch.nn.Tanh(),
        torch.nn.Linear(16, 1),
    )


def _step(model, opt, x, y):
    loss = torch.nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.detach()


class FSDPWorker(Worker):
    def fsdp_step(self, x: torch.Tensor, y: torch.Tensor) -> dict:
        from verl.utils.fsdp_utils import apply_fsdp2, full_state_dict

        self.init_process_group("gloo")
        model = _tiny_net(0)
        apply_fsdp2(model, wrap_class_names=["Linear"], device_type="cpu")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        per_rank = len(x) // self.world_size
        rows = slice(self.rank * per_rank, (self.rank + 1) * per_rank)
        for _ in range(2):
            _step(model, opt, x[rows], y[rows])
        return full_state_dict(model)


def test_fsdp2_two_ranks_in_ray_matches_single_process(ray_local):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 6, generator=g), torch.randn(8, 1, generator=g)
    reference = _tiny_net(0)
    opt = torch.optim.AdamW(reference.parameters(), lr=1e-2)
    initial = copy.deepcopy(reference.state_dict())
    for _ in range(2):
        _step(reference, opt, x, y)

    pool = RayResourcePool([2], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, FSDPWorker)
    try:
        states = wg.call("fsdp_step", x, y)
    finally:
        wg.shutdown()
        pool.remove()
    for state in states:
        assert set(state) == set(reference.state_dict())
        for key, value in reference.state_dict().items():
            np.testing.assert_allclose(state[key].numpy(), value.numpy(), rtol=1e-5, atol=1e-6)
            assert not torch.allclose(state[key], initial[key])  # the step changed the weights
