#!/usr/bin/env python3
"""Inference cost per frame: networks only, the full ``Estimator.step``, and the Monodepth2 reference.

Rows, each measured in its own worker process (its own peak RSS, no shared caches), interleaved over
``--rounds`` and reported by the least-disturbed round:

* ``networks``  — our streaming network work per frame (encoder once + recurrent cell + depth decoder +
  forward and backward flow from cached features): ``bench_networks.py``'s worker;
* ``reference`` — a standard Monodepth2 ResNet-18 depth net + two-frame ResNet-18 pose net, timed the
  same way (same run, same threads);
* ``estimator`` — the whole ``Estimator.step`` on real KITTI 06 frames (resize, networks, numpy
  conversion, two-view geometry, accumulation). Untrained flow is ~0, which would send the geometry
  down its cheap degenerate-motion path, so the worker also times the two-view module on real flow at
  the network resolution (DIS forward + backward on the same frames, with the previous depth) and
  reports ``estimator (real-flow geometry)`` = step - its geometry time + the real-flow geometry time.

Modes: ``eager`` (fp32) and ``fast`` (BN folding, channels_last, bf16 autocast where the CPU has it).
Example (the numbers in docs/benchmarks.md):
    .venv/bin/python benchmarks/bench_inference.py --threads 2 --rounds 2
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench_networks():
    spec = importlib.util.spec_from_file_location("bench_networks", REPO / "benchmarks" / "bench_networks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _frames(n: int) -> tuple[list, object]:
    """KITTI 06 gray frames 0..n-1 and K (synthetic frames when the real data is absent)."""
    import numpy as np

    from depth_pose_ros.data.source import open_source
    from depth_pose_ros.utils.paths import data_root

    seq = data_root() / "kitti_odometry" / "sequences" / "06"
    spec = str(seq) if seq.is_dir() else f"synthetic:seed=5,length={n},height=370,width=1226"
    src = open_source(spec, frames=f"0:{n}")
    frames = [src[i] for i in range(len(src))]
    return frames, np.asarray(frames[0].K)


def estimator_worker(args: argparse.Namespace) -> dict:
    import resource

    import numpy as np
    import torch

    from depth_pose_ros.geometry.dis_flow import dis_flow
    from depth_pose_ros.geometry.two_view import TwoViewEstimator
    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.pipeline.estimator import Estimator, EstimatorConfig

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = args.size
    frames, K = _frames(args.warmup + args.iters + 1)
    cfg = EstimatorConfig(height=h, width=w, fast_path=args.mode == "fast", num_threads=args.threads)
    est = Estimator(build_model(NetConfig.from_yaml(args.config)), cfg)
    step_ms, geom_in_step = [], []
    results = []
    for i, f in enumerate(frames):
        t0 = time.perf_counter()
        r = est.step(f.image, K, f.stamp)
        if i > args.warmup:
            step_ms.append((time.perf_counter() - t0) * 1e3)
            geom_in_step.append(r.timings_ms.get("geometry", 0.0))
        results.append(r)
    # two-view geometry on real flow at the network resolution (what a trained flow would give)
    tv = TwoViewEstimator(cfg.two_view)
    geom_real = []
    for a, b in zip(results[args.warmup:-1], results[args.warmup + 1:]):
        fw, bw = dis_flow(a.image, b.image), dis_flow(b.image, a.image)
        t0 = time.perf_counter()
        res = tv.estimate(fw, b.K, flow_bw=bw, depth1=a.depth)
        geom_real.append((time.perf_counter() - t0) * 1e3)
        assert res is not None
    step = statistics.median(step_ms)
    return {
        # the network input the Estimator chose for the 1226x370 camera (input_fit aspect: the configured
        # size for KITTI's aspect, so the cost stays comparable with the networks-only rows)
        "row": "estimator", "mode": args.mode, "size": "x".join(str(n) for n in results[-1].depth.shape),
        "median_ms": step,
        "geometry_in_step_ms": statistics.median(geom_in_step),
        "geometry_real_flow_ms": statistics.median(geom_real),
        "real_flow_step_ms": step - statistics.median(geom_in_step) + statistics.median(geom_real),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "statuses": sorted({r.status for r in results}),
        "finite": bool(all(np.isfinite(r.depth).all() and np.isfinite(r.T_world_cam).all() for r in results)),
    }


def _run(cmd: list[str], threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd)}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    bn = _bench_networks()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=bn._parse_size, default=[(192, 640), (128, 416)])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--config", type=Path, default=bn.DEFAULT_CONFIG, help="model YAML (ours)")
    parser.add_argument("--json", type=Path, help="write all results to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("eager", "fast"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=bn._parse_size, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(estimator_worker(args)))
        return 0

    net_args = argparse.Namespace(threads=args.threads, iters=args.iters, warmup=args.warmup, config=args.config,
                                  compile=False)
    rows: dict[tuple, list[dict]] = {}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        for size in args.sizes:
            for mode in ("eager", "fast"):
                for model in ("ours", "reference"):
                    res = bn.run_worker(model, mode, size, net_args)
                    rows.setdefault(("networks" if model == "ours" else "reference", mode, size), []).append(res)
                cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--size", f"{size[0]}x{size[1]}",
                       "--threads", str(args.threads), "--iters", str(args.iters), "--warmup", str(args.warmup),
                       "--config", str(args.config)]
                res = _run(cmd, args.threads)
                rows.setdefault(("estimator", mode, size), []).append(res)
                print(f"round {r + 1} {size} {mode}: estimator {res['median_ms']:.1f} ms", file=sys.stderr)
    load_after = os.getloadavg()[0]

    def best(key):
        return min(rows[key], key=lambda x: x["median_ms"])

    print(f"# bench_inference: threads={args.threads} iters={args.iters} rounds={args.rounds} "
          f"config={args.config.name}; load average {load_before:.2f} -> {load_after:.2f}")
    print("| size | mode | networks ms | estimator step ms (geometry in step) | estimator, real-flow geometry ms "
          "| frames/s | reference depth+pose ms | ratio step/ref | peak RSS MiB (est / ref) |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for size in args.sizes:
        for mode in ("eager", "fast"):
            net, ref, est = (best((k, mode, size)) for k in ("networks", "reference", "estimator"))
            real = est["real_flow_step_ms"]
            print(f"| {size[0]}x{size[1]} | {mode} | {net['median_ms']:.1f} | {est['median_ms']:.1f} "
                  f"({est['geometry_in_step_ms']:.1f}) | {real:.1f} (geometry {est['geometry_real_flow_ms']:.1f}) "
                  f"| {1000.0 / real:.1f} | {ref['median_ms']:.1f} | {real / ref['median_ms']:.2f} "
                  f"| {est['peak_rss_mib']:.0f} / {ref['peak_rss_mib']:.0f} |")
            summary.append({"size": f"{size[0]}x{size[1]}", "mode": mode, "networks": net, "reference": ref,
                            "estimator": est})
    eager = [s for s in summary if s["mode"] == "eager" and s["size"] == "192x640"]
    if eager:
        s = eager[0]
        print(f"# goal 1: eager full step <= 0.8 x reference at 192x640: "
              f"{s['estimator']['real_flow_step_ms']:.1f} vs {0.8 * s['reference']['median_ms']:.1f} ms")
    fast = [s for s in summary if s["mode"] == "fast" and s["size"] == "192x640"]
    if fast:
        print(f"# goal 2: fast path >= 15 frames/s at 192x640: "
              f"{1000.0 / fast[0]['estimator']['real_flow_step_ms']:.1f} frames/s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
