"""`depth-pose eval {depth,pose,flow}`: evaluate saved outputs (or classical flow) against GT.

This module parses the arguments, picks what is scored (builds the Estimator, reads the folders), prints
and writes the numbers; the scoring itself is in the eval layer: ``eval.stereo_depth`` (``--stereo``),
``eval.saved_predictions`` (depth folders, prediction files), ``eval.kitti_flow_eval`` (flow) and
``eval.pose_metrics.evaluate_trajectory_files`` (pose).

Prints a table to stdout and, with ``--json PATH``, writes every number (NaN as null) for scripts
and benchmark pages. Networks run only for ``eval flow --checkpoint`` (learned flow) and
``eval depth --stereo`` (the streaming Estimator scored against a stereo pseudo ground truth, for
real sequences without lidar); heavy imports happen inside the command functions so that
``depth-pose --help`` stays fast.

A frame or file that cannot be read (corrupt PNG, truncated .npy) is skipped, not fatal: the run ends
with "skipped N unreadable frames: ..." and the JSON lists them under ``skipped_frames``. A missing
folder or one without any usable file is still an error.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from depth_pose_ros.utils.json_output import jsonable as _jsonable

# ----------------------------------------------------------------------------------------------
# output helpers
# ----------------------------------------------------------------------------------------------


def _write_json(path: Optional[str], payload: dict) -> None:
    if not path:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(payload), indent=2, allow_nan=False) + "\n")
    print(f"wrote {out}")


def _fmt(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4f}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _print_table(header: list[str], rows: list[list[Any]]) -> None:
    cells = [header] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def skipped_records(skipped: list[tuple[Any, str]]) -> list[dict[str, Any]]:
    """``skipped_frames`` of the JSON output (frame numbers, or file stems for saved predictions)."""
    from depth_pose_ros.data.source import skipped_records as records

    return records(skipped)


def _report_skipped(skipped: list[tuple[Any, str]]) -> None:
    """The end-of-run line naming what could not be read (nothing when all was read)."""
    from depth_pose_ros.data.source import skipped_summary

    if skipped:
        print(skipped_summary(skipped))


def _print_dict(d: dict) -> None:
    width = max(len(k) for k in d)
    for k, v in d.items():
        print(f"{k.ljust(width)}  {_fmt(v)}")


# ----------------------------------------------------------------------------------------------
# eval pose
# ----------------------------------------------------------------------------------------------
def run_pose(args: argparse.Namespace) -> int:
    from depth_pose_ros.eval.pose_metrics import evaluate_trajectory_files

    counts, matching, summary = evaluate_trajectory_files(
        args.pred, args.gt, pred_format=args.pred_format, gt_format=args.gt_format, max_dt=args.max_dt,
        rpe_delta=args.rpe_delta, scale_alignment=args.scale_alignment,
    )
    print(f"pose: {args.pred} vs {args.gt}, matched {matching}")
    _print_dict(summary)
    _write_json(
        args.json,
        {"task": "pose", "pred": args.pred, "gt": args.gt, "matching": matching,
         **counts, "summary": summary},
    )
    return 0


# ----------------------------------------------------------------------------------------------
# eval depth
# ----------------------------------------------------------------------------------------------
def run_depth(args: argparse.Namespace) -> int:
    from depth_pose_ros.data.source import skipped_summary
    from depth_pose_ros.eval.depth_metrics import DEPTH_METRIC_KEYS
    from depth_pose_ros.eval.saved_predictions import DEPTH_SUFFIXES, by_stem, evaluate_depth_files

    if args.stereo:
        return run_depth_stereo(args)
    if not args.pred or not args.gt:
        raise ValueError("eval depth needs --pred and --gt folders (or --stereo SEQ for a stereo pseudo GT)")
    if args.checkpoint or args.set:
        raise ValueError("--checkpoint / --set run a model for --stereo only; with --gt, give saved --pred files")
    args.min_depth = 1e-3 if args.min_depth is None else args.min_depth
    args.max_depth = 80.0 if args.max_depth is None else args.max_depth
    preds = by_stem(Path(args.pred), DEPTH_SUFFIXES, "--pred")
    gts = by_stem(Path(args.gt), DEPTH_SUFFIXES, "--gt")
    common = sorted(set(preds) & set(gts))
    if not common:
        raise ValueError(f"no file stem is shared by --pred {args.pred} and --gt {args.gt}")
    missing = sorted(set(gts) - set(preds))
    if missing:
        print(f"warning: {len(missing)} GT files have no prediction (e.g. {missing[0]})", file=sys.stderr)

    res = evaluate_depth_files(
        common, preds, gts, png_scale=args.png_scale, median_scale=not args.no_median_scale,
        garg_crop=args.garg_crop, min_depth=args.min_depth, max_depth=args.max_depth,
    )
    per_image, skipped, summary = res.per_image, res.skipped, res.summary
    if not per_image:
        raise ValueError(f"no readable pair of --pred {args.pred} and --gt {args.gt} ({skipped_summary(skipped)})")
    rows = [[m["name"], *(m[k] for k in DEPTH_METRIC_KEYS), m["scale"]] for m in per_image]
    rows.append(["mean", *(summary[k] for k in DEPTH_METRIC_KEYS), summary["scale_mean"]])
    _print_table(["image", *DEPTH_METRIC_KEYS, "scale"], rows)
    if not args.no_median_scale:
        print(f"median scaling ratio: mean {summary['scale_mean']:.4f}, std {summary['scale_std']:.4f}")
    _report_skipped(skipped)
    _write_json(args.json, {"task": "depth", "pred": args.pred, "gt": args.gt,
                            "summary": summary, "per_image": per_image,
                            "skipped_frames": skipped_records(skipped)})
    return 0


STEREO_MIN_DEPTH, STEREO_MAX_DEPTH = 1.0, 60.0
STEREO_TABLE_KEYS = ("abs_rel", "sq_rel", "rmse", "delta1")  # per-frame columns (JSON has all metrics)


def _stereo_pseudo_gt_config(args: argparse.Namespace) -> Any:
    from depth_pose_ros.eval.stereo_pseudo_gt import StereoPseudoGTConfig

    return StereoPseudoGTConfig(
        num_disparities=args.num_disparities, block_size=args.block_size, top_fraction=args.top_fraction,
        lr_check=not args.no_lr_check, lr_tolerance_px=args.lr_tolerance,
        min_depth=args.min_depth, max_depth=args.max_depth,
    )


def run_depth_stereo(args: argparse.Namespace) -> int:
    """``eval depth --stereo SEQ``: score a model's depth (the streaming Estimator over the sequence, or
    saved ``--pred`` files named by frame number) against an SGBM pseudo ground truth of every
    ``--every``-th frame, with a constant depth map scored on the same pixels beside it
    (``eval.stereo_depth.evaluate_stereo_depth``).

    The Estimator sees every selected frame (its recurrent state and odometry depend on the history),
    but only the scored frames pay for stereo matching.
    """
    import time

    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.eval.depth_metrics import DEPTH_METRIC_KEYS
    from depth_pose_ros.eval.saved_predictions import DEPTH_SUFFIXES, by_stem, read_depth_file
    from depth_pose_ros.eval.stereo_depth import evaluate_stereo_depth
    from depth_pose_ros.eval.stereo_pseudo_gt import config_dict

    if args.gt:
        raise ValueError("--stereo builds the ground truth itself: drop --gt")
    if args.pred and (args.checkpoint or args.set):
        raise ValueError("give either --pred (saved depth) or --checkpoint/--set (run a model), not both")
    if args.every < 1:
        raise ValueError(f"--every must be >= 1, got {args.every}")
    if args.garg_crop:
        raise ValueError("--garg-crop is a lidar-GT convention; with --stereo the masks are --top-fraction and "
                         "the left border of --num-disparities")
    if args.no_median_scale:
        raise ValueError("--no-median-scale: a monocular model has no metric scale and the constant baseline "
                         "needs median scaling; the stereo evaluation always median-scales")
    args.min_depth = STEREO_MIN_DEPTH if args.min_depth is None else args.min_depth
    args.max_depth = STEREO_MAX_DEPTH if args.max_depth is None else args.max_depth
    cfg = _stereo_pseudo_gt_config(args)
    t_start = time.perf_counter()
    source = open_source(args.stereo, frames=args.frames, sequence=args.sequence, stereo=True)
    if not getattr(source, "has_stereo", False):
        raise ValueError(f"--stereo {args.stereo}: the source has no stereo partner images")

    estimator, read_pred, model = None, None, ""
    if args.pred:
        preds = by_stem(Path(args.pred), DEPTH_SUFFIXES, "--pred")
        model = f"pred:{args.pred}"

        def read_pred(frame: Any) -> Any:
            name = f"{frame.index:06d}"
            if name not in preds:
                raise FileNotFoundError(f"--pred {args.pred}: no {name}.npy or {name}.png for frame {frame.index}")
            return read_depth_file(preds[name], args.png_scale)
    else:
        from depth_pose_ros.pipeline.factory import build_estimator

        estimator, model = build_estimator(args.checkpoint, args.set, allow_untrained=False)
        estimator.reset()
    if args.save_gt:
        Path(args.save_gt).mkdir(parents=True, exist_ok=True)

    res = evaluate_stereo_depth(
        source, cfg, estimator=estimator, read_pred=read_pred, every=args.every, upsample=args.upsample,
        save_gt=Path(args.save_gt) if args.save_gt else None, source_label=str(args.stereo),
    )
    per_image = res.per_image
    if not per_image:
        raise ValueError(f"--stereo {args.stereo}: no frame selected (check --frames)")
    summary, csum = res.summary, res.constant
    rows = [[f"{p['frame']:06d}", p["coverage"], *(p[k] for k in STEREO_TABLE_KEYS), p["scale"],
             *(p["constant"][k] for k in STEREO_TABLE_KEYS)] for p in per_image]
    coverage = res.coverage_mean
    rows.append(["mean", coverage, *(summary[k] for k in STEREO_TABLE_KEYS), summary["scale_mean"],
                 *(csum[k] for k in STEREO_TABLE_KEYS)])
    wall = time.perf_counter() - t_start
    print(f"depth vs stereo pseudo GT (SGBM, left-right checked{'' if cfg.lr_check else ': OFF'}, "
          f"{args.min_depth:g}-{args.max_depth:g} m, top {cfg.top_fraction:.0%} masked): {model} on "
          f"{len(per_image)} frames of {source.name}")
    _print_table(["frame", "valid", *STEREO_TABLE_KEYS, "scale", *(f"const_{k}" for k in STEREO_TABLE_KEYS)],
                 rows)
    print("model:    " + "  ".join(f"{k} {summary[k]:.4f}" for k in DEPTH_METRIC_KEYS))
    print("constant: " + "  ".join(f"{k} {csum[k]:.4f}" for k in DEPTH_METRIC_KEYS))
    print(f"time: {wall:.1f} s (model {res.model_s:.1f} s over {res.frames_streamed} frames, "
          f"pseudo GT {res.pseudo_gt_s:.1f} s)")
    _report_skipped(source.skipped)
    _write_json(args.json, {
        "task": "depth_stereo", "source": str(args.stereo), "model": model,
        "frames": [p["frame"] for p in per_image], "every": args.every, "upsample": args.upsample,
        "pseudo_gt": config_dict(cfg), "coverage_mean": coverage,
        "pred_coverage_mean": res.pred_coverage_mean,
        "summary": summary, "constant": csum, "per_image": per_image,
        "timing_s": {"wall": wall, "model": res.model_s, "pseudo_gt": res.pseudo_gt_s,
                     "frames_streamed": res.frames_streamed},
        "skipped_frames": skipped_records(source.skipped),
    })
    return 0


# ----------------------------------------------------------------------------------------------
# eval flow
# ----------------------------------------------------------------------------------------------
def _learned_flow(checkpoint: str) -> Callable[[Any, Any], Any]:
    """Flow of a trained model (``--checkpoint``): the network's forward flow at its input size (the
    caller resizes it, values scaled, to the ground truth's size)."""
    from depth_pose_ros.pipeline.factory import build_estimator

    estimator, _ = build_estimator(checkpoint, allow_untrained=False)
    return estimator.flow_between


def run_flow(args: argparse.Namespace) -> int:
    from depth_pose_ros.data.kitti_flow import KittiFlow2015
    from depth_pose_ros.eval.kitti_flow_eval import evaluate_kitti_flow
    from depth_pose_ros.eval.saved_predictions import FLOW_PRED_SUFFIXES, by_stem
    from depth_pose_ros.utils.paths import data_root

    data = KittiFlow2015(Path(args.data) if args.data else data_root() / "kitti_flow_2015", occ=True)

    predict: Optional[Callable[[Any, Any], Any]] = None
    preds: Optional[dict[str, Path]] = None
    if args.checkpoint:
        predict = _learned_flow(args.checkpoint)
        method = f"checkpoint:{args.checkpoint}"
    elif args.pred_dir:
        preds = by_stem(Path(args.pred_dir), FLOW_PRED_SUFFIXES, "--pred-dir")
        missing = [n for n in data.names if n not in preds]
        if missing:
            raise FileNotFoundError(f"--pred-dir {args.pred_dir}: no {missing[0]}.npy or {missing[0]}.png "
                                    f"({len(missing)} of {len(data)} pairs missing)")
        method = f"pred-dir:{args.pred_dir}"
    else:
        from depth_pose_ros.geometry.dis_flow import dis_flow

        def predict(img1: Any, img2: Any) -> Any:
            return dis_flow(img1, img2, args.preset)

        method = f"dis-{args.preset}"

    res = evaluate_kitti_flow(data, predict=predict, pred_files=preds)
    per_image, summary, zsum = res.per_image, res.summary, res.zero_flow
    nan = float("nan")
    rows = [[m["name"], m["epe"], m["fl_all"], m.get("epe_noc", nan), m.get("fl_noc", nan),
             m["zero_flow_epe"], m["zero_flow_fl_all"]] for m in per_image]
    rows.append(["mean (EPE per image, Fl pooled)", summary["epe"], summary["fl_all"],
                 summary.get("epe_noc", nan), summary.get("fl_noc", nan), zsum["epe"], zsum["fl_all"]])
    print(f"flow: {method} on {len(data)} KITTI 2015 pairs in {data.dir}"
          + ("" if data.has_noc else " (no flow_noc: noc metrics unavailable)"))
    _print_table(["pair", "EPE", "Fl-all%", "EPE-noc", "Fl-noc%", "zero EPE", "zero Fl%"], rows)
    _report_skipped(res.skipped)
    _write_json(args.json, {
        "task": "flow", "method": method, "data": str(data.dir), "has_noc": data.has_noc,
        "headline": "epe = mean of per-image EPE; fl_all = pixel-pooled outlier % (KITTI devkit)",
        "summary": summary, "zero_flow": zsum, "per_image": per_image,
        "skipped_frames": skipped_records(res.skipped),
    })
    return 0


# ----------------------------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="evaluate depth / pose / flow against ground truth",
        description="Evaluate saved predictions (or classical DIS flow) against ground truth.",
    )
    tasks = parser.add_subparsers(dest="eval_task", metavar="TASK", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", metavar="PATH", help="also write all numbers to this JSON file")

    pose = tasks.add_parser("pose", help="trajectory metrics (ATE, RPE, KITTI t_err/r_err, per-frame errors)")
    pose.add_argument("--pred", required=True, help="predicted trajectory file")
    pose.add_argument("--gt", required=True, help="ground-truth trajectory file")
    pose.add_argument("--pred-format", choices=("kitti", "tum"), default="kitti")
    pose.add_argument("--gt-format", choices=("kitti", "tum"), default="kitti")
    pose.add_argument("--max-dt", type=float, default=0.02,
                      help="TUM association: max timestamp difference in s (default 0.02)")
    pose.add_argument("--rpe-delta", type=int, default=10, help="second RPE frame offset (default 10)")
    pose.add_argument("--scale-alignment", choices=("sim3", "none"), default="sim3",
                      help="scale of pred for RPE and t_err: sim3 (monocular, default) or none (metric)")
    common(pose)
    pose.set_defaults(func=run_pose)

    depth = tasks.add_parser(
        "depth", help="Eigen depth metrics: folders matched by file stem, or against a stereo pseudo GT",
        description="Eigen depth metrics of --pred against --gt (folders matched by file stem), or, with "
                    "--stereo SEQ, of a model (or --pred) against a pseudo ground truth built from the "
                    "sequence's rectified stereo pairs (OpenCV SGBM + left-right check; see "
                    "depth_pose_ros/eval/stereo_pseudo_gt.py for what it cannot judge), with a constant "
                    "depth map scored on the same pixels beside it.",
    )
    depth.add_argument("--pred", help="folder of predicted depth (.npy metres or 16-bit PNG); with --stereo, "
                                      "files named by frame number (NNNNNN, as `depth-pose run` writes)")
    depth.add_argument("--gt", help="folder of GT depth (.npy metres or 16-bit PNG, 0 = invalid)")
    depth.add_argument("--png-scale", type=float, default=1000.0,
                       help="PNG value per metre (default 1000 = mm; KITTI depth uses 256)")
    depth.add_argument("--garg-crop", action="store_true", help="evaluate inside the Garg crop only")
    depth.add_argument("--no-median-scale", action="store_true",
                       help="do not median-scale each prediction (metric / stereo methods)")
    depth.add_argument("--min-depth", type=float, default=None,
                       help=f"metres (default 1e-3; {STEREO_MIN_DEPTH:g} with --stereo)")
    depth.add_argument("--max-depth", type=float, default=None,
                       help=f"metres (default 80; {STEREO_MAX_DEPTH:g} with --stereo)")
    stereo = depth.add_argument_group("stereo pseudo ground truth (--stereo)")
    stereo.add_argument("--stereo", metavar="SEQ",
                        help="rectified stereo sequence (KITTI odometry sequence folder or root, KITTI raw "
                             "drive, synthetic:stereo_baseline=...) to build the pseudo GT from")
    stereo.add_argument("--sequence", default=None, help="KITTI odometry sequence when SEQ is a dataset root")
    stereo.add_argument("--frames", default=None, help="frames streamed through the model, START:STOP[:STEP]")
    stereo.add_argument("--every", type=int, default=5,
                        help="score every N-th streamed frame (default 5: 0, 5, 10, ...)")
    stereo.add_argument("--checkpoint", default=None,
                        help="model file or folder run as the streaming Estimator (default: models/default)")
    stereo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Estimator config override")
    stereo.add_argument("--upsample", choices=("linear", "nearest"), default="linear",
                        help="how the network-size depth is registered to the image: linear (edge-aware: linear in "
                             "inverse depth off depth edges, default) or nearest")
    stereo.add_argument("--num-disparities", type=int, default=128,
                        help="SGBM search range in px, multiple of 16 (default 128)")
    stereo.add_argument("--block-size", type=int, default=5, help="SGBM window (odd, default 5)")
    stereo.add_argument("--top-fraction", type=float, default=0.35,
                        help="fraction of rows masked from the top: sky / far range (default 0.35)")
    stereo.add_argument("--lr-tolerance", type=float, default=1.0,
                        help="left-right consistency tolerance in px (default 1)")
    stereo.add_argument("--no-lr-check", action="store_true", help="skip the left-right check (diagnostics)")
    stereo.add_argument("--save-gt", metavar="DIR",
                        help="also write each pseudo GT as a 16-bit PNG (mm, 0 = invalid) for reuse with --gt")
    common(depth)
    depth.set_defaults(func=run_depth)

    flow = tasks.add_parser("flow", help="EPE / Fl-all on KITTI 2015 (DIS flow or saved predictions)")
    flow.add_argument("--data", help="KITTI 2015 folder (default <data_root>/kitti_flow_2015)")
    flow.add_argument("--method", choices=("dis",), default="dis", help="flow computed on the fly")
    flow.add_argument("--preset", choices=("ultrafast", "fast", "medium"), default="medium",
                      help="DIS preset (default medium)")
    source = flow.add_mutually_exclusive_group()
    source.add_argument("--pred-dir", help="evaluate saved flow instead: <name>_10.npy (HxWx2) or KITTI PNG")
    source.add_argument("--checkpoint",
                        help="learned flow of a model (.safetensors file or model folder)")
    common(flow)
    flow.set_defaults(func=run_flow)
