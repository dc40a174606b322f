#!/usr/bin/env python3
"""Two-view pose accuracy and cost on KITTI odometry 06 (frames 0-50) with DIS flow: an ablation.

The DIS flows (forward and backward, full resolution) are computed once and shared by every
configuration, so the table isolates the geometry: the plain baseline (``cv2.findEssentialMat`` on a
stride-8 pixel grid + ``cv2.recoverPose``, no scoring, no refinement), the default
:class:`TwoViewConfig`, and one change at a time. Errors use ``geometry.pose_error`` (rotation error
= angle of ``R_est^T R_gt``; translation-direction error = angle between ``t_est`` and ``t_gt``).
Configurations are interleaved over ``--rounds`` so a burst of load from other processes hits all
alike; the load average is printed. Output: a Markdown table (and ``--json``).

Example (the numbers in docs/bench_geometry.md):
    .venv/bin/python benchmarks/bench_vo.py --threads 2 --rounds 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIGS: dict[str, dict] = {
    "default (usac_magsac, fb score, top 20%, LM refine)": {},
    "no backward flow (no fb scoring)": {"_no_bw": True},
    "no LM refinement": {"refine": False},
    "ransac_method=ransac": {"ransac_method": "ransac"},
    "ransac_method=lmeds": {"ransac_method": "lmeds"},
    "ransac_method=usac_default": {"ransac_method": "usac_default"},
    "top_ratio=0.1": {"top_ratio": 0.1},
    "top_ratio=0.5": {"top_ratio": 0.5},
    "occlusion=range (range map instead of fb test)": {"occlusion": "range"},
    "num_samples=2000": {"num_samples": 2000},
}


def plain_baseline(fw: np.ndarray, K: np.ndarray, step: int = 8):
    """findEssentialMat (RANSAC, 1 px) on a stride-``step`` grid of the flow, then recoverPose."""
    import cv2

    h, w = fw.shape[:2]
    ys, xs = np.mgrid[0:h:step, 0:w:step]
    p1 = np.stack((xs, ys), -1).reshape(-1, 2).astype(np.float64)
    p2 = p1 + fw[::step, ::step].reshape(-1, 2)
    E, mask = cv2.findEssentialMat(p1, p2, K, cv2.RANSAC, 0.999, 1.0)
    _, R, t, _ = cv2.recoverPose(E[:3], p1, p2, K, mask=mask)
    return R, t.ravel()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=None, help="KITTI odometry root (default: paths.data_root())")
    ap.add_argument("--frames", type=int, default=51)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--preset", default="medium")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import cv2
    import torch

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    from depth_pose_ros.data.kitti_odometry import KittiOdometry
    from depth_pose_ros.geometry.dis_flow import dis_flow
    from depth_pose_ros.geometry.pose_error import relative_pose, relative_pose_errors
    from depth_pose_ros.geometry.se3 import make_pose_np
    from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewEstimator, TwoViewStatus
    from depth_pose_ros.pipeline.odometry_policy import Motion, OdometryPolicy
    from depth_pose_ros.utils.paths import data_root

    root = args.data or data_root() / "kitti_odometry"
    frames = list(KittiOdometry(root, sequence="06", frames=slice(0, args.frames)))
    K = frames[0].K
    gt = [relative_pose(a.T_world_cam, b.T_world_cam) for a, b in zip(frames[:-1], frames[1:])]
    t0 = time.perf_counter()
    fws = [dis_flow(a.image, b.image, args.preset) for a, b in zip(frames[:-1], frames[1:])]
    bws = [dis_flow(b.image, a.image, args.preset) for a, b in zip(frames[:-1], frames[1:])]
    flow_ms = (time.perf_counter() - t0) * 1e3 / len(fws)  # forward + backward per pair
    print(f"{len(fws)} pairs, {frames[0].width}x{frames[0].height}, DIS {args.preset}: "
          f"{flow_ms:.1f} ms per pair (forward + backward), threads {args.threads}", file=sys.stderr)

    names = ["plain findEssentialMat (RANSAC, stride-8 grid) + recoverPose"] + list(CONFIGS)
    times: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for _ in range(args.rounds):
        for name in names:
            rot, tdir, ms = [], [], []
            est = None
            memory = OdometryPolicy()  # a failed pair repeats the last pose (constant velocity)
            if name in CONFIGS:
                opts = dict(CONFIGS[name])
                no_bw = opts.pop("_no_bw", False)
                est = TwoViewEstimator(TwoViewConfig(**opts))
            for fw, bw, T in zip(fws, bws, gt):
                t1 = time.perf_counter()
                if est is None:
                    R, t = plain_baseline(fw, K)
                else:
                    r = est.estimate(fw, K, flow_bw=None if no_bw else bw)
                    held = memory.constant_velocity() if r.status == TwoViewStatus.FAILED else \
                        memory.remember(Motion(r.R, r.t, 1.0))
                    R, t = held.R, held.t
                ms.append((time.perf_counter() - t1) * 1e3)
                e = relative_pose_errors(make_pose_np(R, t), T)
                rot.append(float(e[0]))
                tdir.append(float(e[1]))
            times[name].append(float(np.mean(ms)))
            errors[name] = (np.asarray(rot), np.asarray(tdir))

    load = os.getloadavg()
    print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)", file=sys.stderr)
    rows = []
    print("| configuration | rot err mean (deg/frame) | tdir err median (deg) | tdir err mean (deg) "
          "| geometry ms/pair (min over rounds) |")
    print("|---|---|---|---|---|")
    for name in names:
        rot, tdir = errors[name]
        row = {"config": name, "rot_err_deg_per_frame": float(rot.mean()),
               "tdir_err_deg_median": float(np.median(tdir)), "tdir_err_deg_mean": float(tdir.mean()),
               "geometry_ms": min(times[name])}
        rows.append(row)
        print(f"| {name} | {row['rot_err_deg_per_frame']:.4f} | {row['tdir_err_deg_median']:.3f} | "
              f"{row['tdir_err_deg_mean']:.3f} | {row['geometry_ms']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"flow_ms_per_pair": flow_ms, "threads": args.threads,
                                         "load_avg": load, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
