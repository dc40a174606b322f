#!/usr/bin/env python3
"""Depth of model folders on the real single images with sensor depth, side by side: TUM fr1 pairs and NYU mini
(indoor, 0.1-10 m) and ddad_mini (outdoor LiDAR, 0-80 m). A thin wrapper: the protocol (each image alone through
the Estimator with the folder's settings, depth registered to the camera image, median-scaled AbsRel on the
pixels the model covers, a constant depth map on the same pixels, coverage, log-depth correlation) is
``depth_pose_ros/eval/real_depth.py``, which ``benchmarks/evaluate_model.py`` also uses for the model card.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_depth_indoor.py models/default [other model folders]
"""
from __future__ import annotations

import argparse

import torch

from depth_pose_ros.eval.real_depth import DOMAINS, domain_available, estimator_depth, evaluate_domain
from depth_pose_ros.pipeline.factory import build_estimator
from depth_pose_ros.utils.paths import data_root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model folders or files")
    parser.add_argument("--domains", default="tum,nyu,ddad_mini", help="comma-separated, of " + ",".join(DOMAINS))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Estimator config override")
    args = parser.parse_args()
    torch.set_num_threads(1)
    root = data_root()
    keys = [k.strip() for k in args.domains.split(",") if k.strip()]
    for k in keys:
        if k not in DOMAINS:
            parser.error(f"unknown domain {k!r} (known: {', '.join(DOMAINS)})")
        if not domain_available(k, root):
            print(f"note: {DOMAINS[k].folder} not found under {root}: {k} skipped")
    keys = [k for k in keys if domain_available(k, root)]
    print("| model | data | depth AbsRel (median scaled) | constant depth | coverage | corr(log depth) |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        est, _ = build_estimator(model, args.set, allow_untrained=False)
        fn = estimator_depth(est)
        for k in keys:
            r = evaluate_domain(k, fn, root)
            s, c = r.get("summary", {}), r.get("constant", {})
            print(f"| {model} | {r['title']} | {s.get('abs_rel', float('nan')):.3f} | "
                  f"{c.get('abs_rel', float('nan')):.3f} | {r['coverage_mean']:.3f} | "
                  f"{r.get('corr_log_mean', float('nan')):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
