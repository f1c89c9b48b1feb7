"""`Worker`: the base of every Ray worker actor, one per rank.

A worker learns its place in the job from the environment variables the worker group sets
(RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), the same variables torchrun sets, so the
same worker code also runs under torchrun or in a plain process.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta


def node_ip_and_free_port() -> tuple[str, int]:
    """This node's IP address (as Ray sees it when available) and a free TCP port on it."""
    try:
        import ray

        ip = ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"
    except ImportError:  # pragma: no cover - ray is a hard dependency
        ip = "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        port = sock.getsockname()[1]
    return ip, port


class Worker:
    """Rank, world size and the default process group of one worker process."""

    def __init__(self) -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        # The driver's `verl.utils.progress.ProgressCounter`, when it shows progress.
        self.progress = None

    def set_progress_counter(self, counter) -> None:
        """Report finished episodes and steps to `counter` (a Ray actor handle)."""
        self.progress = counter

    # Called by RayWorkerGroup on rank 0 before the others learn the rendezvous address.
    def node_ip_and_free_port(self) -> tuple[str, int]:
        return node_ip_and_free_port()

    def set_rendezvous(self, master_addr: str, master_port: int) -> None:
        os.environ["MASTER_ADDR"] = master_addr
        os.environ["MASTER_PORT"] = str(master_port)

    def init_process_group(self, backend: str | None = None, timeout_s: float = 1800.0) -> str:
        """Join the default process group; NCCL when this process sees a GPU, else gloo."""
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            return dist.get_backend()
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(self.local_rank)
        addr, port = os.environ.get("MASTER_ADDR", "127.0.0.1"), os.environ.get("MASTER_PORT")
        if port is None:
            if self.world_size > 1:
                raise RuntimeError(
                    "MASTER_PORT is not set; the worker group sets it before init_process_group"
                )
            _, port = node_ip_and_free_port()
        dist.init_process_group(
            backend=backend,
            init_method=f"tcp://{addr}:{port}",
            rank=self.rank,
            world_size=self.world_size,
            timeout=timedelta(seconds=timeout_s),
        )
        return backend

    def ping(self) -> dict[str, int | str]:
        import ray

        node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""
        return {
            "rank": self.rank,
            "world_size": self.world_size,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "node_id": node_id,
        }
