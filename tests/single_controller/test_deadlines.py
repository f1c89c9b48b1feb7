"""The driver never waits forever: resource requests the cluster cannot hold fail at once, a wedged
rank stops the call at the deadline naming rank and call, a failing rank is reported without waiting
for its peers."""

import sys
import time

import pytest
from ray.cloudpickle import register_pickle_by_value

from verl.single_controller import (
    RayResourcePool,
    RayWorkerGroup,
    ResourceRequestError,
    Worker,
    WorkerCallTimeout,
)
from verl.single_controller.ray import check_cluster_fits

register_pickle_by_value(sys.modules[__name__])


def test_check_cluster_fits_names_the_settings_and_the_nodes():
    two_cpus = [{"CPU": 2.0, "memory": 1e9}]
    with pytest.raises(ResourceRequestError) as err:
        check_cluster_fits(RayResourcePool([1], use_gpu=False, num_cpus_per_worker=8), two_cpus)
    msg = str(err.value)
    assert "trainer.num_cpus_per_worker" in msg and "8 CPU" in msg and "nodes: 2 CPU, 0 GPU" in msg
    with pytest.raises(ResourceRequestError, match="1 GPU"):
        check_cluster_fits(RayResourcePool([1], use_gpu=True, num_cpus_per_worker=1), two_cpus)
    # Two nodes of 8 CPUs hold two placement groups of 8, not one of 16 nor three of 8.
    nodes = [{"CPU": 8.0}, {"CPU": 8.0}]
    check_cluster_fits(RayResourcePool([2, 2], use_gpu=False, num_cpus_per_worker=4), nodes)
    for workers in ([4], [2, 2, 2]):
        with pytest.raises(ResourceRequestError):
            check_cluster_fits(RayResourcePool(workers, use_gpu=False, num_cpus_per_worker=4), nodes)


class SleepyWorker(Worker):
    def nap(self, seconds_by_rank):
        time.sleep(seconds_by_rank[self.rank])
        return self.rank

    def fail_on_rank0(self):
        if self.rank == 0:
            raise ValueError("rank 0 broke")
        time.sleep(120)  # its peer, stuck as in a collective


@pytest.mark.ray
def test_unsatisfiable_request_fails_within_seconds(ray_local):
    start = time.monotonic()
    with pytest.raises(ResourceRequestError, match="trainer.num_cpus_per_worker"):
        RayResourcePool([1], use_gpu=False, num_cpus_per_worker=64).create()
    assert time.monotonic() - start < 10


@pytest.mark.ray
def test_wedged_rank_stops_the_call_at_the_deadline(ray_local):
    pool = RayResourcePool([2], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, SleepyWorker, call_timeout_s=3)
    try:
        assert wg.call("nap", [0, 0]) == [0, 1]
        start = time.monotonic()
        with pytest.raises(WorkerCallTimeout, match=r"'nap' on rank\(s\) \[1\].*worker_call_timeout_s"):
            wg.call("nap", [0, 600])
        assert time.monotonic() - start < 10
    finally:
        wg.shutdown()
        pool.remove()


@pytest.mark.ray
def test_a_failing_rank_is_reported_without_waiting_for_its_peers(ray_local):
    pool = RayResourcePool([2], use_gpu=False, num_cpus_per_worker=1)
    wg = RayWorkerGroup(pool, SleepyWorker, call_timeout_s=600)
    try:
        start = time.monotonic()
        with pytest.raises(ValueError, match="rank 0 broke"):
            wg.call("fail_on_rank0")
        assert time.monotonic() - start < 30
    finally:
        wg.shutdown()
        pool.remove()
