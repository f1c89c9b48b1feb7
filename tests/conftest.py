"""Shared fixtures: a local Ray cluster for the tests that need one, headless rendering env vars."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture
def ray_local():
    """A local Ray instance shared by the tests that need one (starting Ray costs a few seconds). It is
    started again if a test shut it down (the multi-node and CLI tests end their own Ray sessions)."""
    import ray

    if not ray.is_initialized():
        ray.init(
            num_cpus=4,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={"env_vars": {"MUJOCO_GL": os.environ["MUJOCO_GL"], "RAY_AUTH_MODE": "disabled"}},
        )
    yield ray


@pytest.fixture(scope="session", autouse=True)
def _shutdown_ray_at_exit():
    yield
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()
