"""Single-controller plumbing: a driver process calls methods on groups of Ray worker actors."""

from verl.single_controller.base import Worker
from verl.single_controller.dispatch import Dispatch, collect, dispatch
from verl.single_controller.ray import (
    RayResourcePool,
    RayWorkerGroup,
    ResourceRequestError,
    WorkerCallTimeout,
)

__all__ = [
    "Dispatch",
    "RayResourcePool",
    "RayWorkerGroup",
    "ResourceRequestError",
    "Worker",
    "WorkerCallTimeout",
    "collect",
    "dispatch",
]
