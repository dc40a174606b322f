#!/usr/bin/env python3
"""Depth of model folders on the real indoor frames in ../shared/data (TUM fr1 pairs, NYU mini): median-scaled
AbsRel against the sensor depth (0.1-10 m, where the model has depth), a constant depth map on the same
pixels beside it, and the correlation of log depths (ordering, free of the depth range). Each frame alone
(fresh recurrent state), through the Estimator with the folder's settings; the network depth is registered
to the camera image (TUM images are used as distorted as their depth maps).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/eval_depth_indoor.py models/default [other model folders]
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from depth_pose_ros.eval.depth_metrics import depth_metrics  # noqa: E402
from depth_pose_ros.geometry.registration import register_depth  # noqa: E402
from depth_pose_ros.pipeline.factory import build_estimator  # noqa: E402
from depth_pose_ros.utils.paths import data_root  # noqa: E402

MIN_DEPTH, MAX_DEPTH = 0.1, 10.0  # metres: the range of the Kinect-type sensors


def absrel(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """(median-scaled AbsRel, correlation of log depths) on the pixels both maps know (GT 0.1-10 m)."""
    gt = np.where(pred > 0, gt, 0.0)  # the network sees a crop of the 4:3 image: score where it has depth
    ok = (gt > MIN_DEPTH) & (gt < MAX_DEPTH)
    corr = np.corrcoef(np.log(pred[ok]), np.log(gt[ok]))[0, 1] if np.ptp(pred[ok]) > 0 else 0.0
    return depth_metrics(pred, gt, min_depth=MIN_DEPTH, max_depth=MAX_DEPTH)["abs_rel"], float(corr)


root = data_root()
tum = root / "tum_fr1_xyz_pairs"
K_tum = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1.0]])
items = [(tum / "case_1" / "img_prev.png", tum / "case_1" / "dep_prev.png", 5000.0, K_tum, "tum"),
         (tum / "case_1" / "img_curr.png", tum / "case_1" / "dep_curr.png", 5000.0, K_tum, "tum"),
         (tum / "case_2" / "img_prev.png", tum / "case_2" / "dep_prev.png", 5000.0, K_tum, "tum")]
K_nyu = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1.0]])
for i in range(10):
    items.append((root / "nyu_mini" / f"image_{i}.png", root / "nyu_mini" / f"depth_{i}.png", 1000.0, K_nyu, "nyu"))
print("| model | data | depth AbsRel (median scaled) | constant depth | corr(log depth) |")
print("|---|---|---|---|---|")
for model in sys.argv[1:]:
    est, _ = build_estimator(model, [])
    res: dict[str, list] = {"tum": [], "nyu": []}
    const: dict[str, list] = {"tum": [], "nyu": []}
    for img_p, dep_p, scale, K, ds in items:
        img = cv2.cvtColor(cv2.imread(str(img_p)), cv2.COLOR_BGR2RGB)
        gt = cv2.imread(str(dep_p), cv2.IMREAD_UNCHANGED).astype(np.float64) / scale
        est.reset()
        r = est.step(img, K, 0.0)
        pred = register_depth(r.depth, r.K, K, gt.shape)
        res[ds].append(absrel(pred, gt))
        const[ds].append(absrel(np.where(pred > 0, 1.0, 0.0), gt)[0])
    for ds, n in (("tum", 3), ("nyu", 10)):
        a, c = np.mean(res[ds], axis=0)
        print(f"| {model} | {ds.upper()} ({n} frames) | {a:.3f} | {np.mean(const[ds]):.3f} | {c:.3f} |")
