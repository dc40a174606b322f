"""Single-image depth metrics of Eigen et al. (2014), as used by every monocular-depth paper.

Protocol (one place, so every caller evaluates the same way):
1. the prediction is resized to the GT size (bilinear) when the shapes differ;
2. valid pixels: ``min_depth < gt < max_depth`` (sparse LiDAR GT is 0 where unknown), optionally
   inside the Garg crop (the KITTI Eigen-split convention, defined as fractions of the image size);
3. monocular predictions have no metric scale: with ``median_scale`` each image is multiplied by
   ``median(gt) / median(pred)`` over the valid pixels (the ratio is reported so its spread across
   images, a measure of scale consistency, can be summarised);
4. the prediction is clamped into ``[min_depth, max_depth]`` after scaling;
5. AbsRel, SqRel, RMSE, RMSE log and the delta < 1.25^k accuracies over the valid pixels.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np

# Garg et al. (2016) crop as fractions of (height, height, width, width) of a KITTI image.
GARG_CROP_FRACTIONS = (0.40810811, 0.99189189, 0.03594771, 0.96405229)
DEPTH_METRIC_KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")


def _as_2d(x: Any, name: str) -> np.ndarray:
    """HxW float64 from numpy / torch (HxW, 1xHxW, HxWx1, 1x1xHxW)."""
    if hasattr(x, "detach"):  # torch tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    while arr.ndim > 2 and arr.shape[0] == 1:  # drop batch / channel axes, never H or W
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a single HxW depth map, got shape {np.shape(x)}")
    return arr


def garg_crop_mask(height: int, width: int) -> np.ndarray:
    """HxW bool mask of the Garg crop (rows 40.8%..99.2%, cols 3.6%..96.4%, truncated to int)."""
    r0, r1, c0, c1 = (
        int(f * s) for f, s in zip(GARG_CROP_FRACTIONS, (height, height, width, width), strict=True)
    )
    mask = np.zeros((height, width), dtype=bool)
    mask[r0:r1, c0:c1] = True
    return mask


def depth_metrics(
    pred: Any,
    gt: Any,
    *,
    median_scale: bool = True,
    garg_crop: bool = False,
    min_depth: float = 1e-3,
    max_depth: float = 80.0,
) -> dict:
    """Eigen depth metrics of one predicted depth map (metres) against its GT (metres, 0 = unknown).

    Returns ``abs_rel``, ``sq_rel``, ``rmse``, ``rmse_log``, ``delta1..3`` (fractions in [0, 1]),
    ``scale`` (the median-scaling ratio applied, 1.0 without median scaling) and ``num_valid``.
    Raises ``ValueError`` when no GT pixel is valid or the prediction is not finite and positive on
    the valid pixels (it would silently poison the averages otherwise).
    """
    if not 0 <= min_depth < max_depth:
        raise ValueError(f"need 0 <= min_depth < max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    p = _as_2d(pred, "pred")
    g = _as_2d(gt, "gt")
    h, w = g.shape
    if p.shape != g.shape:
        p = cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR)

    valid = np.isfinite(g) & (g > min_depth) & (g < max_depth)
    if garg_crop:
        valid &= garg_crop_mask(h, w)
    if not valid.any():
        raise ValueError("gt: no valid depth pixel (check the units, min_depth/max_depth and crop)")
    p = p[valid]
    g = g[valid]
    if not np.isfinite(p).all():
        raise ValueError("pred: non-finite depth on valid GT pixels")

    scale = 1.0
    if median_scale:
        med = float(np.median(p))
        if med <= 0:
            raise ValueError("pred: median depth over valid pixels is <= 0, cannot median-scale")
        scale = float(np.median(g)) / med
        p = p * scale
    p = np.clip(p, min_depth, max_depth)
    if (p <= 0).any():  # only possible with min_depth == 0
        raise ValueError("pred: depth <= 0 on valid pixels (use min_depth > 0 to clamp)")

    ratio = np.maximum(g / p, p / g)
    diff = g - p
    log_diff = np.log(g) - np.log(p)
    return {
        "abs_rel": float(np.mean(np.abs(diff) / g)),
        "sq_rel": float(np.mean(diff**2 / g)),
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "rmse_log": float(np.sqrt(np.mean(log_diff**2))),
        "delta1": float(np.mean(ratio < 1.25)),
        "delta2": float(np.mean(ratio < 1.25**2)),
        "delta3": float(np.mean(ratio < 1.25**3)),
        "scale": scale,
        "num_valid": int(valid.sum()),
    }


class DepthMetricAccumulator:
    """Averages ``depth_metrics`` over images (each image weighs the same, as in the papers) and
    summarises the median-scaling ratios (mean, std, median: their spread shows how consistent the
    network's scale is across images)."""

    def __init__(
        self,
        *,
        median_scale: bool = True,
        garg_crop: bool = False,
        min_depth: float = 1e-3,
        max_depth: float = 80.0,
    ) -> None:
        self.options: dict[str, Any] = {
            "median_scale": median_scale,
            "garg_crop": garg_crop,
            "min_depth": min_depth,
            "max_depth": max_depth,
        }
        self.per_image: list[dict] = []

    def add(self, pred: Any, gt: Any) -> dict:
        """Evaluate one image, remember it, and return its metrics."""
        m = depth_metrics(pred, gt, **self.options)
        self.per_image.append(m)
        return m

    def __len__(self) -> int:
        return len(self.per_image)

    def summary(self) -> dict:
        """Mean of each metric over images, plus ``scale_mean``, ``scale_std``, ``scale_median`` and
        ``num_images``. Raises ``ValueError`` when no image was added."""
        if not self.per_image:
            raise ValueError("DepthMetricAccumulator: no image was added")
        out: dict = {k: float(np.mean([m[k] for m in self.per_image])) for k in DEPTH_METRIC_KEYS}
        scales = np.array([m["scale"] for m in self.per_image])
        out["scale_mean"] = float(scales.mean())
        out["scale_std"] = float(scales.std())
        out["scale_median"] = float(np.median(scales))
        out["num_images"] = len(self.per_image)
        out.update({k: v for k, v in self.options.items()})
        return out
