"""Single-image depth on the real datasets with sensor depth: ``ddad_mini`` (LiDAR), TUM fr1 and NYU (Kinect).

One protocol for every domain (the model card's depth rows and ``test/eval/test_eval_real_depth.py``):

1. each image alone (fresh recurrent state), through a *depth function* ``(image, K) -> depth`` that
   returns the depth registered to the camera image (same size, same K; 0 = unknown). For a model this
   is :func:`estimator_depth`: ``Estimator.reset()`` + ``Estimator.step`` with the model folder's settings,
   then ``geometry.registration.register_depth`` to the camera size -- what the node publishes;
2. valid ground truth: ``min_depth < gt < max_depth`` (the domain's sensor range);
3. **coverage**: the fraction of valid ground-truth pixels where the prediction has depth (> 0); a
   network that sees only a crop of the image leaves the rest unknown, and those pixels are not scored;
4. on the covered pixels: ``eval.depth_metrics`` (median-scaled AbsRel etc.), a **constant depth map**
   on the same pixels (median scaling makes it ``median(gt)``) and the correlation of log depths (the
   depth *ordering*, free of the range);
5. means over images (each image weighs the same), as ``DepthMetricAccumulator`` does.

This module imports no network code: the caller passes the Estimator (or any depth function). TUM images
are used as distorted as their depth maps (both come from the same uncorrected sensor images).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros.eval.depth_metrics import DepthMetricAccumulator, depth_metrics
from depth_pose_ros.geometry.registration import register_depth

__all__ = [
    "DOMAINS",
    "DepthDomain",
    "DepthImage",
    "constant_depth_abs_rel",
    "ddad_images",
    "domain_available",
    "estimator_depth",
    "evaluate_domain",
    "nyu_images",
    "score_domain",
    "score_image",
    "tum_images",
]

#: (image HxWx3 RGB uint8, 3x3 K) -> depth of that image (HxW metres, 0 = unknown)
DepthFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass
class DepthImage:
    """One camera image with its sensor depth (metres, 0 = unknown) and intrinsics."""

    name: str
    image: np.ndarray
    K: np.ndarray
    depth: np.ndarray


# ---- the datasets -----------------------------------------------------------------------------------
K_NYU = np.array([[518.86, 0.0, 325.58], [0.0, 519.47, 253.74], [0.0, 0.0, 1.0]])  # NYU Depth v2 Kinect
NYU_DEPTH_SCALE = 1000.0  # millimetres
NYU_FRAMES = 10


def tum_images(folder: Path) -> list[DepthImage]:
    """The TUM fr1_xyz pairs frames whose depth is their own: case_1 prev + curr, case_2 prev
    (``case_2/dep_curr.png`` is a copy of case_1's, a known defect of the shared data)."""
    from depth_pose_ros.data.source import read_depth_png, read_image
    from depth_pose_ros.data.tum import TUM_DEPTH_SCALE, TUM_INTRINSICS

    K = np.array([[TUM_INTRINSICS["freiburg1"][0], 0.0, TUM_INTRINSICS["freiburg1"][2]],
                  [0.0, TUM_INTRINSICS["freiburg1"][1], TUM_INTRINSICS["freiburg1"][3]], [0.0, 0.0, 1.0]])
    out = []
    for case, which in (("case_1", "prev"), ("case_1", "curr"), ("case_2", "prev")):
        out.append(DepthImage(f"{case}/{which}", read_image(folder / case / f"img_{which}.png"), K,
                              read_depth_png(folder / case / f"dep_{which}.png", TUM_DEPTH_SCALE)))
    return out


def nyu_images(folder: Path) -> list[DepthImage]:
    """The 10 NYU Depth v2 frames (``image_i.png``, ``depth_i.png`` in millimetres)."""
    from depth_pose_ros.data.source import read_depth_png, read_image

    return [DepthImage(f"{i}", read_image(folder / f"image_{i}.png"), K_NYU,
                       read_depth_png(folder / f"depth_{i}.png", NYU_DEPTH_SCALE)) for i in range(NYU_FRAMES)]


def ddad_images(folder: Path) -> list[DepthImage]:
    """The 27 ``ddad_mini`` images with their projected LiDAR sweeps (``data/ddad_mini.py``)."""
    from depth_pose_ros.data.ddad_mini import read_ddad_mini

    return [DepthImage(s.name, s.image, s.K, s.depth) for s in read_ddad_mini(folder)]


@dataclass(frozen=True)
class DepthDomain:
    """A real dataset scored by :func:`evaluate_domain`: its folder under the data root, sensor range and reader."""

    key: str
    title: str
    folder: str
    min_depth: float
    max_depth: float
    read: Callable[[Path], list[DepthImage]]
    probe: str  # a file that must exist for the domain to count as present


DOMAINS: dict[str, DepthDomain] = {
    "ddad_mini": DepthDomain("ddad_mini", "ddad_mini 27 images (6 cameras), LiDAR 0-80 m", "ddad_mini",
                             1e-3, 80.0, ddad_images, "image"),
    "tum": DepthDomain("tum", "TUM fr1_xyz 3 frames, Kinect 0.1-10 m", "tum_fr1_xyz_pairs", 0.1, 10.0,
                       tum_images, "case_1/dep_prev.png"),
    "nyu": DepthDomain("nyu", "NYU Depth v2 10 frames, Kinect 0.1-10 m", "nyu_mini", 0.1, 10.0,
                       nyu_images, "depth_9.png"),
}


def domain_available(key: str, root: Path) -> bool:
    d = DOMAINS[key]
    return (Path(root) / d.folder / d.probe).exists()


# ---- scoring -----------------------------------------------------------------------------------------
def estimator_depth(estimator: Any) -> DepthFn:
    """The depth function of an Estimator: fresh state per image, depth registered to the camera image."""
    def depth(image: np.ndarray, K: np.ndarray) -> np.ndarray:
        estimator.reset()
        result = estimator.step(image, K, 0.0)
        return register_depth(result.depth, result.K, K, image.shape[:2])

    return depth


def constant_depth_abs_rel(gt: np.ndarray, mask: np.ndarray) -> float:
    """AbsRel of the best constant for median scaling on ``mask``: ``mean(|gt - median(gt)| / gt)``."""
    g = np.asarray(gt, dtype=np.float64)[mask]
    return float(np.mean(np.abs(g - np.median(g)) / g))


def score_image(pred: np.ndarray, gt: np.ndarray, min_depth: float, max_depth: float) -> dict[str, Any]:
    """Metrics of one camera-size prediction (0 = unknown) against its sensor depth.

    Returns ``coverage`` (covered / valid GT pixels), ``num_gt`` (valid GT pixels), and, when at least one
    pixel is covered, the ``depth_metrics`` of the prediction, ``constant`` (those of a constant map on the
    same pixels) and ``corr_log`` (correlation of log depths; 0 for a flat prediction).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction {pred.shape} is not registered to the ground truth {gt.shape}")
    valid = np.isfinite(gt) & (gt > min_depth) & (gt < max_depth)
    known = valid & np.isfinite(pred) & (pred > 0)
    n_gt, n_known = int(valid.sum()), int(known.sum())
    out: dict[str, Any] = {"coverage": n_known / n_gt if n_gt else 0.0, "num_gt": n_gt}
    if n_known == 0:
        return out
    gt_known = np.where(known, gt, 0.0)
    opts: dict[str, Any] = {"median_scale": True, "min_depth": min_depth, "max_depth": max_depth}
    out.update(depth_metrics(np.where(known, pred, 0.0), gt_known, **opts))
    out["constant"] = depth_metrics(known.astype(np.float64), gt_known, **opts)
    p, g = np.log(pred[known]), np.log(gt[known])
    out["corr_log"] = float(np.corrcoef(p, g)[0, 1]) if n_known > 1 and np.ptp(p) > 0 and np.ptp(g) > 0 else 0.0
    return out


def score_domain(images: Sequence[DepthImage], depth_fn: DepthFn, min_depth: float,
                 max_depth: float) -> dict[str, Any]:
    """Means over ``images`` of :func:`score_image` (images without a covered pixel count in the coverage
    only and are listed under ``uncovered``)."""
    opts: dict[str, Any] = {"median_scale": True, "min_depth": min_depth, "max_depth": max_depth}
    acc, const = DepthMetricAccumulator(**opts), DepthMetricAccumulator(**opts)
    per_image, uncovered, corr = [], [], []
    for item in images:
        pred = depth_fn(item.image, item.K)
        m = score_image(pred, item.depth, min_depth, max_depth)
        per_image.append({"name": item.name, **m})
        if "abs_rel" not in m:
            uncovered.append(item.name)
            continue
        acc.per_image.append({k: v for k, v in m.items() if k not in ("constant", "corr_log", "coverage", "num_gt")})
        const.per_image.append(m["constant"])
        corr.append(m["corr_log"])
    if not per_image:
        raise ValueError("score_domain: no image given")
    out: dict[str, Any] = {
        "num_images": len(per_image),
        "coverage_mean": float(np.mean([m["coverage"] for m in per_image])),
        "coverage_pixels": float(sum(m["coverage"] * m["num_gt"] for m in per_image)
                                 / max(1, sum(m["num_gt"] for m in per_image))),
        "uncovered": uncovered,
        "min_depth": min_depth,
        "max_depth": max_depth,
        "per_image": per_image,
    }
    if len(acc):
        out["summary"], out["constant"] = acc.summary(), const.summary()
        out["corr_log_mean"] = float(np.mean(corr))
    return out


def evaluate_domain(key: str, depth_fn: DepthFn, root: Path) -> Optional[dict[str, Any]]:
    """Score ``depth_fn`` on domain ``key`` under the data ``root``; None when its folder is absent."""
    d = DOMAINS[key]
    if not domain_available(key, root):
        return None
    res = score_domain(d.read(Path(root) / d.folder), depth_fn, d.min_depth, d.max_depth)
    return {"domain": key, "title": d.title, "data": str(Path(root) / d.folder), **res}
