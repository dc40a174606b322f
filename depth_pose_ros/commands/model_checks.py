"""Every metric of a model card, per domain, from one command (``benchmarks/evaluate_model.py``, which
``depth-pose finetune`` also runs): the numbers in ``models/*/MODEL_CARD.md`` come from here.

For a model file or folder (``models/default``, ``runs/x/model.safetensors``) it runs, through the
project's own commands and library:

1. held-out synthetic sequences (seeds 1000-1002, 40 frames at 10 Hz, never trained on) at the model's
   input size: depth AbsRel (median scaled) against a constant-depth map, flow EPE against zero flow,
   rotation error of the two-view pose on the model's own flow against the identity rotation
   (:func:`evaluate_model_file`, also behind ``benchmarks/eval_heldout.py``);
2. ``depth-pose demo`` (the streaming Estimator on synthetic seed 1000): its metrics and ms per frame;
3. KITTI odometry 06 frames 0-50: ``depth-pose vo --flow network`` next to ``--flow dis`` and ``depth-pose
   run`` (pose rows; ``--quick`` skips them), and ``depth-pose eval depth --stereo`` (the Estimator's depth
   registered to the 1226x370 camera image, as the node publishes it, on frames 0, 5, ..., 50 against an
   SGBM stereo pseudo ground truth, a constant depth map on the same pixels, and the coverage);
4. single images with sensor depth (``depth_pose_ros/eval/real_depth.py``: each image alone through the
   Estimator with the model folder's settings, depth registered to the camera image): ``ddad_mini``
   (LiDAR, 0-80 m), TUM fr1 and NYU (Kinect, 0.1-10 m), each with the constant-depth baseline and the
   coverage;
5. the KITTI 2015 flow pairs: ``depth-pose eval flow --checkpoint`` next to zero flow and DIS-MEDIUM.

One torch thread, so that the numbers reproduce on any machine to the last printed digit (the two-view
RANSAC is seeded). The model card's numbers:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluate_model.py models/default \
        --json models/default/metrics.json --card

``--card`` rewrites the table between ``<!-- metrics:begin ... -->`` and ``<!-- metrics:end -->`` in the
model folder's ``MODEL_CARD.md`` (``depth_pose_ros/eval/model_card.py``); ``--from-json FILE --card``
refreshes it from a saved JSON without evaluating. The JSON is strict (NaN written as null).
Real-data rows are skipped with a note when ``$DEPTH_POSE_DATA`` (default ``../shared/data``) lacks them.

It lives in the package (the ``commands`` layer: it drives the CLI, the Estimator and the training's held-out
evaluation) so that the tests that check the shipped card import it like any other module; the benchmark
script is a thin entry point.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from depth_pose_ros.cli import main as cli_main
from depth_pose_ros.eval.model_card import card_path, dumps, jsonable, metrics_table, update_card
from depth_pose_ros.eval.real_depth import DOMAINS, domain_available, estimator_depth, evaluate_domain
from depth_pose_ros.nets.checkpoint import load_model
from depth_pose_ros.nets.zoo import resolve_checkpoint, trained_input_size
from depth_pose_ros.pipeline.config import estimator_two_view
from depth_pose_ros.utils.paths import REPO_ROOT, data_root
from training.config import SourceConfig
from training.periodic_eval import evaluate as evaluate_heldout
from training.periodic_eval import load_heldout

KEYS = ("depth_abs_rel", "depth_delta1", "depth_abs_rel_constant", "flow_epe", "flow_epe_zero", "rot_err_deg",
        "trans_dir_err_deg", "two_view_ok_ratio", "posenet_rot_err_deg", "rot_err_deg_identity")


def evaluate_model_file(path: Path, sequences: int = 3, frames: int = 40, fps: float = 10.0) -> dict:
    """Mean held-out metrics of one model file over seeds 1000..1000+sequences-1 (synthetic sequences never
    trained on), at its training size, through the training's periodic evaluation with the Estimator's
    two-view settings."""
    model, extra = load_model(path)
    h, w = trained_input_size(Path(path)) or (96, 320)
    per_seq = []
    for k in range(sequences):
        spec = f"synthetic:seed={1000 + k},length={frames},height={h},width={w},fps={fps:g}"
        data = load_heldout(SourceConfig(spec=spec), h, w, model.cfg.encoder.image_channels, frames)
        per_seq.append(evaluate_heldout(model, data, two_view=estimator_two_view()))
    out: dict[str, Any] = {key: float(np.mean([m[key] for m in per_seq if key in m]))
                           for key in KEYS if any(key in m for m in per_seq)}
    out.update(step=extra.get("step"), height=h, width=w)
    return out


def _cli(argv: list[str], json_path: Path) -> dict[str, Any]:
    """Run a ``depth-pose`` command quietly and return the JSON it wrote."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli_main(argv)
    if rc != 0:
        raise RuntimeError(f"depth-pose {' '.join(argv)} failed (exit {rc}):\n{out.getvalue()[-2000:]}")
    return json.loads(json_path.read_text())


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def provenance(model: Path, overrides: list[str], quick: bool) -> dict[str, Any]:
    """Commit, working-tree state and the Estimator settings the model runs with (input_fit included)."""
    from depth_pose_ros.pipeline.factory import estimator_config

    cfg = estimator_config(resolve_checkpoint(str(model)), overrides=overrides)
    est = {k: getattr(cfg, k) for k in ("height", "width", "input_fit", "flow_source") if hasattr(cfg, k)}
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "depth_pose_ros")
    return {"commit": _git("log", "-1", "--format=%h"), "dirty": bool(dirty), "estimator": est,
            "overrides": list(overrides), "quick": quick, "torch_threads": torch.get_num_threads()}


def evaluate(model: Path, dis_baseline: bool = True, quick: bool = False, overrides: Optional[list[str]] = None,
             log=print) -> dict[str, Any]:
    """All model-card metrics of ``model`` (a file, or a folder holding model.safetensors).

    ``quick`` skips the KITTI 06 pose rows (``vo`` with the learned flow and DIS, ``run``); ``overrides``
    (``key=value``) reach every Estimator (demo, run, stereo depth, single-image depth)."""
    overrides = list(overrides or [])
    path = resolve_checkpoint(str(model))
    if path is None:
        raise FileNotFoundError(f"no model at {model}")
    sets = [a for o in overrides for a in ("--set", o)]
    res: dict[str, Any] = {"model": str(model), "notes": [], "provenance": provenance(model, overrides, quick),
                           "timing_s": {}}
    t_all = time.perf_counter()

    def timed(key: str, fn):
        t0 = time.perf_counter()
        out = fn()
        res["timing_s"][key] = time.perf_counter() - t0
        log(f"  {key}: {res['timing_s'][key]:.1f} s")
        return out

    res["synthetic_heldout"] = timed("synthetic_heldout",
                                     lambda: evaluate_model_file(path, sequences=3, frames=40, fps=10.0))
    root = data_root()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        res["demo"] = timed("demo", lambda: _cli(["demo", "--checkpoint", str(model), "--out", str(tmp / "demo"),
                                                  "-q", *sets], tmp / "demo" / "metrics.json"))
        kitti = root / "kitti_odometry"
        if (kitti / "sequences" / "06").is_dir():
            if not quick:
                vo = ["vo", str(kitti), "--sequence", "06", "--frames", "0:51", "--threads", "1"]
                res["kitti06_vo_model"] = timed("kitti06_vo_model", lambda: _cli(
                    vo + ["--flow", "network", "--checkpoint", str(model), "--out", str(tmp / "m.txt"),
                          "--json", str(tmp / "m.json")], tmp / "m.json"))
                res["kitti06_run"] = timed("kitti06_run", lambda: _cli(
                    ["run", str(kitti / "sequences" / "06"), "--frames", "0:51", "--checkpoint", str(model),
                     "--out", str(tmp / "run"), "-q", "--depth-format", "none", "--cloud-every", "0", *sets],
                    tmp / "run" / "metrics.json"))
                if dis_baseline:
                    res["kitti06_vo_dis"] = timed("kitti06_vo_dis", lambda: _cli(
                        vo + ["--flow", "dis", "--out", str(tmp / "d.txt"), "--json", str(tmp / "d.json")],
                        tmp / "d.json"))
            # the Estimator streams 0..50, its depth registered to the camera image (1226x370) is scored
            stereo = timed("kitti06_depth_stereo", lambda: _cli(
                ["eval", "depth", "--stereo", str(kitti / "sequences" / "06"), "--frames", "0:51", "--every", "5",
                 "--checkpoint", str(model), "--json", str(tmp / "s.json"), *sets], tmp / "s.json"))
            stereo.pop("per_image", None)
            res["kitti06_depth_stereo"] = stereo
        else:
            res["notes"].append(f"KITTI odometry 06 not found under {kitti}: its rows are skipped")
        present = [k for k in DOMAINS if domain_available(k, root)]
        for k in DOMAINS:
            if k not in present:
                res["notes"].append(f"{DOMAINS[k].folder} not found under {root}: the {k} depth rows are skipped")
        if present:
            from depth_pose_ros.pipeline.factory import build_estimator

            est, _ = build_estimator(str(model), overrides, allow_untrained=False)
            depth_fn = estimator_depth(est)
            res["real_depth"] = {k: timed(f"real_depth_{k}", lambda k=k: evaluate_domain(k, depth_fn, root))
                                 for k in present}
        if (root / "kitti_flow_2015").is_dir():
            flow = timed("kitti2015_flow_model", lambda: _cli(
                ["eval", "flow", "--checkpoint", str(model), "--json", str(tmp / "f.json")], tmp / "f.json"))
            res["kitti2015_flow_model"] = {"summary": flow["summary"], "zero_flow": flow.get("zero_flow")}
            if dis_baseline:
                dis = timed("kitti2015_flow_dis", lambda: _cli(
                    ["eval", "flow", "--method", "dis", "--json", str(tmp / "g.json")], tmp / "g.json"))
                res["kitti2015_flow_dis"] = {"summary": dis["summary"]}
        else:
            res["notes"].append(f"KITTI 2015 flow not found under {root}: flow rows are skipped")
    res["wall_s"] = time.perf_counter() - t_all
    return res


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="model file or folder")
    parser.add_argument("--json", type=Path, help="write every number here (strict JSON: NaN as null)")
    parser.add_argument("--card", action="store_true",
                        help="refresh the metrics block of the model folder's MODEL_CARD.md from the results")
    parser.add_argument("--from-json", type=Path, metavar="FILE",
                        help="do not evaluate: take the results from this JSON (e.g. with --card)")
    parser.add_argument("--quick", action="store_true", help="skip the KITTI 06 pose rows (vo, run)")
    parser.add_argument("--no-dis", action="store_true", help="skip the DIS baseline rows")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="Estimator config override for every Estimator run (e.g. input_fit=crop)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.from_json:
        res = json.loads(args.from_json.read_text())
    else:
        res = jsonable(evaluate(args.model, dis_baseline=not args.no_dis, quick=args.quick, overrides=args.set))
    print(metrics_table(res))
    if res.get("wall_s") is not None:
        print(f"({res['wall_s']:.0f} s)")
    if args.json:
        args.json.write_text(dumps(res))
        print(f"wrote {args.json}")
    if args.card:
        card = card_path(args.model)
        print(f"{'updated' if update_card(card, res) else 'unchanged'} {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
