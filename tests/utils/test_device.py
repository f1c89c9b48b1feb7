"""Device choice from the Ray cluster's resources; the simulators' EGL device from the rank's GPU."""

import pytest

from verl.envs.pool import egl_device_id
from verl.utils.device import cluster_device


def test_auto_follows_the_cluster_not_the_driver():
    assert cluster_device("auto", 16.0) == "cuda"  # e.g. a CPU-only head node of a GPU cluster
    assert cluster_device("auto", 0) == "cpu"
    assert cluster_device("cpu", 8.0) == "cpu"
    with pytest.raises(ValueError, match="trainer.device=cuda"):
        cluster_device("cuda", 0)
    with pytest.raises(ValueError, match="allowed: auto, cuda, cpu"):
        cluster_device("gpu", 8.0)


def test_simulators_render_on_the_ranks_gpu():
    assert egl_device_id({"CUDA_VISIBLE_DEVICES": "3"}) == "3"
    assert egl_device_id({"CUDA_VISIBLE_DEVICES": "5,6"}) == "5"
    assert egl_device_id({"CUDA_VISIBLE_DEVICES": "3", "MUJOCO_EGL_DEVICE_ID": "1"}) == "1"
    assert egl_device_id({"CUDA_VISIBLE_DEVICES": ""}) is None
    assert egl_device_id({"CUDA_VISIBLE_DEVICES": "GPU-8f2a"}) is None
    assert egl_device_id({}) is None
