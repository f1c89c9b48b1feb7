#!/usr/bin/env bash
# First run on a machine with one GPU (no weights needed, at most ~8 minutes on an 80-141 GB GPU):
# CUDA torch and bf16, attention kernels, a random 7B OpenVLA-OFT through start-up, a batch of rollout
# chunks on real LIBERO simulators, old log-probs, one update and a weight sync, with the measured peak
# GPU memory per phase next to scripts/bench/memory_plan.py's prediction (JSON lines).
# Without a GPU it says so and exits 0. Arguments go to scripts/gpu_check.py (--suite, --envs, --lora-rank).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MUJOCO_GL=${MUJOCO_GL:-egl} PYOPENGL_PLATFORM=${PYOPENGL_PLATFORM:-egl} RAY_AUTH_MODE=${RAY_AUTH_MODE:-disabled}
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python
exec "$PYTHON" scripts/gpu_check.py "$@"
