"""`depth-pose synth OUT_DIR`: render a synthetic driving sequence to disk in the KITTI-odometry layout.

Writes images, calibration, stamps, camera-to-world poses (frame 0 = identity), 16-bit depth in
millimetres, KITTI flow PNGs (forward flow), occlusion and moving-object masks; the layout is
documented in ``depth_pose_ros.data.synthetic``. The result opens like any KITTI odometry sequence,
e.g. ``depth-pose vo OUT_DIR/sequences/00``.

Example::

    depth-pose synth out/synth --seed 0 --length 100 --height 192 --width 640
"""
from __future__ import annotations

import argparse
import time


def run(args: argparse.Namespace) -> int:
    from depth_pose_ros.data.synthetic import SyntheticSequence, write_kitti_layout

    if args.threads > 0:
        import cv2

        cv2.setNumThreads(args.threads)
    seq = SyntheticSequence(
        seed=args.seed, length=args.length, height=args.height, width=args.width, gray=args.gray,
        fps=args.fps, num_moving=args.num_moving, stereo_baseline=args.stereo_baseline,
        lighting_noise=args.lighting_noise,
    )
    start = time.perf_counter()
    seq_dir = write_kitti_layout(seq, args.out_dir, sequence=args.sequence, progress=not args.quiet)
    elapsed = time.perf_counter() - start
    print(f"wrote {len(seq)} frames ({seq.height}x{seq.width}, seed {seq.seed}) to {seq_dir} "
          f"in {elapsed:.1f} s ({len(seq) / max(elapsed, 1e-9):.1f} frames/s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "synth", help="render a deterministic synthetic driving sequence (KITTI odometry layout + GT)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", metavar="OUT_DIR", help="dataset root to write (sequences/, poses/)")
    parser.add_argument("--seed", type=int, default=0, help="scene and trajectory seed (default 0)")
    parser.add_argument("--length", type=int, default=100, help="number of frames (default 100)")
    parser.add_argument("--height", type=int, default=192, help="image height in pixels (default 192)")
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--gray", action="store_true", help="grayscale images (image_0) instead of colour")
    parser.add_argument("--sequence", default="00", help="sequence folder name (default 00)")
    parser.add_argument("--fps", type=float, default=10.0, help="frame rate in Hz (default 10)")
    parser.add_argument("--num-moving", type=int, default=3, help="independently moving cars (default 3)")
    parser.add_argument("--stereo-baseline", type=float, default=None,
                        help="also render the right image of a stereo pair with this baseline (metres)")
    parser.add_argument("--lighting-noise", type=float, default=0.0,
                        help="std of a per-frame global brightness gain (default 0: off)")
    parser.add_argument("--threads", type=int, default=0, help="OpenCV threads (0: library default)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
