#!/usr/bin/env bash
# Reproduce the method ablation with one command: every method config trained the same way.
#   bash scripts/ablate.sh [KEY=VALUE ...]      e.g.  bash scripts/ablate.sh steps=2000 data.height=128
# Runs land in runs/ablation/<method>/ (TensorBoard logs, checkpoints, eval.jsonl); a killed run
# resumes where it stopped when the command is run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${VENV:-$ROOT/.venv}/bin"
for method in st_depth_pose monodepth2 idce_ham vid2depth_icp glnet occlusion_cross_weighted; do
  echo "== $method"
  "$BIN/depth-pose" train --config "$method" --run-dir "$ROOT/runs/ablation/$method" "$@"
done
