#!/usr/bin/env python3
"""Two-view settings at network resolution: cost and accuracy on KITTI 06 with DIS flow.

Resizes KITTI 06 frames 0-50 to the network size, computes DIS-MEDIUM forward and backward flow once,
then runs ``TwoViewEstimator`` with each setting over the 50 pairs (translation scaled by the GT step
length) and prints median ms per pair and the rotation / translation-direction errors. This is how the
Estimator's streaming defaults (``estimator_types.estimator_two_view``) were chosen.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_two_view_settings.py [--size 192x640]
"""
from __future__ import annotations

import argparse
import os
import time

import cv2
import numpy as np

from depth_pose_ros.data.source import open_source
from depth_pose_ros.eval.pose_metrics import pose_summary
from depth_pose_ros.geometry.camera import scale_intrinsics
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewEstimator, TwoViewStatus
from depth_pose_ros.pipeline.config import estimator_two_view
from depth_pose_ros.pipeline.odometry_policy import Motion, OdometryPolicy
from depth_pose_ros.utils.paths import data_root

SETTINGS = {
    "VO defaults (6000 / 30000)": {},
    "5000 refinement points": {"refine_max_points": 5000},
    "3000 / 3000": {"refine_max_points": 3000, "num_samples": 3000},
    "no refinement": {"refine": False},
    "streaming default": None,
    "RANSAC, 3000 / 3000": {"ransac_method": "ransac", "refine_max_points": 3000, "num_samples": 3000},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="192x640")
    args = parser.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    src = open_source(str(data_root() / "kitti_odometry" / "sequences" / "06"))
    frames = [src[i] for i in range(len(src))]
    images = [cv2.resize(f.image, (w, h), interpolation=cv2.INTER_AREA) for f in frames]
    K = np.asarray(scale_intrinsics(frames[0].K, w / frames[0].width, h / frames[0].height))
    flows = [(dis_flow(a, b), dis_flow(b, a)) for a, b in zip(images[:-1], images[1:])]
    gt = np.stack([f.T_world_cam for f in frames])
    depth = np.full((h, w), 10.0)
    print(f"# {len(flows)} pairs at {h}x{w}, load average {os.getloadavg()[0]:.2f}")
    print("| setting | ms / pair (median) | rot err deg/frame | t-dir err median deg |\n|---|---|---|---|")
    for name, kw in SETTINGS.items():
        cfg = estimator_two_view() if kw is None else TwoViewConfig(**kw)
        tv, poses, times = TwoViewEstimator(cfg), [np.eye(4)], []
        memory = OdometryPolicy()  # a failed pair repeats the last pose (constant velocity)
        for (fw, bw), T0, T1 in zip(flows, gt[:-1], gt[1:]):
            t0 = time.perf_counter()
            r = tv.estimate(fw, K, flow_bw=bw, depth1=depth)  # a depth map: scale alignment runs too
            times.append((time.perf_counter() - t0) * 1e3)
            if r.status == TwoViewStatus.FAILED:
                T = memory.constant_velocity().T_cur_prev
            else:
                T = memory.remember(Motion(r.R, r.t, 1.0)).T_cur_prev
            T[:3, 3] *= np.linalg.norm((np.linalg.inv(T1) @ T0)[:3, 3])
            poses.append(poses[-1] @ np.linalg.inv(T))
        m = pose_summary(np.stack(poses), gt)
        rot, tdir = m["rot_err_deg_per_frame"], m["tdir_err_deg_median"]
        print(f"| {name} | {np.median(times):.1f} | {rot:.3f} | {tdir:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
