"""`depth-pose vo SOURCE`: classical dense-flow visual odometry (DIS flow + two-view geometry).

Writes the trajectory (KITTI or TUM format) and, with ``--json``, the metrics: timing, status counts
and, when the source has ground-truth poses, the pose metrics of ``eval.pose_metrics``
(``rot_err_deg_per_frame``, ``tdir_err_deg_median``, ``ate_gt_scale_m``, ``ate_sim3_m``, ...).
Heavy imports happen inside :func:`run` so ``depth-pose --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from depth_pose_ros.utils.json_output import jsonable as _jsonable

# Same names as geometry.two_view.RANSAC_METHODS (not imported here: it would pull in torch and cv2
# just to build the parser; TwoViewConfig validates the value again).
RANSAC_CHOICES = ("lmeds", "ransac", "usac_accurate", "usac_default", "usac_magsac")
REPORT_KEYS = ("num_frames", "rot_err_deg_per_frame", "tdir_err_deg_median", "ate_gt_scale_m", "ate_sim3_m",
               "path_length_m", "ms_per_frame", "flow_ms_per_frame", "geometry_ms_per_frame")




def run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.data.trajectory_io import write_kitti_poses, write_tum_trajectory
    from depth_pose_ros.geometry.two_view import TwoViewConfig
    from depth_pose_ros.pipeline.vo import VoConfig, learned_flow, run_vo

    if args.threads:
        cv2.setNumThreads(args.threads)
        torch.set_num_threads(args.threads)
    source = open_source(args.source, frames=args.frames, sequence=args.sequence)
    tv = TwoViewConfig(ransac_method=args.ransac, top_ratio=args.top_ratio, num_samples=args.num_samples,
                       seed=args.seed)
    flow_fn = None
    if args.flow == "network":
        from depth_pose_ros.pipeline.factory import build_estimator

        estimator, _ = build_estimator(args.checkpoint or None, allow_untrained=False)
        flow_fn = learned_flow(estimator)
    elif args.checkpoint:
        raise ValueError("--checkpoint is only used with --flow network")
    cfg = VoConfig(flow=args.flow, dis_preset=args.dis_preset, backward_flow=not args.no_backward,
                   scale=args.scale, two_view=tv, flow_fn=flow_fn)

    def progress(i: int, r: Any) -> None:
        if args.verbose:
            print(f"pair {i:5d}: {r.status.value:17s} inliers {r.num_inliers:5d} conf {r.confidence:.2f}"
                  f" flow {r.mean_flow:6.1f}px {r.message}", file=sys.stderr)

    result = run_vo(source, cfg, progress=progress)
    out = Path(args.out)
    if args.format == "tum":
        write_tum_trajectory(out, result.stamps, result.T_world_cam)
    else:
        write_kitti_poses(out, result.T_world_cam)
    metrics = result.metrics()
    from depth_pose_ros.data.source import skipped_records, skipped_summary

    print(f"vo: {source.name} ({result.num_frames} frames, flow {args.flow}, scale {result.scale_mode}) -> {out}")
    for key in REPORT_KEYS:
        if key in metrics:
            v = metrics[key]
            print(f"  {key:24s} {v:.4f}" if isinstance(v, float) else f"  {key:24s} {v}")
    print(f"  {'status_counts':24s} {metrics['status_counts']}")
    metrics["skipped_frames"] = skipped_records(source.skipped)
    if source.skipped:
        print(f"  {skipped_summary(source.skipped)}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"source": str(args.source), "trajectory": str(out), "format": args.format,
                   "flow": args.flow, "checkpoint": args.checkpoint, "dis_preset": args.dis_preset,
                   "ransac": args.ransac, **metrics}
        path.write_text(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")
        print(f"wrote {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "vo", help="dense-flow visual odometry (DIS flow + essential matrix), trajectory + metrics",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="anything open_source understands: KITTI odometry dir, TUM, "
                                       "image folder, video, bag, 'synthetic:seed=0,length=20'")
    parser.add_argument("--out", default="traj.txt", help="trajectory file to write (default traj.txt)")
    parser.add_argument("--format", choices=("kitti", "tum"), default="kitti", help="trajectory format")
    parser.add_argument("--json", help="write metrics (and timing) to this JSON file")
    parser.add_argument("--flow", choices=("dis", "gt", "network"), default="dis",
                        help="dis: OpenCV DIS flow; gt: the source's ground-truth flow (synthetic world); "
                             "network: a trained network's flow (--checkpoint), resized to the image")
    parser.add_argument("--checkpoint", default="",
                        help="with --flow network: model file or folder (default: models/default)")
    parser.add_argument("--dis-preset", choices=("ultrafast", "fast", "medium"), default="medium")
    parser.add_argument("--no-backward", action="store_true",
                        help="skip the backward flow (faster; no forward-backward scoring)")
    parser.add_argument("--scale", choices=("auto", "gt", "geometry", "depth", "unit"), default="auto",
                        help="step length: gt (GT step length; default when GT poses exist), geometry (no GT: "
                             "carried from pair to pair by the shared triangulated points, as the Estimator "
                             "does), depth (align the frame depth to triangulation), unit")
    parser.add_argument("--ransac", choices=RANSAC_CHOICES, default="usac_magsac",
                        help="robust estimator of the essential matrix")
    parser.add_argument("--top-ratio", type=float, default=0.2, help="fraction of best-scored pixels kept")
    parser.add_argument("--num-samples", type=int, default=6000, help="correspondences given to RANSAC")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", help="frame selection START:STOP[:STEP]")
    parser.add_argument("--sequence", help="KITTI odometry sequence when SOURCE is the dataset root")
    parser.add_argument("--threads", type=int, default=0, help="OpenCV / torch threads (0: library default)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print one line per frame pair")
    parser.set_defaults(func=run)
