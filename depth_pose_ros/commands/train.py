"""`depth-pose train --config training/configs/NAME.yaml [key=value ...]`: self-supervised training.

The config may be a path or a bare method name (``st_depth_pose``, ``monodepth2``, ...) looked up in
``training/configs``; ``key=value`` overrides change single fields (``steps=200 data.batch_size=2
losses.icp.weight=0``). Outputs go to ``--run-dir`` (default ``runs/<method>``): checkpoints,
TensorBoard events (``tb/``), ``losses.jsonl``, ``eval.jsonl``, ``config.yaml`` and the final
``model.safetensors`` (what ``depth-pose run`` / the Estimator load).

A run directory that already holds checkpoints is resumed from its newest one (``--resume PATH``
resumes another checkpoint, ``--no-resume`` refuses to touch an existing run). Multi-process
data-parallel training: ``torchrun --nproc_per_node N -m depth_pose_ros.cli train ...``.
Heavy imports (torch, the training package) happen inside :func:`run`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from depth_pose_ros.nets.checkpoint import CheckpointError
    from training.config import load_train_config
    from training.train import NonFiniteLossError, Trainer

    overrides = list(args.overrides)
    if args.steps is not None:
        overrides.append(f"steps={args.steps}")
    cfg = load_train_config(args.config, overrides)
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / cfg.method
    resume = "never" if args.no_resume else (args.resume or "auto")
    try:
        trainer = Trainer(cfg, run_dir, resume=resume)
    except CheckpointError as exc:
        print(f"depth-pose train: error: {exc}", file=sys.stderr)
        return 1
    try:
        if trainer.dist.is_main:
            where = f" (resumed from {trainer.resumed_from})" if trainer.resumed_from else ""
            print(f"training {cfg.method} for {cfg.steps} steps in {run_dir} on {trainer.device}, "
                  f"{len(trainer.dataset)} clips, world size {trainer.dist.world_size}{where}", flush=True)
        summary = trainer.run()
    except NonFiniteLossError as exc:
        print(f"depth-pose train: {exc}", file=sys.stderr)
        return 3
    finally:
        trainer.close()
    if trainer.dist.is_main:
        print(f"done: step {summary.step}, last loss {summary.last_loss:.5f}, {summary.nan_skipped} skipped steps; "
              f"model: {run_dir / 'model.safetensors'}", flush=True)
        if summary.evals:
            print(f"last eval: {summary.evals[-1]}", flush=True)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="self-supervised training (depth, flow, pose) from a method config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", "-c", required=True,
                   help="training config YAML, or a method name in training/configs (e.g. st_depth_pose)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides with dotted keys, e.g. steps=200 data.batch_size=2")
    p.add_argument("--run-dir", help="output directory (default runs/<method>)")
    p.add_argument("--steps", type=int, help="shortcut for steps=N")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", metavar="PATH", help="resume from this checkpoint (or run) directory")
    group.add_argument("--no-resume", action="store_true",
                       help="fail instead of resuming when the run directory already holds checkpoints")
    p.set_defaults(func=run)
