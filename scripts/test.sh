#!/usr/bin/env bash
# Set up (idempotent) and run the lint and the whole test suite, simulator and multi-process tests
# included. Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
export MUJOCO_GL="${MUJOCO_GL:-egl}" PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-egl}" RAY_AUTH_MODE=disabled
echo "[test] ruff check"
.venv/bin/ruff check verl tests scripts
echo "[test] pytest"
set +e
.venv/bin/python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [[ $status == 5 ]]; then
  echo "[test] FAILED: pytest collected no tests" >&2
  exit 1
fi
exit $status
