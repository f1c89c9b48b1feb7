"""Ray resource pools and worker groups.

`RayResourcePool` reserves one placement-group bundle per worker (a GPU and some CPUs, or CPUs only)
on every node. `RayWorkerGroup` starts one actor per bundle, sets the torch.distributed rendezvous
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and calls methods on the actors with a
`Dispatch` mode. Calls return results, or Ray object refs with `blocking=False` so the driver can
overlap work and wait explicitly with `RayWorkerGroup.wait`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from verl.protocol import DataProto
from verl.single_controller.dispatch import Dispatch, collect, dispatch, split_for_ranks


@dataclass
class RayResourcePool:
    """`workers_per_node[i]` workers on node i; each worker a bundle of `num_gpus_per_worker` GPUs
    (0 for CPU mode) and `num_cpus_per_worker` CPUs."""

    workers_per_node: list[int]
    use_gpu: bool = True
    num_cpus_per_worker: float = 1.0
    name_prefix: str = "verl"
    placement_groups: list[PlacementGroup] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if not self.workers_per_node or any(n < 1 for n in self.workers_per_node):
            raise ValueError(
                f"workers_per_node must be a non-empty list of positive ints, got {self.workers_per_node}"
            )

    @property
    def world_size(self) -> int:
        return sum(self.workers_per_node)

    def create(self, timeout_s: float = 300.0) -> list[PlacementGroup]:
        """Reserve the bundles; one STRICT_PACK placement group per node. A request no node of the
        cluster can hold fails at once (`check_cluster_fits`) instead of waiting for the timeout."""
        if self.placement_groups:
            return self.placement_groups
        check_cluster_fits(self, [n["Resources"] for n in ray.nodes() if n.get("Alive")])
        bundle = {"CPU": self.num_cpus_per_worker}
        if self.use_gpu:
            bundle["GPU"] = 1
        for node, count in enumerate(self.workers_per_node):
            pg = placement_group(
                [dict(bundle) for _ in range(count)],
                strategy="STRICT_PACK",
                name=f"{self.name_prefix}_node{node}",
            )
            self.placement_groups.append(pg)
        try:
            ray.get([pg.ready() for pg in self.placement_groups], timeout=timeout_s)
        except ray.exceptions.GetTimeoutError:
            self.remove()
            raise ResourceRequestError(
                f"{self.describe()}: not granted within {timeout_s:.0f} s; the cluster has them, but other "
                f"jobs hold them (free now: {_fmt(ray.available_resources())})"
            ) from None
        return self.placement_groups

    def describe(self) -> str:
        gpus = " and 1 GPU" if self.use_gpu else ""
        return (
            f"{self.workers_per_node} workers per node (trainer.nnodes x trainer.n_gpus_per_node), each with "
            f"{self.num_cpus_per_worker:g} CPUs (trainer.num_cpus_per_worker){gpus}"
        )

    def remove(self) -> None:
        for pg in self.placement_groups:
            remove_placement_group(pg)
        self.placement_groups = []


class ResourceRequestError(RuntimeError):
    """The cluster cannot hold the requested workers."""


class WorkerCallTimeout(TimeoutError):
    """A worker call did not return before the driver's deadline (`trainer.worker_call_timeout_s`)."""


def _fmt(resources: dict[str, float]) -> str:
    return ", ".join(f"{resources.get(k, 0):g} {k}" for k in ("CPU", "GPU"))


def check_cluster_fits(pool: RayResourcePool, nodes: list[dict[str, float]]) -> None:
    """Raise `ResourceRequestError` when no assignment of the pool's per-node placement groups to the
    cluster's nodes (by their total resources) exists. First-fit, largest demand first: placement groups
    are few (one per node) and it errs only towards trying."""
    free = [dict(n) for n in sorted(nodes, key=lambda n: -n.get("CPU", 0))]
    demands = sorted(
        (
            {"CPU": count * pool.num_cpus_per_worker, "GPU": count if pool.use_gpu else 0}
            for count in pool.workers_per_node
        ),
        key=lambda d: -d["CPU"],
    )
    for demand in demands:
        node = next((n for n in free if all(n.get(k, 0) >= v for k, v in demand.items())), None)
        if node is None:
            have = "; ".join(_fmt(n) for n in nodes) or "no alive node"
            raise ResourceRequestError(
                f"{pool.describe()}: a node must hold {_fmt(demand)} for its workers, and no node of the "
                f"cluster can (nodes: {have}). Lower trainer.num_cpus_per_worker or "
                "trainer.n_gpus_per_node, or add nodes"
            )
        for k, v in demand.items():
            node[k] = node.get(k, 0) - v


class RayWorkerGroup:
    """One Ray actor per rank of `worker_cls` (a subclass of `verl.single_controller.Worker`).

    `call_timeout_s` is the driver's deadline for one call on all ranks (None = wait forever): a wedged
    rank then stops the run with `WorkerCallTimeout` naming the rank and the call."""

    def __init__(
        self,
        resource_pool: RayResourcePool,
        worker_cls: type,
        init_args: tuple = (),
        init_kwargs: dict | None = None,
        env_vars: dict[str, str] | None = None,
        name_prefix: str = "worker",
        call_timeout_s: float | None = None,
    ) -> None:
        if call_timeout_s is not None and call_timeout_s <= 0:
            raise ValueError(
                f"trainer.worker_call_timeout_s must be > 0 seconds, or 0 for no deadline; got {call_timeout_s}"
            )
        self.resource_pool = resource_pool
        self.call_timeout_s = call_timeout_s
        pgs = resource_pool.create()
        world_size = resource_pool.world_size
        remote_cls = ray.remote(worker_cls)
        self.workers: list[ray.actor.ActorHandle] = []
        rank = 0
        for node, pg in enumerate(pgs):
            for local_rank in range(resource_pool.workers_per_node[node]):
                worker_env = dict(env_vars or {})
                worker_env.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(local_rank))
                if resource_pool.use_gpu:
                    # Every worker sees only its own GPU; LOCAL_RANK then indexes cuda:0.
                    worker_env["LOCAL_RANK"] = "0"
                options = {
                    "num_cpus": resource_pool.num_cpus_per_worker,
                    "num_gpus": 1 if resource_pool.use_gpu else 0,
                    "scheduling_strategy": PlacementGroupSchedulingStrategy(
                        placement_group=pg, placement_group_bundle_index=local_rank
                    ),
                    "runtime_env": {"env_vars": worker_env},
                    "name": f"{name_prefix}_rank{rank}_{id(self):x}",
                }
                self.workers.append(remote_cls.options(**options).remote(*init_args, **(init_kwargs or {})))
                rank += 1
        addr, port = ray.get(self.workers[0].node_ip_and_free_port.remote())
        ray.get([w.set_rendezvous.remote(addr, port) for w in self.workers])
        self.master_addr, self.master_port = addr, port

    @property
    def world_size(self) -> int:
        return len(self.workers)

    def call(
        self,
        method: str,
        *args: Any,
        dispatch_mode: Dispatch = Dispatch.ONE_TO_ALL,
        blocking: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Call `method` on every rank. With `blocking=False` returns the per-rank object refs;
        pass them to `wait(refs, dispatch_mode)` later."""
        per_rank = dispatch(dispatch_mode, self.world_size, args, kwargs)
        refs = [getattr(w, method).remote(*a, **k) for w, (a, k) in zip(self.workers, per_rank)]
        if not blocking:
            return refs
        return self.wait(refs, dispatch_mode, self.call_timeout_s, method)

    def put_per_rank(self, data: DataProto) -> list[ray.ObjectRef]:
        """Each rank's part of `data` (the DP_COMPUTE_PROTO split) put into the object store once: pass the
        list to several calls with Dispatch.ALL_TO_ALL and each rank reads the same object every time,
        where passing `data` itself would serialise it again for every call."""
        return [ray.put(part) for part in split_for_ranks(data, self.world_size)]

    @staticmethod
    def wait(
        refs: list[ray.ObjectRef],
        dispatch_mode: Dispatch = Dispatch.ONE_TO_ALL,
        timeout_s: float | None = None,
        method: str = "call",
    ) -> Any:
        """The ranks' results; a rank's error is raised as soon as it arrives (its peers may be stuck in
        a collective waiting for it), and ranks still busy at the deadline raise `WorkerCallTimeout`."""
        deadline = None if not timeout_s else time.monotonic() + timeout_s
        pending = list(refs)
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, pending = ray.wait(pending, num_returns=1, timeout=remaining)
            if not ready:
                ranks = [i for i, r in enumerate(refs) if r in pending]
                raise WorkerCallTimeout(
                    f"worker call {method!r} on rank(s) {ranks} did not return within {timeout_s:g} s "
                    "(trainer.worker_call_timeout_s); stopping the run. The newest complete checkpoint is "
                    "where a resumed run starts"
                )
            ray.get(ready)
        return collect(dispatch_mode, ray.get(refs))

    def shutdown(self) -> None:
        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []
