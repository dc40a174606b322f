"""`depth-pose finetune SOURCE... --out models/NAME`: fine-tune a model on your own recordings.

The field workflow:

  1. record:    ros2 launch depth_pose_ros record.launch.py        (image + camera_info into a bag)
  2. fine-tune: depth-pose finetune bags/rec_20250101_120000 --out models/my_car --minutes 60
  3. launch:    ros2 launch depth_pose_ros depth_pose.launch.py checkpoint:=$PWD/models/my_car image:=...

SOURCE is anything ``depth-pose run`` reads (rosbag2 folder or .mcap/.db3, ROS 1 .bag, image folder with
camera_info.yaml / intrinsics.yaml, KITTI sequence, video, ``data:REL`` below the data root); several may be
given. Of each, the last ``--holdout`` fraction of its frames (default 0.2) is held out; the rest trains.

Training starts from ``--from`` (default the shipped ``models/default``: its ``config.yaml`` is the training
config, its ``model.safetensors`` the starting weights). The recordings (shrunk to 384 px wide in memory;
the geometry teacher -- DIS flow + two-view triangulation -- runs once at their recorded size and is cached)
are mixed with a few synthetic worlds whose exact depth keeps the model from forgetting
(``training/finetune.py``). The budget is ``--minutes`` of step time and / or ``--steps``. The run folder
(``--run-dir``, default ``runs/finetune_NAME``) holds checkpoints and the config used; running the same
command again resumes it (a larger budget continues the training).

The model written is the weight-space average ``(1 - B) x start + B x fine-tuned`` with ``--blend B``
(default 0.5, WiSE-FT): a fine-tune on one place improves that place and forgets others (measured in
docs/bench_training.md); the average keeps most of the first and gives back most of the second.
``--blend 1`` writes the fine-tuned weights as they are (they stay in the run folder either way).

Then, on the held-out tail of each recording, the starting model and the fine-tuned one are compared with
label-free measures (``depth_pose_ros/eval/label_free.py``): photometric error of the next frame warped with
the network depth and the two-view motion, AbsRel of the depth at the triangulated points, EPE of the network
flow against DIS, and the pose statuses of the streaming Estimator. ``--checks`` (default) also runs the
standard checks where their data exist (``benchmarks/evaluate_model.py OUT --quick --card``: synthetic,
KITTI 06 stereo, ddad / TUM / NYU, KITTI 2015 flow).

The output folder is a complete model: model.safetensors, config.yaml, estimator.yaml (from ``--from``),
MODEL_CARD.md (generated), finetune_report.json (strict JSON) and, with the checks, metrics.json.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CHECKS_SCRIPT = Path("benchmarks") / "evaluate_model.py"
#: Default ``--blend``: the WiSE-FT paper's middle point, fixed before any of this project's measurements.
DEFAULT_BLEND = 0.5


def _source_options(args: argparse.Namespace) -> dict[str, Any]:
    K = None
    if args.intrinsics:
        parts = args.intrinsics.split(",")
        K = [float(p) for p in parts] if len(parts) == 4 else args.intrinsics
    return {"frames": args.frames, "sequence": args.sequence, "image_topic": args.image_topic,
            "info_topic": args.info_topic, "K": K}


def checks_command(out: Path, repo_root: Path) -> list[str]:
    """The standard checks of a model folder (the model card's generated block)."""
    return [sys.executable, str(repo_root / CHECKS_SCRIPT), str(out), "--quick", "--json", str(out / "metrics.json"),
            "--card"]


def _f(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def report_table(report: dict[str, Any]) -> str:
    """Markdown table of the before/after label-free measures, one block of rows per held-out recording."""
    rows = ["| recording (held-out tail) | measure | before | after | reference |", "|---|---|---|---|---|"]
    names = (("photometric", "photometric error, next frame warped with depth + two-view pose (SSIM+L1)",
              "photometric_identity", "unwarped"),
             ("depth_abs_rel_points", "depth AbsRel at the triangulated points (median scaled)",
              "depth_abs_rel_constant", "constant depth"),
             ("flow_epe_dis", "network flow EPE vs DIS (px, fb-consistent pixels)", "flow_epe_zero", "zero flow"))
    for src in report["sources"]:
        where = f"{src['name']} frames {src['holdout_frames']}"
        b, a = src["report"].get("before", {}), src["report"].get("after", {})
        for key, title, ref, ref_name in names:
            rows.append(f"| {where} | {title} | {_f(b.get(key))} | {_f(a.get(key))} | "
                        f"{ref_name} {_f(a.get(ref, b.get(ref)))} |")
        status = lambda r: ", ".join(f"{k} {v}" for k, v in sorted((r.get("pose_status") or {}).items()))  # noqa: E731
        rows.append(f"| {where} | Estimator pose status counts | {status(b)} | {status(a)} | |")
    return "\n".join(rows)


def model_card(name: str, report: dict[str, Any], checks_note: str) -> str:
    from depth_pose_ros.eval.model_card import BEGIN, END, replace_metrics_block

    t = report["training"]
    srcs = "\n".join(f"- `{s['spec']}` ({s['name']}): frames {s['train_frames']} trained "
                     f"({s['num_train']} frames, x{t['repeat']} per epoch), frames {s['holdout_frames']} held out "
                     f"({s['num_holdout']} frames)" for s in report["sources"])
    synth = "\n".join(f"  - `{s}`" for s in t["synthetic_worlds"]) or "  - none"
    resumed = ", resumed" if t.get("resumed_from") else ""
    text = f"""# Model card: `{name}` (fine-tuned with `depth-pose finetune`)

**What it is.** `{t['from']}` fine-tuned on the recordings below (self-supervised: images only, the geometry
teacher's triangulated points and motions at the recording's size, synthetic worlds with exact depth mixed in).
Architecture and input size as the starting model (`config.yaml`, `estimator.yaml`).

## Training data
{srcs}
- synthetic worlds mixed in (exact depth, `losses.depth_supervised`):
{synth}

## Budget
- budget: {t['budget']}; steps done: {t['steps']} (this invocation: {t['wall_minutes']:.1f} min wall{resumed})
- run folder: `{t['run_dir']}` (config used: `config.yaml`, also copied here)
- command: `{t['command']}`

## Before / after on the held-out tail (label-free)
Measured by `depth_pose_ros/eval/label_free.py` on the frames each recording held out (never trained on): the
same DIS flow and two-view geometry at the recording's size score both models. Lower is better for the first
three rows. Numbers: `finetune_report.json`.

{report_table(report)}

## Standard checks
{checks_note}

{BEGIN}
{END}
"""
    return replace_metrics_block(text, "Not run yet: `benchmarks/evaluate_model.py MODEL --quick --card` fills "
                                       "this block.")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.eval.label_free import label_free_report
    from depth_pose_ros.eval.model_card import dumps
    from depth_pose_ros.nets.checkpoint import interpolate_models
    from depth_pose_ros.nets.zoo import resolve_checkpoint
    from depth_pose_ros.pipeline.estimator import aspect_input_size
    from depth_pose_ros.pipeline.factory import build_estimator, estimator_config
    from depth_pose_ros.utils.paths import REPO_ROOT
    from training.finetune import base_config, finetune_config, split_source
    from training.train import NonFiniteLossError, train

    t_start = time.time()
    if not 0.0 <= args.blend <= 1.0:
        raise ValueError(f"--blend must be in [0, 1], got {args.blend}")
    out = Path(args.out)
    name = out.name
    if not name:
        raise ValueError(f"--out {args.out!r}: name a model folder, e.g. models/my_car")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"finetune_{name}"
    from_ckpt = resolve_checkpoint(args.from_model)
    if from_ckpt is None:
        raise FileNotFoundError("no model to fine-tune: models/default is missing; give --from MODEL_FOLDER")
    from_dir = from_ckpt.parent
    if from_dir.resolve() == out.resolve():
        raise ValueError(f"--out {out} is the model being fine-tuned; choose another folder")
    base = base_config(from_dir)

    opts = _source_options(args)
    sources = [split_source(spec, args.holdout, min_train=base.data.clip_len, **opts) for spec in args.sources]
    est_cfg = estimator_config(from_ckpt)
    trained = (est_cfg.height, est_cfg.width)
    extra = [] if est_cfg.input_fit != "aspect" else \
        [list(aspect_input_size(s.image_size, trained)) for s in sources]
    budget = " and ".join(x for x in (f"{args.minutes:g} min of step time" if args.minutes else "",
                                      f"{args.steps} steps" if args.steps else "") if x)
    cfg = finetune_config(base, sources, str(from_ckpt), steps=args.steps, minutes=args.minutes,
                          synthetic_worlds=args.synthetic, extra_sizes=extra, teacher_cache=args.teacher_cache,
                          name=f"finetune_{name}", overrides=args.set)
    repeat = cfg.data.train[0].repeat
    for s in sources:
        print(f"{s.name}: {s.num_frames} frames of {s.image_size[1]}x{s.image_size[0]}: train {s.train_frames} "
              f"({s.num_train}, x{repeat} per epoch), held out {s.holdout_frames} ({s.num_holdout})", flush=True)
    print(f"fine-tuning {from_ckpt} for {budget} in {run_dir} (resumed automatically when it holds checkpoints); "
          f"+{args.synthetic} synthetic worlds; network sizes "
          f"{[[cfg.data.height, cfg.data.width]] + cfg.data.extra_sizes}", flush=True)

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "finetune.yaml").write_text(cfg.to_yaml())  # the config used (the Trainer writes config.yaml too)
    try:
        summary = train(cfg, run_dir)
    except NonFiniteLossError as exc:
        print(f"depth-pose finetune: {exc}", file=sys.stderr)
        return 3

    # ---- the model folder
    out.mkdir(parents=True, exist_ok=True)
    if args.blend < 1.0:  # the weight-space average of start and fine-tune (nets.checkpoint.interpolate_models)
        interpolate_models(from_ckpt, run_dir / "model.safetensors", args.blend, out / "model.safetensors",
                           extra={"finetune_blend": args.blend, "finetune_run": str(run_dir)})
    else:
        shutil.copy2(run_dir / "model.safetensors", out / "model.safetensors")
    (out / "config.yaml").write_text(cfg.to_yaml())
    if (from_dir / "estimator.yaml").is_file():
        shutil.copy2(from_dir / "estimator.yaml", out / "estimator.yaml")

    # ---- before / after on the held-out tails
    est_over = list(args.report_set)
    before, _ = build_estimator(str(from_ckpt), overrides=est_over)
    after, _ = build_estimator(str(out / "model.safetensors"), overrides=est_over)
    report: dict[str, Any] = {"model": str(out), "from": str(from_ckpt), "sources": []}
    for s in sources:
        src = open_source(s.spec, **{**s.options, "frames": s.holdout_frames})
        frames = list(src)
        if args.report_frames and len(frames) > args.report_frames:
            frames = frames[:args.report_frames]
        print(f"label-free report on {len(frames)} held-out frames of {s.name} ...", flush=True)
        res = label_free_report({"before": before, "after": after}, frames, max_width=args.report_width)
        report["sources"].append({**{k: v for k, v in dataclasses.asdict(s).items() if k != "extra"},
                                  "frames_scored": len(frames), "report": res})
    report["training"] = {
        "from": str(from_dir), "budget": budget, "steps": summary.step, "last_loss": summary.last_loss,
        "nan_skipped": summary.nan_skipped, "resumed_from": str(summary.resumed_from or ""),
        "run_dir": str(run_dir), "repeat": repeat, "wall_minutes": (time.time() - t_start) / 60.0,
        "synthetic_worlds": [c.spec for c in cfg.data.train if c.spec.startswith("synthetic")],
        "max_minutes": cfg.max_minutes, "max_steps": cfg.steps, "blend": args.blend,
        "command": _command_line(args),
    }

    # ---- standard checks
    checks_note = "Skipped (`--no-checks`)."
    report["checks"] = {"run": False}
    script = REPO_ROOT / CHECKS_SCRIPT
    if args.checks and not script.is_file():
        checks_note = f"Skipped: {script} is not here (an installed package without the source tree)."
    elif args.checks:
        checks_note = ("`benchmarks/evaluate_model.py` (`--quick`: no KITTI 06 pose rows) on this folder; rows whose "
                       "data are absent are left out. Baseline: the card of the starting model.")
    _write_outputs(out, name, report, checks_note, dumps)
    if args.checks and script.is_file():
        cmd = checks_command(out, REPO_ROOT)
        print("standard checks: " + " ".join(cmd), flush=True)
        proc = subprocess.run(cmd, cwd=REPO_ROOT)
        report["checks"] = {"run": True, "command": cmd, "returncode": proc.returncode,
                            "metrics": str(out / "metrics.json") if proc.returncode == 0 else None}
        (out / "finetune_report.json").write_text(dumps(report))
        if proc.returncode != 0:
            print(f"depth-pose finetune: warning: the standard checks failed (exit {proc.returncode}); the model "
                  f"folder {out} is complete otherwise", file=sys.stderr)
    print(report_table(report), flush=True)
    print(f"model: {out} (node: checkpoint:={out.resolve()})", flush=True)
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The invocation, re-assembled from its arguments (for the card)."""
    parts = ["depth-pose finetune", *args.sources, "--out", str(args.out)]
    for flag, value in (("--from", args.from_model), ("--minutes", args.minutes), ("--steps", args.steps),
                        ("--frames", args.frames), ("--sequence", args.sequence), ("--run-dir", args.run_dir)):
        if value is not None:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if args.holdout != 0.2:
        parts += ["--holdout", f"{args.holdout:g}"]
    if args.synthetic != 4:
        parts += ["--synthetic", str(args.synthetic)]
    if args.blend != DEFAULT_BLEND:
        parts += ["--blend", f"{args.blend:g}"]
    if args.teacher_cache:
        parts += ["--teacher-cache", str(args.teacher_cache)]
    if not args.checks:
        parts.append("--no-checks")
    parts += [f"--set {s}" for s in args.set]
    return " ".join(parts)


def _write_outputs(out: Path, name: str, report: dict[str, Any], checks_note: str, dumps: Any) -> None:
    (out / "finetune_report.json").write_text(dumps(report))
    (out / "MODEL_CARD.md").write_text(model_card(name, report, checks_note))


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a model on your recordings -> a model folder the node loads, with a before/after report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE",
                   help="recordings: rosbag2 folder / .mcap / .db3, .bag, image folder, KITTI sequence, video")
    p.add_argument("--out", required=True, help="output model folder, e.g. models/my_car")
    p.add_argument("--from", dest="from_model", default=None,
                   help="model folder (or shipped name) to start from (default: models/default)")
    budget = p.add_argument_group("budget (at least one)")
    budget.add_argument("--minutes", type=float, default=None, help="minutes of training step time")
    budget.add_argument("--steps", type=int, default=None, help="optimisation steps")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of each recording's frames, at its end, held out for the report (default 0.2)")
    p.add_argument("--run-dir", default=None, help="training run folder (default runs/finetune_NAME); resumed "
                                                   "when it holds checkpoints")
    p.add_argument("--blend", type=float, default=DEFAULT_BLEND,
                   help=f"the model written is (1 - B) x the starting weights + B x the fine-tuned ones (default "
                        f"{DEFAULT_BLEND:g}: keeps most of the gain on your recording and gives back most of what a "
                        "fine-tune on one place forgets elsewhere; 1: the fine-tuned weights as they are)")
    p.add_argument("--synthetic", type=int, default=4,
                   help="synthetic worlds with exact depth mixed in (0-6, default 4: streets, dense traffic, a room)")
    p.add_argument("--teacher-cache", default=None,
                   help="geometry-teacher cache folder (default: the starting config's, runs/teacher_cache)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="training config override, e.g. data.batch_size=4 (applied last)")
    src = p.add_argument_group("source options (apply to every SOURCE)")
    src.add_argument("--frames", default=None, help="use only these frames START:STOP[:STEP] (before the holdout)")
    src.add_argument("--sequence", default=None, help="KITTI odometry sequence when SOURCE is a dataset root")
    src.add_argument("--image-topic", default=None, help="bag image topic (default: the only one)")
    src.add_argument("--info-topic", default=None, help="bag camera_info topic")
    src.add_argument("--intrinsics", default=None, help="K as fx,fy,cx,cy or a YAML file (videos, folders)")
    rep = p.add_argument_group("report")
    rep.add_argument("--report-width", type=int, default=0,
                     help="evaluate the held-out frames at most this wide (default 0: the recording's size)")
    rep.add_argument("--report-frames", type=int, default=0, help="score at most this many held-out frames (0: all)")
    rep.add_argument("--report-set", action="append", default=[], metavar="KEY=VALUE",
                     help="Estimator setting for the report (as --set of depth-pose run)")
    checks = rep.add_mutually_exclusive_group()
    checks.add_argument("--checks", dest="checks", action="store_true", default=True,
                        help="run the standard checks (benchmarks/evaluate_model.py --quick --card; default)")
    checks.add_argument("--no-checks", dest="checks", action="store_false", help="skip the standard checks")
    p.set_defaults(func=run)
