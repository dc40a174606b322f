"""Frames per second of the synthetic world: full frames (image + depth + forward/backward flow + masks).

Each (resolution, threads) case runs in a fresh subprocess so that OMP_NUM_THREADS takes effect
before numpy loads; OpenCV's thread count is set with cv2.setNumThreads. Frames are read in order,
as a training loader or the demo does (each frame is ray cast once; the next frame's depth, needed
for the occlusion mask, is reused from the cache). Wall-clock and CPU-time rates are both printed:
on a shared machine the wall clock includes time the process waited for a core.

    .venv/bin/python benchmarks/bench_synthetic.py                     # 192x640 and 128x416, 1 and 2 threads
    .venv/bin/python benchmarks/bench_synthetic.py --frames 100 --sizes 375x1242 --threads 2
    .venv/bin/python benchmarks/bench_synthetic.py --photometric   # brightness constancy along GT flow
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _worker(height: int, width: int, threads: int, frames: int, seed: int) -> dict:
    import cv2

    cv2.setNumThreads(threads)
    from depth_pose_ros.data.synthetic import SyntheticSequence

    t0 = time.perf_counter()
    seq = SyntheticSequence(seed=seed, length=frames + 1, height=height, width=width)
    build_s = time.perf_counter() - t0
    seq[0]  # warm-up: texture atlases, first view
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(1, frames + 1):
        f = seq[i]
        assert f.flow_prev is not None and f.depth is not None
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return dict(height=height, width=width, threads=threads, frames=frames, build_s=build_s,
                fps_wall=frames / wall, fps_cpu=frames / cpu, ms_per_frame_wall=1e3 * wall / frames)


def photometric(frames: int, seed: int) -> None:
    """Mean / median |I_t(x) - I_t+1(x + flow)| (gray levels) on non-occluded pixels, with and without mip-maps."""
    import cv2
    import numpy as np

    from depth_pose_ros.data.synthetic import SyntheticSequence

    print(f"brightness constancy along the GT flow, seed {seed}, {frames} pairs at 192x640, non-occluded pixels")
    for antialias in (True, False):
        seq = SyntheticSequence(seed=seed, length=frames + 1, antialias=antialias)
        errs = []
        for i in range(frames):
            f, g = seq[i], seq[i + 1]
            h, w = f.depth.shape
            uu, vv = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            warped = cv2.remap(g.image, uu + f.flow_next[..., 0], vv + f.flow_next[..., 1], cv2.INTER_LINEAR)
            e = np.abs(warped.astype(np.float32) - f.image.astype(np.float32)).mean(axis=-1)[~f.occlusion_next]
            errs.append((e.mean(), np.median(e)))
        mean, median = np.mean(errs, axis=0)
        print(f"  antialias={antialias!s:5}  mean {mean:.2f}  median {median:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="timed frames per case (default 60)")
    parser.add_argument("--sizes", default="192x640,128x416", help="HxW list (default 192x640,128x416)")
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--photometric", action="store_true",
                        help="measure brightness constancy along the GT flow instead of speed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: "H,W,T"
    args = parser.parse_args(argv)
    if args.photometric:
        photometric(min(args.frames, 20), args.seed)
        return 0
    if args.worker:
        h, w, t = (int(x) for x in args.worker.split(","))
        print(json.dumps(_worker(h, w, t, args.frames, args.seed)))
        return 0

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"synthetic world, seed {args.seed}, {args.frames} frames per case, {os.cpu_count()} CPUs, "
          f"load average {load:.2f} at start")
    print(f"{'size':>9} {'threads':>7} {'fps (wall)':>10} {'fps (cpu)':>9} {'ms/frame':>8} {'build s':>7}")
    for size in args.sizes.split(","):
        h, w = (int(x) for x in size.lower().split("x"))
        for t in (int(x) for x in args.threads.split(",")):
            env = dict(os.environ, OMP_NUM_THREADS=str(t), OPENBLAS_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
            out = subprocess.run([sys.executable, __file__, "--worker", f"{h},{w},{t}", "--frames",
                                  str(args.frames), "--seed", str(args.seed)],
                                 env=env, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"{h:>4}x{w:<4} {t:>7} {r['fps_wall']:>10.1f} {r['fps_cpu']:>9.1f} "
                  f"{r['ms_per_frame_wall']:>8.1f} {r['build_s']:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
