#!/usr/bin/env bash
# Idempotent set-up of RoboTwin 2.0 simulator workers on a CPU machine (Debian 12 / bookworm):
#   1. a Vulkan driver sapien 3 can use: Mesa >= 25 lavapipe (Debian bookworm-backports). When the
#      system has none, the packages are downloaded with a private apt configuration and unpacked
#      under the venv, so nothing on the machine changes (no apt source, no installed package).
#   2. <repo>/.venv-robotwin: numpy 1.26.4, sapien 3.0.1, mplib 0.2.1 (it segfaults under numpy 2, so
#      it cannot share the project's venv), torch CPU, RoboTwin's code from PyPI
#      (rlinf-robotwin-runtime, --no-deps: its own pins would pull sapien 3.0.0b1, which fails on lavapipe).
#   3. a stub `open3d` (imported by RoboTwin's code, used only to save point clouds).
# Re-running reuses what is already right (stamp file). Every failing step names itself and stops.
# The simulator workers read `.venv-robotwin/robotwin.env` (VK_ICD_FILENAMES, LD_LIBRARY_PATH).
#
# Environment:
#   ROBOTWIN_VENV=path    venv location (default: <repo>/.venv-robotwin)
#   ROBOTWIN_PYTHON=...   interpreter for the venv (default: python3.11, else python3; 3.10-3.11)
#   ROBOTWIN_TORCH=...    torch requirement (default: torch==2.13.0, the CPU build; any CUDA build on GPU nodes)
#   ROBOTWIN_LAVAPIPE=auto|private   auto (default): the system's lavapipe when it is Mesa >= 25, else a
#                         private copy; private: always the private copy under the venv
#   ROBOTWIN_CODE=...     requirement or path providing the `robotwin` package
#                         (default: rlinf-robotwin-runtime==0.1.3; see SETUP.md for a RoboTwin checkout)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROBOTWIN_VENV:-$ROOT/.venv-robotwin}"
if [[ -z "${ROBOTWIN_PYTHON:-}" ]]; then
  ROBOTWIN_PYTHON="$(command -v python3.11 || command -v python3)"
fi
TORCH_REQ="${ROBOTWIN_TORCH:-torch==2.13.0}"
CODE_REQ="${ROBOTWIN_CODE:-rlinf-robotwin-runtime==0.1.3}"
PINS=(numpy==1.26.4 sapien==3.0.1 mplib==0.2.1 toppra==0.6.3 transforms3d==0.4.2 trimesh==4.4.3
      gymnasium==0.29.1 "scipy<1.14" opencv-python-headless==4.10.0.84 h5py imageio pyyaml pillow
      huggingface_hub setuptools==80.9.0)
STAMP="$VENV/.verl-robotwin-stamp"
ENV_FILE="$VENV/robotwin.env"
MESA_MIN=25

step() { echo "[setup-robotwin] $*"; }
fail() { echo "[setup-robotwin] FAILED: $*" >&2; exit 1; }

want_stamp="$(sha256sum "$ROOT/scripts/setup_robotwin.sh" | cut -d' ' -f1) $TORCH_REQ $CODE_REQ"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want_stamp" && -f "$ENV_FILE" ]] \
   && "$VENV/bin/python" -c "import sapien, mplib, robotwin" >/dev/null 2>&1; then
  step "$VENV is up to date"
  exit 0
fi

# 1. lavapipe. Debian 12's own Mesa 22.3 lacks VK_KHR_external_semaphore_fd, which sapien needs.
mesa_version="$(dpkg-query -W -f '${Version}' mesa-vulkan-drivers 2>/dev/null || true)"
icd=""; ld_path=""
if [[ "${ROBOTWIN_LAVAPIPE:-auto}" != "private" && -n "$mesa_version" && "${mesa_version%%.*}" -ge $MESA_MIN \
      && -n "$(compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json')" ]]; then
  step "system lavapipe (mesa-vulkan-drivers $mesa_version) is recent enough"
  icd="$(compgen -G '/usr/share/vulkan/icd.d/lvp_icd*.json' | head -n1)"
else
  LVP="$VENV/lavapipe"
  if [[ ! -f "$LVP/lvp_icd.json" ]]; then
    step "downloading Mesa lavapipe from bookworm-backports into $LVP (private apt state; the system is untouched)"
    apt_dir="$VENV/.apt"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$LVP/debs"
    echo "deb http://deb.debian.org/debian bookworm-backports main" > "$apt_dir/sources.list"
    echo "deb http://deb.debian.org/debian bookworm main" >> "$apt_dir/sources.list"
    APT=(apt-get -q -o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache" -o Debug::NoLocking=1
         -o APT::Sandbox::User=root)
    "${APT[@]}" update >/dev/null || fail "apt-get update of bookworm-backports (needs deb.debian.org)"
    (cd "$LVP/debs" && "${APT[@]}" download mesa-vulkan-drivers/bookworm-backports \
        libdrm2/bookworm-backports libdrm-amdgpu1/bookworm-backports) \
      || fail "apt-get download mesa-vulkan-drivers libdrm2 libdrm-amdgpu1 (bookworm-backports)"
    for deb in "$LVP"/debs/*.deb; do dpkg -x "$deb" "$LVP/root" || fail "dpkg -x $deb"; done
    lib="$LVP/root/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"
    [[ -f $lib ]] || fail "libvulkan_lvp.so not found in the downloaded mesa-vulkan-drivers"
    src_icd="$(compgen -G "$LVP/root/usr/share/vulkan/icd.d/lvp_icd*.json" | head -n1)"
    [[ -n $src_icd ]] || fail "no lvp_icd*.json in the downloaded mesa-vulkan-drivers"
    sed "s#\"library_path\": *\"[^\"]*\"#\"library_path\": \"$lib\"#" "$src_icd" > "$LVP/lvp_icd.json" \
      || fail "writing $LVP/lvp_icd.json"
    rm -rf "$apt_dir" "$LVP/debs"
  fi
  icd="$LVP/lvp_icd.json"
  ld_path="$LVP/root/usr/lib/x86_64-linux-gnu"
fi

# 2. The venv.
if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating $VENV with $ROBOTWIN_PYTHON"
  "$ROBOTWIN_PYTHON" -m venv "$VENV" || fail "$ROBOTWIN_PYTHON -m venv $VENV"
fi
{
  echo "VK_ICD_FILENAMES=$icd"
  [[ -n $ld_path ]] && echo "LD_LIBRARY_PATH=$ld_path"
  true
} > "$ENV_FILE"
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
step "installing $TORCH_REQ and the pinned RoboTwin stack (${PINS[*]})"
"${PIP[@]}" "$TORCH_REQ" "${PINS[@]}" || fail "pip install $TORCH_REQ ${PINS[*]}"
step "installing RoboTwin's code: $CODE_REQ (--no-deps)"
"${PIP[@]}" --no-deps "$CODE_REQ" || fail "pip install --no-deps $CODE_REQ"

# 3. open3d stub: RoboTwin imports it at module level but needs it only to save point clouds.
site="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if ! "$VENV/bin/python" -c "import open3d" >/dev/null 2>&1; then
  mkdir -p "$site/open3d"
  cat > "$site/open3d/__init__.py" <<'PY'
"""Stub written by verl-vla's scripts/setup_robotwin.sh: RoboTwin imports open3d but policy rollouts
never use it (it only saves point clouds). Install the real open3d to replace this stub."""


def __getattr__(name):
    raise ImportError(f"open3d.{name}: this is verl-vla's stub; pip install open3d for the real package")
PY
fi

# 4. Smoke check: imports and a Vulkan device.
set -a; source "$ENV_FILE"; set +a
"$VENV/bin/python" - <<'PY' || fail "smoke check (sapien render device on lavapipe, mplib, robotwin)"
import numpy, sapien, mplib, robotwin  # noqa: F401
sapien.render.RenderSystem()  # raises "failed to find a rendering device" without a suitable Vulkan driver
print(f"[setup-robotwin] numpy {numpy.__version__}, sapien {sapien.__version__}, mplib {mplib.__version__}, "
      f"robotwin from {robotwin.__path__[0]}")
PY
echo "$want_stamp" > "$STAMP"
step "done: $VENV (worker env: $ENV_FILE)"
