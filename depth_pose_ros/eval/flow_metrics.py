"""Optical-flow metrics of the KITTI 2015 benchmark: end-point error and the Fl outlier rate.

* EPE: Euclidean distance between predicted and GT flow vectors (px), over the valid GT pixels.
* Fl: fraction of valid pixels that are outliers, an outlier having EPE > 3 px AND
  EPE > 5% of the GT flow magnitude (the KITTI 2015 definition), in percent.
* "all" uses every valid pixel of ``flow_occ`` (occluded pixels included); "noc" only the pixels
  of ``flow_noc`` (non-occluded), when that mask is available.

Averaging over a data set, both ways are kept because papers mix them: the KITTI devkit pools
pixels (outliers summed over all images / valid pixels summed over all images), while EPE is
usually the mean of per-image EPEs. Headline: ``epe`` = per-image mean, ``fl_all`` = pixel-pooled.
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

OUTLIER_ABS_PX = 3.0
OUTLIER_REL = 0.05


def _as_flow(x: Any, name: str) -> np.ndarray:
    """HxWx2 float64 from numpy HxWx2 or torch 2xHxW / 1x2xHxW (the project's torch layout)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
        x = np.squeeze(x, axis=0) if x.ndim == 4 else x
        if x.ndim == 3 and x.shape[0] == 2:
            x = np.moveaxis(x, 0, -1)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{name}: expected HxWx2 flow (dx, dy), got shape {arr.shape}")
    return arr


def resize_flow(flow: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize HxWx2 flow to ``size_hw`` and rescale the vectors by the size ratios
    (a displacement of 1 px at half width is 2 px at full width)."""
    f = np.asarray(flow, dtype=np.float32)
    h, w = f.shape[:2]
    out = cv2.resize(f, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_LINEAR)
    out[..., 0] *= size_hw[1] / w
    out[..., 1] *= size_hw[0] / h
    return out


def _region_stats(epe: np.ndarray, outlier: np.ndarray, mask: np.ndarray) -> tuple[float, float, int, int]:
    """(mean EPE, Fl %, #valid, #outliers) inside ``mask``; NaN metrics when the mask is empty."""
    n = int(mask.sum())
    if n == 0:
        return float("nan"), float("nan"), 0, 0
    k = int(outlier[mask].sum())
    return float(epe[mask].mean()), 100.0 * k / n, n, k


def flow_metrics(pred: Any, gt: Any, valid: Any, noc_valid: Optional[Any] = None) -> dict:
    """Metrics of one HxWx2 predicted flow against the GT flow and its HxW valid mask.

    Returns ``epe``, ``fl_all`` (%), ``num_valid``, ``num_outliers``; with ``noc_valid`` also
    ``epe_noc``, ``fl_noc``, ``num_valid_noc``, ``num_outliers_noc``. Shapes must match (resize a
    low-resolution prediction with ``resize_flow`` first).
    """
    p = _as_flow(pred, "pred")
    g = _as_flow(gt, "gt")
    v = np.asarray(valid).astype(bool)
    if p.shape != g.shape or v.shape != g.shape[:2]:
        raise ValueError(f"shape mismatch: pred {p.shape}, gt {g.shape}, valid {v.shape}")
    if not np.isfinite(p[v]).all():
        raise ValueError("pred: non-finite flow on valid GT pixels")
    epe = np.linalg.norm(p - g, axis=2)
    mag = np.linalg.norm(g, axis=2)
    outlier = (epe > OUTLIER_ABS_PX) & (epe > OUTLIER_REL * mag)

    e, fl, n, k = _region_stats(epe, outlier, v)
    out = {"epe": e, "fl_all": fl, "num_valid": n, "num_outliers": k}
    if noc_valid is not None:
        nv = np.asarray(noc_valid).astype(bool)
        if nv.shape != v.shape:
            raise ValueError(f"noc_valid: shape {nv.shape} differs from valid {v.shape}")
        e, fl, n, k = _region_stats(epe, outlier, nv)
        out.update({"epe_noc": e, "fl_noc": fl, "num_valid_noc": n, "num_outliers_noc": k})
    return out


def zero_flow_metrics(gt: Any, valid: Any, noc_valid: Optional[Any] = None) -> dict:
    """``flow_metrics`` of the zero-flow prediction: the floor any method must beat."""
    g = _as_flow(gt, "gt")
    return flow_metrics(np.zeros_like(g), g, valid, noc_valid)


class FlowMetricAccumulator:
    """Accumulates ``flow_metrics`` over image pairs, keeping both averaging conventions.

    ``summary()`` keys: ``epe`` (mean of per-image EPE, headline), ``epe_pooled`` (per pixel over the
    data set), ``fl_all`` (pixel-pooled, KITTI devkit, headline), ``fl_all_per_image`` (mean of
    per-image Fl), the same four with ``_noc`` when every pair had a noc mask, and ``num_images``.
    """

    def __init__(self) -> None:
        self.per_image: list[dict] = []

    def add(self, pred: Any, gt: Any, valid: Any, noc_valid: Optional[Any] = None) -> dict:
        m = flow_metrics(pred, gt, valid, noc_valid)
        self.per_image.append(m)
        return m

    def __len__(self) -> int:
        return len(self.per_image)

    def _pooled(self, suffix: str) -> dict:
        """Both averages over the images that have valid pixels of this region (suffix "" or "_noc")."""
        fl_key = "fl_noc" if suffix else "fl_all"
        imgs = [m for m in self.per_image if m[f"num_valid{suffix}"] > 0]
        n = sum(m[f"num_valid{suffix}"] for m in imgs)
        if n == 0:
            nan = float("nan")
            keys = (f"epe{suffix}", f"epe{suffix}_pooled", fl_key, f"{fl_key}_per_image")
            return {**dict.fromkeys(keys, nan), f"num_valid{suffix}": 0}
        return {
            f"epe{suffix}": float(np.mean([m[f"epe{suffix}"] for m in imgs])),
            f"epe{suffix}_pooled": sum(m[f"epe{suffix}"] * m[f"num_valid{suffix}"] for m in imgs) / n,
            fl_key: 100.0 * sum(m[f"num_outliers{suffix}"] for m in imgs) / n,
            f"{fl_key}_per_image": float(np.mean([m[fl_key] for m in imgs])),
            f"num_valid{suffix}": int(n),
        }

    def summary(self) -> dict:
        if not self.per_image:
            raise ValueError("FlowMetricAccumulator: no image pair was added")
        out = self._pooled("")
        if all("num_valid_noc" in m for m in self.per_image):
            out.update(self._pooled("_noc"))
        out["num_images"] = len(self.per_image)
        return out
