"""``depth-pose demo``: the first thing a user runs (``make demo``).

With no arguments: renders a held-out synthetic sequence (exact ground truth), runs the shipped
model through the streaming Estimator and writes to ``out/demo/``: ``summary.png`` (input | depth |
flow | trajectory against ground truth), ``metrics.json``, ``scene.ply`` (the accumulated point
cloud) and ``trajectory_tum.txt``; then prints a short table. ``--source`` runs it on a KITTI
sequence, bag, video or image folder instead.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

DEFAULT_SOURCE = "synthetic:seed=1000,length=40"  # seed 1000+: never used for training


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from depth_pose_ros.commands.run import write_run_outputs
    from depth_pose_ros.data.source import open_source, skipped_records, skipped_summary
    from depth_pose_ros.pipeline.factory import build_estimator
    from depth_pose_ros.pipeline.runner import run_sequence, summarize

    t0 = time.perf_counter()
    estimator, weights = build_estimator(args.checkpoint, args.set)
    source_spec = args.source or _default_source(estimator)
    source = open_source(source_spec, frames=args.frames)
    print(f"depth-pose demo: {len(source)} frames of {source_spec}")
    print(f"  model: {weights}")
    try:
        from tqdm import tqdm

        progress = tqdm(total=len(source), unit="frame", disable=args.quiet)
    except ImportError:  # pragma: no cover
        progress = None
    result = run_sequence(source, estimator, progress=progress)
    if progress is not None:
        progress.close()
    out = Path(args.out)
    metrics = summarize(result)
    metrics["source"] = source_spec
    metrics["model"] = weights
    metrics["wall_s"] = time.perf_counter() - t0
    metrics["skipped_frames"] = skipped_records(source.skipped)
    write_run_outputs(result, out, metrics, trajectory_formats=("tum", "kitti"))
    _print_table(metrics)
    print(f"  wrote {out}/summary.png, metrics.json, scene.ply, trajectory_tum.txt "
          f"({metrics['wall_s']:.1f} s)")
    if source.skipped:
        print(f"  {skipped_summary(source.skipped)}")
    return 0 if np.isfinite(metrics.get("ms_per_frame", 0.0)) else 1


DEMO_CAMERA_WIDTH = 640  # a camera-like width: the network input is resized, the geometry is not tied to it


def _default_source(estimator) -> str:
    """The held-out sequence rendered like a camera would deliver it: the network's aspect ratio at
    least ``DEMO_CAMERA_WIDTH`` pixels wide (the Estimator resizes it for the network)."""
    h, w = estimator.network_size
    width = max(w, DEMO_CAMERA_WIDTH)
    return f"{DEFAULT_SOURCE},height={int(round(h * width / w))},width={width}"


def _print_table(metrics: dict) -> None:
    rows = [("frames", f"{metrics['num_frames']}"),
            ("ms / frame (Estimator.step)", f"{metrics.get('ms_per_frame', 0):.1f}")]
    pose = metrics.get("pose")
    if pose:
        rows += [
            ("rotation error (deg / frame)", f"{pose['rot_err_deg_per_frame']:.3f}"),
            ("translation direction error (deg, median)", f"{pose['tdir_err_deg_median']:.2f}"),
            ("ATE after Sim(3) alignment (m)", f"{pose['ate_sim3_m']:.3f}"),
            ("path length (GT, m)", f"{pose['path_length_m']:.1f}"),
        ]
    depth = metrics.get("depth")
    if depth:
        rows += [("depth AbsRel (median scaled)", f"{depth['abs_rel']:.3f}"),
                 ("depth delta<1.25", f"{depth['delta1']:.3f}")]
    flow = metrics.get("flow")
    if flow:
        rows += [("flow EPE (px, non-occluded)", f"{flow['epe']:.2f}")]
    width = max(len(r[0]) for r in rows)
    print("  " + "-" * (width + 14))
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>10}")
    print("  " + "-" * (width + 14))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="run the shipped model on a synthetic (or given) sequence",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default=None,
                   help=f"frame source (default: {DEFAULT_SOURCE} rendered at a camera size: the network's "
                        "aspect, 640 px wide)")
    p.add_argument("--frames", default=None, help="frame selection START:STOP[:STEP]")
    p.add_argument("--checkpoint", default=None, help="model file or folder (default: models/default)")
    p.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="Estimator config override, e.g. --set scale.source=camera_height")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
