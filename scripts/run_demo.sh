#!/usr/bin/env bash
# Set up (idempotent), then run the main job on its embedded default: CPU, tiny OpenVLA-OFT policy,
# real LIBERO simulator. Extra arguments go to scripts/demo.py (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}" RAY_AUTH_MODE=disabled
exec .venv/bin/python scripts/demo.py "$@"
