#!/usr/bin/env bash
# The long version of the main job: fixed seeds, more GRPO steps, validation along the way.
# Prints the demo's before/after table and one JSON line:
#   {"bench": "learning_curve", "sft_success", "sft_ci95", "rl_success", "rl_ci95", "improvement_points",
#    "episodes", "grpo_steps", "wall_time_s", ...}
#   bash scripts/bench/learning_curve.sh [--steps 40] [demo.py options...]
# Seed 1 makes its first GRPO step the main job's first step; validation every 6 steps, 100 episodes each.
# A stopped run still gives its curve so far (every evaluation, with its interval):
#   .venv/bin/python scripts/demo.py --out outputs/learning_curve --report-only --json
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}" RAY_AUTH_MODE=disabled
exec "$ROOT/.venv/bin/python" "$ROOT/scripts/demo.py" --out "$ROOT/outputs/learning_curve" \
  --steps 24 --test-freq 6 --seed 1 --json "$@"
