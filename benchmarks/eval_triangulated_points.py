#!/usr/bin/env python3
"""Accuracy of the node's triangulated points (``points/triangulated``) against a stereo pseudo ground truth,
beside the network depth on the same pixels and on all pixels.

The shipped model streams a KITTI odometry sequence's left frames (default 06, frames 0-50, the Estimator
settings of the model folder, as the node runs them). For every frame whose pose the geometry measured,
``pipeline.result.triangulated_points`` gives the points the node publishes; they are projected into the
left image and compared with the SGBM stereo pseudo GT of that frame (``eval/stereo_pseudo_gt.py``,
1-60 m, as ``depth-pose eval depth --stereo``). The network depth (registered to the camera image, as the
node publishes it) is scored on exactly the same pixels and on every pseudo-GT pixel, and a constant depth
on the same pixels. Monocular units: each frame is median-scaled (``per frame``), and, to show whether the
units hold from frame to frame as a trajectory needs, one scale for the whole run (``one scale``).

    .venv/bin/python benchmarks/eval_triangulated_points.py            # KITTI 06 frames 0:51
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequence", default="06")
    ap.add_argument("--frames", default="0:51")
    ap.add_argument("--checkpoint", default=None, help="model folder or weights (default: the shipped model)")
    ap.add_argument("--set", action="append", default=[], help="Estimator setting key=value")
    opts = ap.parse_args()

    from depth_pose_ros.commands.eval import STEREO_MAX_DEPTH as MAX_DEPTH
    from depth_pose_ros.commands.eval import STEREO_MIN_DEPTH as MIN_DEPTH  # the stereo pseudo GT's range
    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.eval.depth_metrics import depth_metrics
    from depth_pose_ros.eval.stereo_pseudo_gt import StereoPseudoGTConfig, stereo_pseudo_gt
    from depth_pose_ros.geometry.registration import register_depth
    from depth_pose_ros.pipeline.factory import build_estimator
    from depth_pose_ros.pipeline.result import triangulated_points
    from depth_pose_ros.utils.paths import data_root

    seq = data_root() / "kitti_odometry" / "sequences" / opts.sequence
    source = open_source(str(seq), frames=opts.frames, stereo=True)
    estimator, model = build_estimator(opts.checkpoint, opts.set, allow_untrained=False)
    cfg = StereoPseudoGTConfig()
    rows = []  # per frame: (tri, net_same, net_all, gt_same, gt_all)
    statuses: dict[str, int] = {}
    for frame in source:
        result = estimator.step(frame.image, frame.K, frame.stamp, distortion=frame.distortion)
        statuses[result.status] = statuses.get(result.status, 0) + 1
        xyz = triangulated_points(result, MAX_DEPTH * 2)
        if len(xyz) == 0:
            continue
        gt = stereo_pseudo_gt(frame.image, frame.stereo_image, float(frame.K[0, 0]), float(frame.stereo_baseline),
                              cfg).depth
        h, w = gt.shape
        uv = (xyz / xyz[:, 2:3]) @ np.asarray(frame.K, dtype=np.float64).T
        u, v = np.round(uv[:, 0]).astype(int), np.round(uv[:, 1]).astype(int)
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        u, v, z = u[inside], v[inside], xyz[inside, 2].astype(np.float64)
        g = gt[v, u].astype(np.float64)
        ok = (g > MIN_DEPTH) & (g < MAX_DEPTH)
        net = register_depth(result.depth, result.K, frame.K, (h, w)).astype(np.float64)
        all_ok = (gt > MIN_DEPTH) & (gt < MAX_DEPTH) & (net > 0)
        if ok.sum() < 10:
            continue
        rows.append((z[ok], net[v[ok], u[ok]], net[all_ok], g[ok], gt[all_ok].astype(np.float64), frame.index))

    if not rows:
        print("no frame with triangulated points and pseudo GT")
        return 1

    def score(pred_gt: list[tuple[np.ndarray, np.ndarray]], one_scale: bool) -> dict[str, float]:
        """Mean AbsRel / RMSE / delta<1.25 over frames (``eval.depth_metrics`` on each frame's 1xN pixels):
        median-scaled per frame, or with one scale for the run (median of every pixel's gt / pred)."""
        opts = {"min_depth": MIN_DEPTH, "max_depth": MAX_DEPTH}
        if one_scale:
            s = float(np.median(np.concatenate([g / p for p, g in pred_gt])))
            per = [depth_metrics(p[None] * s, g[None], median_scale=False, **opts) for p, g in pred_gt]
        else:
            per = [depth_metrics(p[None], g[None], median_scale=True, **opts) for p, g in pred_gt]
        return {k: float(np.mean([m[k] for m in per])) for k in ("abs_rel", "rmse", "delta1")}

    const = [(np.ones_like(g), g) for _, _, _, g, _, _ in rows]
    entries = [("triangulated points", [(t, g) for t, _, _, g, _, _ in rows]),
               ("network depth, same pixels", [(n, g) for _, n, _, g, _, _ in rows]),
               ("network depth, every pseudo-GT pixel", [(n, g) for _, _, n, _, g, _ in rows]),
               ("constant depth, same pixels", const)]
    points = np.array([len(t) for t, *_ in rows])
    print(f"{model} on KITTI {opts.sequence} frames {opts.frames}: {len(rows)} frames with triangulated points "
          f"in the pseudo GT (statuses {statuses}); points per frame scored: median {np.median(points):.0f}, "
          f"min {points.min()}, max {points.max()}; pseudo GT SGBM {MIN_DEPTH:g}-{MAX_DEPTH:g} m")
    print("| depth | scaling | AbsRel | RMSE (m) | delta<1.25 |")
    print("|---|---|---|---|---|")
    for name, pairs in entries:
        for one_scale in (False, True):
            if name.startswith("constant") and one_scale:
                continue
            m = score(pairs, one_scale)
            print(f"| {name} | {'one scale for the run' if one_scale else 'per frame (median)'} | "
                  f"{m['abs_rel']:.3f} | {m['rmse']:.2f} | {m['delta1']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
