"""Odometry of the streaming Estimator (what `depth-pose run` and the node publish) against the classical
`depth-pose vo` reference, in the same run, on KITTI 06 frames 0-50, the synthetic held-out seeds and the
TUM fr1 pairs. No ground truth is used by the estimates; GT only scores them.

    .venv/bin/python benchmarks/bench_pose_pipeline.py [--checkpoint models/default] [--set key=value ...]

Prints one markdown table (numbers go to docs/benchmarks.md with this command). Time per frame is the
whole `Estimator.step` (network, flow, geometry, scale) against the whole `vo` run (flow + geometry at full
resolution with the GT step length), alternated ``--rounds`` times in one process, fastest round of each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from depth_pose_ros.data.source import open_source  # noqa: E402
from depth_pose_ros.eval.pose_metrics import pose_summary  # noqa: E402
from depth_pose_ros.geometry.pose_error import relative_pose, relative_pose_errors  # noqa: E402
from depth_pose_ros.pipeline.factory import build_estimator  # noqa: E402
from depth_pose_ros.pipeline.vo import VoConfig, run_vo  # noqa: E402
from depth_pose_ros.utils.paths import data_root  # noqa: E402


def run_estimator(frames, checkpoint, sets):
    est, _ = build_estimator(checkpoint, sets)
    poses, ms, sources = [], [], {}
    for fr in frames:
        t0 = time.perf_counter()
        r = est.step(fr.image, fr.K, fr.stamp, fr.stereo_image, fr.stereo_baseline, distortion=fr.distortion)
        ms.append((time.perf_counter() - t0) * 1e3)
        poses.append(r.T_world_cam)
        sources[r.step_length_source or "first"] = sources.get(r.step_length_source or "first", 0) + 1
    return np.stack(poses), float(np.mean(ms[1:])), sources


def row(name, poses, gt, ms, extra=""):
    m = pose_summary(poses, gt)
    return (f"| {name} | {m['rot_err_deg_per_frame']:.4f} | {m['tdir_err_deg_median']:.3f} | {m['ate_sim3_m']:.3f} | "
            f"{m['sim3_scale']:.3f} | {ms:.1f} | {extra} |")


def pair_errors(frames, checkpoint, sets):
    """Per consecutive GT pair (TUM cases): rotation and translation-direction error of the Estimator."""
    est, _ = build_estimator(checkpoint, sets)
    out = []
    prev = None
    for fr in frames:
        r = est.step(fr.image, fr.K, fr.stamp, distortion=fr.distortion)
        if prev is not None and r.T_cur_prev is not None:
            gt = relative_pose(prev.T_world_cam, fr.T_world_cam)  # T_cur_prev
            rot, tdir = relative_pose_errors(r.T_cur_prev, gt)
            out.append((r.status, float(rot), float(tdir), float(relative_pose_errors(np.eye(4), gt)[0])))
        prev = fr
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--rounds", type=int, default=2, help="alternating timing rounds on KITTI (fastest kept)")
    ap.add_argument("--only", choices=("kitti", "synthetic", "tum"), help="one data set only")
    args = ap.parse_args()
    ck = args.checkpoint or None
    print("| data / path | rot deg/frame | t-dir deg (median) | ATE Sim(3) m | Sim(3) scale | ms/frame | notes |")
    print("|---|---|---|---|---|---|---|")
    kitti = data_root() / "kitti_odometry" / "sequences" / "06"
    if kitti.is_dir() and args.only in (None, "kitti"):
        frames = list(open_source(kitti, frames="0:51"))
        gt = np.stack([f.T_world_cam for f in frames])
        vo_times, est_times = [], []
        for _ in range(args.rounds):  # alternate, keep each one's fastest round: same load for both
            t0 = time.perf_counter()
            vo = run_vo(frames, VoConfig(flow="dis", scale="gt"))
            vo_times.append((time.perf_counter() - t0) * 1e3 / (len(frames) - 1))
            poses, ms, src = run_estimator(frames, ck, args.set)
            est_times.append(ms)
        vo_ms, est_ms = min(vo_times), min(est_times)
        print(row("KITTI 06 0-50, `depth-pose vo` (DIS full res, GT step length)", vo.T_world_cam, gt, vo_ms))
        print(row("KITTI 06 0-50, Estimator defaults (no GT)", poses, gt, est_ms,
                  f"{est_ms / vo_ms:.2f}x vo time; step length sources {src}"))
        poses, ms, src = run_estimator(frames, ck, args.set + ["scale.source=camera_height"])
        print(row("KITTI 06 0-50, Estimator, scale.source=camera_height (1.65 m)", poses, gt, ms, "metric"))
    for seed in (1000, 1001, 1002) if args.only in (None, "synthetic") else ():
        frames = list(open_source(f"synthetic:seed={seed},length=40,fps=10"))
        gt = np.stack([f.T_world_cam for f in frames])
        vo = run_vo(frames, VoConfig(flow="dis", scale="gt"))
        poses, ms, src = run_estimator(frames, ck, args.set)
        print(row(f"synthetic seed {seed}, `vo` (DIS, GT step length)", vo.T_world_cam, gt, float(vo.ms_per_frame)))
        print(row(f"synthetic seed {seed}, Estimator defaults", poses, gt, ms, f"step length sources {src}"))
        poses, ms, _ = run_estimator(frames, ck, args.set + ["scale.source=camera_height"])
        print(row(f"synthetic seed {seed}, Estimator camera_height", poses, gt, ms, "camera 1.65 m (synthetic)"))
    tum = data_root() / "tum_fr1_xyz_pairs"
    if tum.is_dir() and args.only in (None, "tum"):
        frames = list(open_source(tum))
        for label, sets in (("undistorted (fr1 d)", args.set), ("distortion ignored", None)):
            if sets is None:
                import dataclasses

                frames_used = [dataclasses.replace(f, distortion=None) for f in frames]
                sets = args.set
            else:
                frames_used = frames
            errs = pair_errors(frames_used, ck, sets)
            text = "; ".join(f"{s}: rot {r:.3f} t-dir {t:.1f} (identity rot {i:.3f})" for s, r, t, i in errs)
            print(f"| TUM fr1 pairs, Estimator, {label} | | | | | | {text} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
