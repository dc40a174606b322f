#!/usr/bin/env python3
"""``input_fit`` modes of a model folder: how much of the camera image the published depth covers, for
four camera shapes of the real data in ../shared/data, and the DDAD LiDAR AbsRel beside it.

Each image alone (fresh recurrent state) through the Estimator with the folder's settings plus
``input_fit=<mode>``, registered to the camera image as the node publishes it (``output_depth``).
Coverage: share of camera pixels with depth > 0. DDAD AbsRel: median-scaled, on the LiDAR points (1-80 m)
where the prediction has depth (so a mode that covers less is scored on fewer points, see the coverage),
and again on the points every mode covers (those of ``crop``), the like-for-like comparison.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_input_fit.py models/default [--modes aspect crop stretch]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from depth_pose_ros.data.source import open_source  # noqa: E402
from depth_pose_ros.eval.depth_metrics import depth_metrics  # noqa: E402
from depth_pose_ros.pipeline.factory import build_estimator  # noqa: E402
from depth_pose_ros.pipeline.result import output_depth  # noqa: E402
from depth_pose_ros.utils.paths import data_root  # noqa: E402


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def cameras(root: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray, object, object]]]:
    """name -> [(image, K, distortion, GT depth or None)]."""
    kitti = list(open_source(root / "kitti_odometry" / "sequences" / "06", frames="0:51:10"))
    indoor = list(open_source(root / "indoor_handheld", frames="0:900:150"))
    K_nyu = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1.0]])
    ddad = []
    for img in sorted((root / "ddad_mini" / "image").glob("*.jpg")):
        k = yaml.safe_load((root / "ddad_mini" / "intrinsics" / f"{img.stem}.yaml").read_text())
        K = np.array([[k["fx"], 0, k["cx"]], [0, k["fy"], k["cy"]], [0, 0, 1.0]])
        gt = cv2.imread(str(root / "ddad_mini" / "depth" / f"{img.stem}.png"), cv2.IMREAD_UNCHANGED) / 256.0
        ddad.append((_rgb(img), K, None, gt))
    return {
        "KITTI 1226x370": [(f.image, f.K, f.distortion, None) for f in kitti],
        "DDAD 1936x1216": ddad,
        "16:9 960x540": [(f.image, f.K, f.distortion, None) for f in indoor],
        "4:3 640x480": [(_rgb(root / "nyu_mini" / f"image_{i}.png"), K_nyu, None, None) for i in range(10)],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model folder (e.g. models/default)")
    parser.add_argument("--modes", nargs="+", default=["aspect", "crop", "stretch"])
    args = parser.parse_args()
    data = cameras(data_root())
    crop, _ = build_estimator(args.model, ["input_fit=crop"])
    print("| input_fit | " + " | ".join(f"coverage {n} (network size)" for n in data)
          + " | DDAD LiDAR AbsRel (its own pixels) | DDAD AbsRel (crop's pixels) |")
    print("|---" * (len(data) + 3) + "|")
    for mode in args.modes:
        est, _ = build_estimator(args.model, [f"input_fit={mode}"])
        cells, absrel, common = [], [], []
        for frames in data.values():
            cover, sizes = [], set()
            for image, K, distortion, gt in frames:
                est.reset()
                r = est.step(image, K, 0.0, distortion=distortion)
                depth, _ = output_depth(r, K, image.shape[:2])
                cover.append(float((depth > 0).mean()))
                sizes.add("x".join(str(n) for n in r.depth.shape[::-1]))
                if gt is not None:
                    crop.reset()
                    in_crop = output_depth(crop.step(image, K, 0.0), K, image.shape[:2])[0] > 0
                    for mask, out in ((depth > 0, absrel), ((depth > 0) & in_crop, common)):
                        out.append(depth_metrics(depth, np.where(mask, gt, 0.0), min_depth=1.0,
                                                 max_depth=80.0)["abs_rel"])
            cells.append(f"{100 * np.mean(cover):.1f} % ({', '.join(sorted(sizes))})")
        print(f"| {mode} | " + " | ".join(cells) + f" | {np.mean(absrel):.3f} | {np.mean(common):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
