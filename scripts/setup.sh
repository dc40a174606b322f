#!/usr/bin/env bash
# Idempotent set-up of the project's virtual environment (.venv by default).
#
# Why each step is conditional:
#   * torch: GPU users install their own CUDA build first; pip must never resolve plain `torch`
#     (it pulls GBs of CUDA wheels), so we only install the pinned CPU build when none imports.
#   * ROS 2: a sourced system ROS 2 (rclpy + tf2_msgs importable) is used as it is; otherwise the
#     Jazzy runtime comes from PyPI wheels and tf2_msgs (not on PyPI) is built from its .msg.
#   * the project itself: re-installed only when setup.py / setup.cfg / this script change, so a
#     second run with nothing to do takes a few seconds.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
V="$(realpath -m "${VENV:-$ROOT/.venv}")"
PYBIN="${PYTHON:-python3}"
log() { printf '[setup] %s\n' "$*"; }

if [ ! -x "$V/bin/python" ]; then
  log "creating virtual environment $V"
  "$PYBIN" -m venv "$V"
  "$V/bin/python" -m pip install -q --upgrade pip 2> >(grep -v "is ignored: it is neither" >&2)
fi
PY="$V/bin/python"
# pip's "Location ... is ignored" warnings (machine-wide find-links that do not exist) are noise.
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
STAMP="$V/.depth_pose_ros.stamp"
want="$(cat "$ROOT/setup.py" "$ROOT/setup.cfg" "$ROOT/scripts/setup.sh" "$ROOT/scripts/build_tf2_msgs.sh" 2>/dev/null | sha256sum | cut -c1-16)"

# Fast path: everything imports and nothing changed since the last successful run.
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && "$PY" -c "import torch, rclpy, tf2_msgs.msg, depth_pose_ros, training" 2>/dev/null \
   && [ -x "$V/bin/ruff" ] && [ -x "$V/bin/mypy" ]; then
  log "up to date ($V)"
  exit 0
fi

# 1. torch (CPU build from the local wheel cache / index, pinned) only when none imports.
if ! "$PY" -c "import torch" 2>/dev/null; then
  log "installing torch==2.13.0"
  pip_install torch==2.13.0
fi

# 2. numpy/opencv first so the ROS wheels and the tf2_msgs build see the same numpy.
pip_install "numpy>=1.26" opencv-python-headless

# 3. ROS 2 runtime: use a sourced system ROS 2 when it already provides rclpy and tf2_msgs.
if "$PY" -c "import rclpy, tf2_msgs.msg, std_srvs.srv, nav_msgs.msg, sensor_msgs.msg, diagnostic_msgs.msg" 2>/dev/null; then
  log "ROS 2 already importable (${ROS_DISTRO:-wheels}); not installing wheels"
else
  log "installing ROS 2 Jazzy runtime wheels"
  pip_install "ros-jazzy-rclpy[fastrtps]==7.1.6" ros-jazzy-builtin-interfaces==2.0.3 \
    ros-jazzy-std-msgs==5.3.6 ros-jazzy-geometry-msgs==5.3.6 ros-jazzy-sensor-msgs==5.3.6 \
    ros-jazzy-nav-msgs==5.3.6 ros-jazzy-std-srvs==5.3.6 ros-jazzy-diagnostic-msgs==5.3.6
  if ! "$PY" -c "import tf2_msgs.msg" 2>/dev/null; then
    bash "$ROOT/scripts/build_tf2_msgs.sh" "$V"
  fi
fi

# 4. The project with its dev extras (editable): pytest, ruff, mypy (pinned in setup.py: `make lint` and
#    scripts/run_tests.sh run it, and a newer mypy may report new errors).
log "installing depth_pose_ros[dev]"
pip_install -e "$ROOT[dev]"
"$PY" -c "import torch, rclpy, tf2_msgs.msg, depth_pose_ros, training"
echo "$want" > "$STAMP"
log "done ($V)"
