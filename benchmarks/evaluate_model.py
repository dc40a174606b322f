#!/usr/bin/env python3
"""Every metric of a model card, from one command: the numbers in ``models/*/MODEL_CARD.md`` come from here.

For a model file or folder (``models/default``, ``runs/x/model.safetensors``) it runs, through the
project's own commands:

1. held-out synthetic sequences (seeds 1000-1002, 40 frames at 10 Hz, never trained on) at the model's
   input size: depth AbsRel (median scaled) against a constant-depth map, flow EPE against zero flow,
   rotation error of the two-view pose on the model's own flow against the identity rotation
   (``benchmarks/eval_heldout.py``);
2. ``depth-pose demo`` (the streaming Estimator on synthetic seed 1000): its metrics and ms per frame;
3. KITTI odometry 06 frames 0-50: ``depth-pose vo --flow network`` (the network's flow, resized to the
   1226x370 images, GT step lengths) next to ``depth-pose vo --flow dis`` (the classical baseline), and
   ``depth-pose run`` (the streaming Estimator with the model folder's settings, scale from its depth),
   and ``depth-pose eval depth --stereo`` (the Estimator's depth on frames 0, 5, ..., 50 against an SGBM
   stereo pseudo ground truth, with a constant depth map scored on the same pixels);
4. the KITTI 2015 flow pairs: ``depth-pose eval flow --checkpoint`` next to DIS-MEDIUM.

One torch thread, so that the numbers reproduce on any machine to the last printed digit (the two-view
RANSAC is seeded). Example (the model card's numbers):

    .venv/bin/python benchmarks/evaluate_model.py models/default --json models/default/metrics.json

Real-data rows are skipped with a note when ``$DEPTH_POSE_DATA`` (default ``../shared/data``) lacks them.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from depth_pose_ros.cli import main as cli_main
from depth_pose_ros.nets.zoo import resolve_checkpoint
from depth_pose_ros.utils.paths import data_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_heldout import evaluate_model_file  # noqa: E402  (a sibling script)


def _cli(argv: list[str], json_path: Path) -> dict[str, Any]:
    """Run a ``depth-pose`` command quietly and return the JSON it wrote."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli_main(argv)
    if rc != 0:
        raise RuntimeError(f"depth-pose {' '.join(argv)} failed (exit {rc}):\n{out.getvalue()[-2000:]}")
    return json.loads(json_path.read_text())


def evaluate(model: Path, dis_baseline: bool = True) -> dict[str, Any]:
    """All model-card metrics of ``model`` (a file, or a folder holding model.safetensors)."""
    path = resolve_checkpoint(str(model))
    if path is None:
        raise FileNotFoundError(f"no model at {model}")
    res: dict[str, Any] = {"model": str(model), "notes": []}
    t0 = time.perf_counter()
    res["synthetic_heldout"] = evaluate_model_file(path, sequences=3, frames=40, fps=10.0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res["demo"] = _cli(["demo", "--checkpoint", str(model), "--out", str(tmp / "demo"), "-q"],
                           tmp / "demo" / "metrics.json")
        kitti = data_root() / "kitti_odometry"
        if (kitti / "sequences" / "06").is_dir():
            vo = ["vo", str(kitti), "--sequence", "06", "--frames", "0:51", "--threads", "1"]
            res["kitti06_vo_model"] = _cli(vo + ["--flow", "network", "--checkpoint", str(model),
                                                 "--out", str(tmp / "m.txt"), "--json", str(tmp / "m.json")],
                                           tmp / "m.json")
            res["kitti06_run"] = _cli(["run", str(kitti / "sequences" / "06"), "--frames", "0:51", "--checkpoint",
                                       str(model), "--out", str(tmp / "run"), "-q", "--depth-format", "none",
                                       "--cloud-every", "0"], tmp / "run" / "metrics.json")
            res["kitti06_depth_stereo"] = _cli(["eval", "depth", "--stereo", str(kitti / "sequences" / "06"),
                                                "--frames", "0:51", "--every", "5", "--checkpoint", str(model),
                                                "--json", str(tmp / "s.json")], tmp / "s.json")
            if dis_baseline:
                res["kitti06_vo_dis"] = _cli(vo + ["--flow", "dis", "--out", str(tmp / "d.txt"),
                                                   "--json", str(tmp / "d.json")], tmp / "d.json")
        else:
            res["notes"].append(f"KITTI odometry 06 not found under {kitti}: VO rows skipped")
        if (data_root() / "kitti_flow_2015").is_dir():
            res["kitti2015_flow_model"] = _cli(["eval", "flow", "--checkpoint", str(model),
                                                "--json", str(tmp / "f.json")], tmp / "f.json")["summary"]
            if dis_baseline:
                res["kitti2015_flow_dis"] = _cli(["eval", "flow", "--method", "dis",
                                                  "--json", str(tmp / "g.json")], tmp / "g.json")["summary"]
        else:
            res["notes"].append(f"KITTI 2015 flow not found under {data_root()}: flow rows skipped")
    res["wall_s"] = time.perf_counter() - t0
    return res


def table(res: dict[str, Any]) -> str:
    """Markdown rows: metric | value | baseline."""
    rows = []
    h = res["synthetic_heldout"]
    rows.append(("synthetic held-out depth AbsRel (median scaled)", f"{h['depth_abs_rel']:.3f}",
                 f"constant depth {h['depth_abs_rel_constant']:.3f}"))
    rows.append(("synthetic held-out depth delta<1.25", f"{h['depth_delta1']:.3f}", ""))
    if "flow_epe" in h:
        rows.append(("synthetic held-out flow EPE (px)", f"{h['flow_epe']:.2f}", f"zero flow {h['flow_epe_zero']:.2f}"))
    rot = h.get("rot_err_deg", h.get("posenet_rot_err_deg"))
    rows.append(("synthetic held-out rotation error (deg/frame)", f"{rot:.3f}",
                 f"identity {h['rot_err_deg_identity']:.3f}"))
    d = res["demo"]
    pose = d.get("pose") or {}
    rows.append(("demo (Estimator, synthetic seed 1000): rot err deg/frame",
                 f"{pose.get('rot_err_deg_per_frame', float('nan')):.3f}", ""))
    if d.get("depth"):
        rows.append(("demo: depth AbsRel", f"{d['depth']['abs_rel']:.3f}", ""))
    rows.append(("demo: ms per frame (Estimator.step, 1 thread)", f"{d.get('ms_per_frame', float('nan')):.1f}", ""))
    if "kitti06_vo_model" in res:
        m, b = res["kitti06_vo_model"], res.get("kitti06_vo_dis", {})
        for key, name in (("rot_err_deg_per_frame", "rotation error deg/frame"),
                          ("tdir_err_deg_median", "t-dir error median deg"), ("ate_sim3_m", "ATE Sim(3) m")):
            base = f"DIS-MEDIUM {b[key]:.3f}" if key in b and b[key] is not None else ""
            val = m.get(key)
            rows.append((f"KITTI 06 0-50 VO, learned flow: {name}", "-" if val is None else f"{val:.3f}", base))
    if "kitti06_run" in res:
        p = res["kitti06_run"].get("pose") or {}
        rows.append(("KITTI 06 0-50 `depth-pose run` (Estimator, model settings): rot err deg/frame",
                     f"{p.get('rot_err_deg_per_frame', float('nan')):.3f}", ""))
        rows.append(("KITTI 06 0-50 `depth-pose run`: t-dir error median deg",
                     f"{p.get('tdir_err_deg_median', float('nan')):.2f}", ""))
        rows.append(("KITTI 06 0-50 `depth-pose run`: ATE Sim(3) m", f"{p.get('ate_sim3_m', float('nan')):.3f}",
                     f"path {p.get('path_length_m', float('nan')):.1f} m"))
    if "kitti06_depth_stereo" in res:
        m, c = res["kitti06_depth_stereo"]["summary"], res["kitti06_depth_stereo"]["constant"]
        where = "KITTI 06 frames 0,5..50 depth vs stereo pseudo GT (SGBM, 1-60 m, below top 35 %)"
        rows.append((f"{where}: AbsRel (median scaled)", f"{m['abs_rel']:.3f}", f"constant depth {c['abs_rel']:.3f}"))
        rows.append((f"{where}: delta<1.25", f"{m['delta1']:.3f}", f"constant depth {c['delta1']:.3f}"))
    if "kitti2015_flow_model" in res:
        m, b = res["kitti2015_flow_model"], res.get("kitti2015_flow_dis", {})
        rows.append(("KITTI 2015 pairs flow EPE (px)", f"{m['epe']:.2f}", f"DIS-MEDIUM {b['epe']:.2f}" if b else ""))
        rows.append(("KITTI 2015 pairs Fl-all (%)", f"{m['fl_all']:.2f}", f"DIS-MEDIUM {b['fl_all']:.2f}" if b else ""))
    lines = ["| metric | value | baseline |", "|---|---|---|"] + [f"| {a} | {v} | {c} |" for a, v, c in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="model file or folder")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--no-dis", action="store_true", help="skip the DIS baseline rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    res = evaluate(args.model, dis_baseline=not args.no_dis)
    print(table(res))
    for note in res["notes"]:
        print(f"note: {note}")
    print(f"({res['wall_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
