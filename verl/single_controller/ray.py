"""Ray resource pools and worker groups.

`RayResourcePool` reserves one placement-group bundle per worker (a GPU and some CPUs, or CPUs only)
on every node. `RayWorkerGroup` starts one actor per bundle, sets the torch.distributed rendezvous
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) and calls methods on the actors with a
`Dispatch` mode. Calls return results, or Ray object refs with `blocking=False` so the driver can
overlap work and wait explicitly with `RayWorkerGroup.wait`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from verl.single_controller.dispatch import Dispatch, collect, dispatch


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
        """Reserve the bundles; one STRICT_PACK placement group per node."""
        if self.placement_groups:
            return self.placement_groups
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
        ready = ray.get([pg.ready() for pg in self.placement_groups], timeout=timeout_s)
        if len(ready) != len(self.placement_groups):
            raise RuntimeError(f"placement groups not ready after {timeout_s}s: {ray.available_resources()}")
        return self.placement_groups

    def remove(self) -> None:
        for pg in self.placement_groups:
            remove_placement_group(pg)
        self.placement_groups = []


class RayWorkerGroup:
    """One Ray actor per rank of `worker_cls` (a subclass of `verl.single_controller.Worker`)."""

    def __init__(
        self,
        resource_pool: RayResourcePool,
        worker_cls: type,
        init_args: tuple = (),
        init_kwargs: dict | None = None,
        env_vars: dict[str, str] | None = None,
        name_prefix: str = "worker",
    ) -> None:
        self.resource_pool = resource_pool
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
        return self.wait(refs, dispatch_mode)

    @staticmethod
    def wait(refs: list[ray.ObjectRef], dispatch_mode: Dispatch = Dispatch.ONE_TO_ALL) -> Any:
        return collect(dispatch_mode, ray.get(refs))

    def shutdown(self) -> None:
        for w in self.workers:
            ray.kill(w, no_restart=True)
        self.workers = []
