#!/usr/bin/env bash
# Lint + every test (what `make test` and CI run). Extra arguments go to pytest.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="${VENV:-$ROOT/.venv}/bin"
echo "== ruff"
"$BIN/ruff" check . || exit 1
echo "== mypy"
# configured in pyproject.toml ([tool.mypy]); incremental cache in .mypy_cache
"$BIN/mypy" || exit 1
echo "== pytest"
# The wheels' bootstrapper marks a process tree; a stale marker from another venv breaks children.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
export ROS_LOG_DIR="${ROS_LOG_DIR:-$ROOT/build/ros_log}"
mkdir -p "$ROS_LOG_DIR"
"$BIN/python" -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
