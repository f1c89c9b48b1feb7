"""The rollout replica: built in the rollout dtype without touching the source, tied weights stay tied,
and the streamed sync from an FSDP2-sharded model (2 gloo ranks, uneven shards) equals the source."""

import sys

import pytest
import torch
from ray.cloudpickle import register_pickle_by_value

from verl.single_controller import RayResourcePool, RayWorkerGroup, Worker
from verl.utils.weight_sync import build_replica, rollout_dtype, sync_replica

register_pickle_by_value(sys.modules[__name__])


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(7, 5)  # 7 rows: uneven over 2 ranks
        self.body = torch.nn.Linear(5, 3)
        self.head = torch.nn.Linear(3, 1)  # 1 row: one rank holds nothing
        self.register_buffer("scale", torch.tensor([2.0]))

    def forward(self, ids):
        return self.head(torch.tanh(self.body(self.embed(ids)))) * self.scale


def test_replica_is_a_frozen_copy_in_the_rollout_dtype():
    torch.manual_seed(0)
    net = Net()
    net.tied = torch.nn.Linear(5, 7, bias=False)
    net.tied.weight = net.embed.weight
    replica = build_replica(net, torch.bfloat16, "cpu")
    assert replica.tied.weight is replica.embed.weight  # tied parameters stay tied
    for (name, p), (_, q) in zip(net.named_parameters(), replica.named_parameters()):
        assert q.dtype == torch.bfloat16 and not q.requires_grad and p.requires_grad
        assert torch.equal(q, p.detach().to(torch.bfloat16)), name
        assert q.data_ptr() != p.data_ptr()
    assert replica.scale.dtype == torch.float32  # buffers keep their dtype
    with torch.no_grad():
        net.body.weight.add_(1.0)
    assert not torch.equal(replica.body.weight, net.body.weight.to(torch.bfloat16))
    assert sync_replica(net, replica) == 7 * 5 * 2  # largest parameter, bf16
    assert torch.equal(replica.body.weight, net.body.weight.to(torch.bfloat16))


def test_rollout_dtype_choices():
    assert rollout_dtype("auto", "cuda", "bf16") == torch.bfloat16
    assert rollout_dtype("auto", "cpu", "bf16") == torch.float32
    assert rollout_dtype("auto", "cuda", "fp32") == torch.float32
    assert rollout_dtype("bf16", "cpu", "fp32") == torch.bfloat16
    with pytest.raises(ValueError, match="rollout.weights_dtype='fp16'; allowed: auto, fp32, bf16"):
        rollout_dtype("fp16", "cuda", "bf16")


class SyncWorker(Worker):
    def sync(self) -> tuple[dict, dict]:
        from verl.utils.fsdp_utils import apply_fsdp2, full_state_dict

        self.init_process_group("gloo")
        torch.manual_seed(0)
        net = Net()
        replica = build_replica(net, torch.bfloat16, "cpu")
        apply_fsdp2(net, ["Linear"], "cpu")
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        net(torch.arange(7)).sum().backward()
        opt.step()
        sync_replica(net, replica)
        return full_state_dict(net), {k: v.clone() for k, v in replica.named_parameters()}


@pytest.mark.ray
def test_streamed_sync_from_uneven_shards(ray_local):
    pool = RayResourcePool([2], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, SyncWorker)
    try:
        results = wg.call("sync")
    finally:
        wg.shutdown()
        pool.remove()
    torch.manual_seed(0)
    initial = Net()
    for actor, replica in results:
        assert set(replica) == {k for k in actor if k != "scale"}
        for key, value in replica.items():
            assert torch.equal(value, actor[key].to(torch.bfloat16)), key
        assert not torch.equal(actor["body.weight"], initial.body.weight)  # the step moved the weights
