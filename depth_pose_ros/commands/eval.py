"""`depth-pose eval {depth,pose,flow}`: evaluate saved outputs (or classical flow) against GT.

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

FLOW_PRED_SUFFIXES = (".npy", ".png")
DEPTH_SUFFIXES = (".npy", ".png")


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
    from depth_pose_ros.data.trajectory_io import associate, read_trajectory
    from depth_pose_ros.eval.pose_metrics import pose_summary

    pred_stamps, pred = read_trajectory(args.pred, args.pred_format)
    gt_stamps, gt = read_trajectory(args.gt, args.gt_format)
    counts = {"num_pred_poses": len(pred), "num_gt_poses": len(gt)}
    if pred_stamps is not None and gt_stamps is not None:
        ia, ib = associate(pred_stamps, gt_stamps, args.max_dt)
        if len(ia) < 2:
            raise ValueError(
                f"only {len(ia)} poses of {args.pred} match {args.gt} within --max-dt {args.max_dt} s"
            )
        pred, gt = pred[ia], gt[ib]
        matching = f"timestamps (max_dt {args.max_dt} s): {len(ia)} of {len(pred_stamps)} pred poses"
    else:
        if len(pred) != len(gt):
            raise ValueError(
                f"{args.pred} has {len(pred)} poses but {args.gt} has {len(gt)}; without timestamps on both "
                "sides poses are matched by line, so the counts must agree"
            )
        matching = "by line (frame-aligned)"
    summary = pose_summary(pred, gt, rpe_delta=args.rpe_delta, scale_alignment=args.scale_alignment)
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
def _by_stem(folder: Path, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} directory not found: {folder}")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in suffixes and p.is_file():
            if p.stem in files:
                raise ValueError(f"{what}: both {files[p.stem].name} and {p.name} in {folder}; keep one")
            files[p.stem] = p
    if not files:
        raise ValueError(f"{what}: no {'/'.join(suffixes)} files in {folder}")
    return files


def _read_depth(path: Path, png_scale: float) -> Any:
    """HxW metres from .npy (float metres) or a 16-bit PNG holding ``metres * png_scale``."""
    import numpy as np

    from depth_pose_ros.data.source import read_depth_png

    if path.suffix.lower() == ".png":
        return read_depth_png(path, png_scale)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read depth .npy {path}: {exc}") from None
    return arr  # shape checked by depth_metrics (HxW, 1xHxW or HxWx1)


def run_depth(args: argparse.Namespace) -> int:
    from depth_pose_ros.data.source import FRAME_READ_ERRORS, skipped_summary
    from depth_pose_ros.eval.depth_metrics import DEPTH_METRIC_KEYS, DepthMetricAccumulator

    if args.stereo:
        return run_depth_stereo(args)
    if not args.pred or not args.gt:
        raise ValueError("eval depth needs --pred and --gt folders (or --stereo SEQ for a stereo pseudo GT)")
    if args.checkpoint or args.set:
        raise ValueError("--checkpoint / --set run a model for --stereo only; with --gt, give saved --pred files")
    args.min_depth = 1e-3 if args.min_depth is None else args.min_depth
    args.max_depth = 80.0 if args.max_depth is None else args.max_depth
    preds = _by_stem(Path(args.pred), DEPTH_SUFFIXES, "--pred")
    gts = _by_stem(Path(args.gt), DEPTH_SUFFIXES, "--gt")
    common = sorted(set(preds) & set(gts))
    if not common:
        raise ValueError(f"no file stem is shared by --pred {args.pred} and --gt {args.gt}")
    missing = sorted(set(gts) - set(preds))
    if missing:
        print(f"warning: {len(missing)} GT files have no prediction (e.g. {missing[0]})", file=sys.stderr)

    acc = DepthMetricAccumulator(
        median_scale=not args.no_median_scale, garg_crop=args.garg_crop,
        min_depth=args.min_depth, max_depth=args.max_depth,
    )
    rows, per_image, skipped = [], [], []
    for stem in common:
        try:
            pred, gt = _read_depth(preds[stem], args.png_scale), _read_depth(gts[stem], args.png_scale)
        except FRAME_READ_ERRORS as exc:  # one corrupt file: skip the image, report it at the end
            skipped.append((stem, str(exc)))
            continue
        try:
            m = acc.add(pred, gt)
        except ValueError as exc:
            raise ValueError(f"{stem} ({preds[stem]} vs {gts[stem]}): {exc}") from None
        per_image.append({"name": stem, **m})
        rows.append([stem, *(m[k] for k in DEPTH_METRIC_KEYS), m["scale"]])
    if not per_image:
        raise ValueError(f"no readable pair of --pred {args.pred} and --gt {args.gt} ({skipped_summary(skipped)})")
    summary = acc.summary()
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
    ``--every``-th frame, with a constant depth map scored on the same pixels beside it.

    The Estimator sees every selected frame (its recurrent state and odometry depend on the history),
    but only the scored frames pay for stereo matching.
    """
    import time

    import cv2
    import numpy as np

    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.eval.depth_metrics import DEPTH_METRIC_KEYS, DepthMetricAccumulator
    from depth_pose_ros.eval.stereo_pseudo_gt import config_dict, constant_depth_like, stereo_pseudo_gt
    from depth_pose_ros.geometry.registration import EDGE_RATIO, register_depth

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

    estimator, preds, model = None, {}, ""
    if args.pred:
        preds = _by_stem(Path(args.pred), DEPTH_SUFFIXES, "--pred")
        model = f"pred:{args.pred}"
    else:
        from depth_pose_ros.pipeline.factory import build_estimator

        estimator, model = build_estimator(args.checkpoint, args.set, allow_untrained=False)
        estimator.reset()
    if args.save_gt:
        Path(args.save_gt).mkdir(parents=True, exist_ok=True)

    opts = {"median_scale": True, "min_depth": args.min_depth, "max_depth": args.max_depth}
    acc, const = DepthMetricAccumulator(**opts), DepthMetricAccumulator(**opts)
    rows, per_image = [], []
    t_model = t_gt = 0.0
    interp = cv2.INTER_NEAREST if args.upsample == "nearest" else cv2.INTER_LINEAR
    # registration: edge-aware (linear in inverse depth off edges) or, for "nearest", nearest everywhere
    edge_ratio = 1.0 + 1e-9 if args.upsample == "nearest" else EDGE_RATIO
    streamed = 0
    for i, frame in enumerate(source):  # unreadable frames are skipped by the source (source.skipped)
        streamed = i + 1
        scored = i % args.every == 0
        name = f"{frame.index:06d}"
        if estimator is not None:
            t0 = time.perf_counter()
            result = estimator.step(frame.image, frame.K, frame.stamp, frame.stereo_image, frame.stereo_baseline,
                                    distortion=frame.distortion)
            t_model += time.perf_counter() - t0
            pred = result.depth
        elif scored:
            if name not in preds:
                raise FileNotFoundError(f"--pred {args.pred}: no {name}.npy or {name}.png for frame {frame.index}")
            pred = _read_depth(preds[name], args.png_scale)
        if not scored:
            continue
        if frame.stereo_image is None or frame.stereo_baseline is None:
            raise ValueError(f"frame {frame.index} of {args.stereo} has no stereo image")
        t0 = time.perf_counter()
        gt = stereo_pseudo_gt(frame.image, frame.stereo_image, float(frame.K[0, 0]), float(frame.stereo_baseline),
                              cfg)
        t_gt += time.perf_counter() - t0
        h, w = gt.depth.shape
        pred = np.asarray(pred, dtype=np.float32)
        if estimator is not None:  # registered to the camera image through the exact K maps (a crop included)
            pred = register_depth(pred, result.K, frame.K, (h, w), edge_ratio=edge_ratio)
        elif pred.shape[:2] != (h, w):
            pred = cv2.resize(pred, (w, h), interpolation=interp)
        has_gt = gt.depth > 0
        # the prediction's coverage: fraction of the pseudo-GT pixels where it has depth
        pred_coverage = float((pred > 0)[has_gt].mean()) if has_gt.any() else 0.0
        gt.depth[~(pred > 0)] = 0.0  # unknown predictions (0: e.g. outside the network's crop) are not scored
        if args.save_gt:  # what was scored
            mm = np.clip(np.round(gt.depth * 1000.0), 0, 65535).astype(np.uint16)
            cv2.imwrite(str(Path(args.save_gt) / f"{name}.png"), mm)
        try:
            m = acc.add(pred, gt.depth)
        except ValueError as exc:
            raise ValueError(f"frame {frame.index}: {exc}") from None
        c = const.add(constant_depth_like(gt), gt.depth)
        per_image.append({"frame": frame.index, "coverage": gt.coverage, "pred_coverage": pred_coverage,
                          "rejected": gt.rejected, "size": [h, w], **m,
                          "constant": c})
        rows.append([name, gt.coverage, *(m[k] for k in STEREO_TABLE_KEYS), m["scale"],
                     *(c[k] for k in STEREO_TABLE_KEYS)])
    if not per_image:
        raise ValueError(f"--stereo {args.stereo}: no frame selected (check --frames)")
    summary, csum = acc.summary(), const.summary()
    coverage = float(np.mean([p["coverage"] for p in per_image]))
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
    print(f"time: {wall:.1f} s (model {t_model:.1f} s over {streamed} frames, pseudo GT {t_gt:.1f} s)")
    _report_skipped(source.skipped)
    _write_json(args.json, {
        "task": "depth_stereo", "source": str(args.stereo), "model": model,
        "frames": [p["frame"] for p in per_image], "every": args.every, "upsample": args.upsample,
        "pseudo_gt": config_dict(cfg), "coverage_mean": coverage,
        "pred_coverage_mean": float(np.mean([p["pred_coverage"] for p in per_image])),
        "summary": summary, "constant": csum, "per_image": per_image,
        "timing_s": {"wall": wall, "model": t_model, "pseudo_gt": t_gt, "frames_streamed": streamed},
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


def _read_pred_flow(path: Path) -> Any:
    """HxWx2 predicted flow from ``.npy`` or a KITTI flow PNG (pixels the PNG marks invalid read as
    zero flow: a prediction should cover every pixel)."""
    import numpy as np

    from depth_pose_ros.data.kitti_flow import read_kitti_flow_png

    if path.suffix.lower() == ".png":
        return read_kitti_flow_png(path)[0]
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read flow .npy {path}: {exc}") from None
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{path}: expected HxWx2 flow (dx, dy), got shape {arr.shape}")
    return arr


def run_flow(args: argparse.Namespace) -> int:
    import numpy as np

    from depth_pose_ros.data.kitti_flow import KittiFlow2015, read_kitti_flow_png
    from depth_pose_ros.data.source import FRAME_READ_ERRORS, skipped_summary
    from depth_pose_ros.eval.flow_metrics import FlowMetricAccumulator, resize_flow
    from depth_pose_ros.utils.paths import data_root

    data = KittiFlow2015(Path(args.data) if args.data else data_root() / "kitti_flow_2015", occ=True)

    preds: dict[str, Path] = {}
    if args.checkpoint:
        predict = _learned_flow(args.checkpoint)
        method = f"checkpoint:{args.checkpoint}"
    elif args.pred_dir:
        preds = _by_stem(Path(args.pred_dir), FLOW_PRED_SUFFIXES, "--pred-dir")
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

    acc, zero = FlowMetricAccumulator(), FlowMetricAccumulator()
    rows, per_image, skipped = [], [], []
    nan = float("nan")
    for i, name in enumerate(data.names):  # e.g. 000000_10
        try:
            if args.pred_dir:  # no need to decode the images
                gt, valid = read_kitti_flow_png(data.flow_dir / f"{name}.png")
                flow = _read_pred_flow(preds[name])
            else:
                pair = data[i]
                gt, valid = pair.flow, pair.valid
            noc = read_kitti_flow_png(data.dir / "flow_noc" / f"{name}.png")[1] if data.has_noc else None
        except FRAME_READ_ERRORS as exc:  # one corrupt file: skip the pair, report it at the end
            skipped.append((name, str(exc)))
            continue
        if not args.pred_dir:
            flow = predict(pair.image1, pair.image2)
        if flow.shape[:2] != gt.shape[:2]:
            flow = resize_flow(flow, gt.shape[:2])
        m = acc.add(flow, gt, valid, noc)
        z = zero.add(np.zeros_like(gt), gt, valid, noc)
        per_image.append({"name": name, **m, "zero_flow_epe": z["epe"], "zero_flow_fl_all": z["fl_all"]})
        rows.append([name, m["epe"], m["fl_all"], m.get("epe_noc", nan), m.get("fl_noc", nan),
                     z["epe"], z["fl_all"]])
    if not per_image:
        raise ValueError(f"no readable KITTI 2015 pair in {data.dir} ({skipped_summary(skipped)})")
    summary, zsum = acc.summary(), zero.summary()
    rows.append(["mean (EPE per image, Fl pooled)", summary["epe"], summary["fl_all"],
                 summary.get("epe_noc", nan), summary.get("fl_noc", nan), zsum["epe"], zsum["fl_all"]])
    print(f"flow: {method} on {len(data)} KITTI 2015 pairs in {data.dir}"
          + ("" if data.has_noc else " (no flow_noc: noc metrics unavailable)"))
    _print_table(["pair", "EPE", "Fl-all%", "EPE-noc", "Fl-noc%", "zero EPE", "zero Fl%"], rows)
    _report_skipped(skipped)
    _write_json(args.json, {
        "task": "flow", "method": method, "data": str(data.dir), "has_noc": data.has_noc,
        "headline": "epe = mean of per-image EPE; fl_all = pixel-pooled outlier % (KITTI devkit)",
        "summary": summary, "zero_flow": zsum, "per_image": per_image,
        "skipped_frames": skipped_records(skipped),
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
