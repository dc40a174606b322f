#!/usr/bin/env python3
"""Held-out synthetic evaluation of trained models, side by side (the training issue's comparison).

For each model file: streams held-out synthetic sequences (seeds 1000+, never used for training) through
the network like the Estimator does and prints depth AbsRel (median scaled) / delta1, flow EPE against the
zero-flow EPE, and the rotation error per frame from the model's own pose source (two-view geometry on its
flow, or its PoseNet), next to the identity-rotation baseline.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_heldout.py runs/cpu_hour/model.safetensors \
        runs/cpu_hour_md2/model.safetensors --sequences 3 --frames 40

The per-model evaluation is ``depth_pose_ros.commands.model_checks.evaluate_model_file`` (the model card's
synthetic rows).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from depth_pose_ros.commands.model_checks import evaluate_model_file
from training.config import SourceConfig
from training.periodic_eval import load_heldout


def dis_flow_epe(h: int, w: int, sequences: int = 3, frames: int = 40, fps: float = 10.0) -> tuple[float, float]:
    """(EPE, zero-flow EPE) of classical DIS-MEDIUM flow on the same held-out frames at ``h`` x ``w``: the
    flow a learned flow must beat at the network's size."""
    from depth_pose_ros.eval.flow_metrics import flow_metrics
    from depth_pose_ros.geometry.dis_flow import dis_flow

    epe, zero = [], []
    for k in range(sequences):
        spec = f"synthetic:seed={1000 + k},length={frames},height={h},width={w},fps={fps:g}"
        data = load_heldout(SourceConfig(spec=spec), h, w, 3, frames)
        images = (data.images.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        for i in range(1, images.shape[0]):
            gt = data.gt_flow[i - 1].permute(1, 2, 0).numpy()
            valid = np.isfinite(gt).all(-1)
            gt = np.where(valid[..., None], gt, 0.0)
            fw = dis_flow(images[i - 1], images[i], "medium")
            epe.append(flow_metrics(fw, gt, valid)["epe"])
            zero.append(flow_metrics(np.zeros_like(fw), gt, valid)["epe"])
    return float(np.mean(epe)), float(np.mean(zero))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", type=Path)
    parser.add_argument("--sequences", type=int, default=3, help="held-out seeds 1000..1000+N-1")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--dis", action="store_true", help="also DIS-MEDIUM flow EPE at the first model's size")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {str(p): evaluate_model_file(p, args.sequences, args.frames, args.fps) for p in args.models}
    print(f"# held-out synthetic: seeds 1000..{999 + args.sequences}, {args.frames} frames each at {args.fps:g} Hz")
    print("| model | step | depth AbsRel (const) | delta1 | flow EPE (zero) | rot err deg/frame (identity) "
          "| t-dir err deg | two-view ok |")
    print("|---|---|---|---|---|---|---|---|")
    for name, m in results.items():
        rot = m.get("rot_err_deg", m.get("posenet_rot_err_deg", float("nan")))
        src = "two-view" if "rot_err_deg" in m else "PoseNet"
        flow = f"{m['flow_epe']:.2f} ({m['flow_epe_zero']:.2f})" if "flow_epe" in m else "-"
        print(f"| {name} | {m.get('step')} | {m['depth_abs_rel']:.3f} ({m['depth_abs_rel_constant']:.3f}) "
              f"| {m['depth_delta1']:.3f} | {flow} | {rot:.3f} ({src}; {m['rot_err_deg_identity']:.3f}) "
              f"| {m.get('trans_dir_err_deg', float('nan')):.1f} | {m.get('two_view_ok_ratio', float('nan')):.2f} |")
    if args.dis:
        first = next(iter(results.values()))
        epe, zero = dis_flow_epe(first["height"], first["width"], args.sequences, args.frames, args.fps)
        size = f"{first['height']}x{first['width']}"
        print(f"| DIS-MEDIUM flow at {size} | - | - | - | {epe:.2f} ({zero:.2f}) | - | - | - |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
