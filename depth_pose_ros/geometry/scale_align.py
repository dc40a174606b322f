"""Robust scale alignment between a dense depth map and sparse (triangulated) depths.

Monocular two-view geometry gives depth only up to the (unit) translation scale, while a depth
network gives dense depth in its own units. One scalar links them. It is estimated in the log
domain (``log target - log source``), because depth errors are multiplicative: triangulation error
grows with depth, so an additive least-squares fit would be dominated by the farthest points.
Estimator: median of log-ratios (breakdown 50%), then a Huber M-estimate by iteratively reweighted
least squares around it, with the residual scale taken from the MAD. The inlier ratio (share of
points within ``inlier_rel`` of the fitted scale) tells the caller how much to trust the result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

_MAD_TO_SIGMA = 1.4826  # MAD of a standard normal distribution


@dataclass
class ScaleAlignment:
    """Result of :func:`align_scale`: ``target ~= scale * source``."""

    scale: float
    inlier_ratio: float  # fraction of points with |log(target / (scale * source))| <= log(1 + inlier_rel)
    num_points: int  # points used (finite and positive in both inputs)
    log_sigma: float  # robust std of the log-ratios (MAD based)


def align_scale(source: np.ndarray, target: np.ndarray, weights: Optional[np.ndarray] = None,
                huber_k: float = 1.345, inlier_rel: float = 0.15, iterations: int = 10,
                min_points: int = 5) -> Optional[ScaleAlignment]:
    """Scale ``s`` with ``target ~= s * source`` for positive depths (any matching shapes).

    Args:
        source, target: depths at the same points; non-finite or non-positive entries are ignored.
        weights: optional non-negative per-point weights (e.g. triangulation parallax).
        huber_k: Huber threshold in units of the robust residual std.
        inlier_rel: relative tolerance defining inliers for the reported ratio (0.15 = 15%).
        iterations: IRLS iterations (converges in a few; stops early when the update is tiny).
        min_points: fewer usable points than this returns ``None``.

    Returns:
        :class:`ScaleAlignment`, or ``None`` when fewer than ``min_points`` points are usable.
    """
    src = np.asarray(source, dtype=np.float64).ravel()
    tgt = np.asarray(target, dtype=np.float64).ravel()
    if src.shape != tgt.shape:
        raise ValueError(f"align_scale: source ({src.size}) and target ({tgt.size}) sizes differ")
    w = np.ones_like(src) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != src.shape:
        raise ValueError(f"align_scale: weights ({w.size}) must match source ({src.size})")
    ok = np.isfinite(src) & np.isfinite(tgt) & np.isfinite(w) & (src > 0) & (tgt > 0) & (w > 0)
    if int(ok.sum()) < min_points:
        return None
    x = np.log(tgt[ok]) - np.log(src[ok])
    w = w[ok]
    mu = float(np.median(x))
    sigma = max(_MAD_TO_SIGMA * float(np.median(np.abs(x - mu))), 1e-9)
    for _ in range(iterations):
        r = np.abs(x - mu)
        huber = np.minimum(1.0, huber_k * sigma / np.maximum(r, 1e-300))
        ww = w * huber
        new_mu = float((ww * x).sum() / ww.sum())
        if abs(new_mu - mu) < 1e-10:
            mu = new_mu
            break
        mu = new_mu
    inlier_ratio = float(np.mean(np.abs(x - mu) <= np.log1p(inlier_rel)))
    return ScaleAlignment(scale=float(np.exp(mu)), inlier_ratio=inlier_ratio, num_points=int(ok.sum()),
                          log_sigma=sigma)


def sample_depth(depth: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Depth map HxW at Nx2 pixel positions (nearest pixel centre); NaN outside the image."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"sample_depth: depth must be HxW, got shape {depth.shape}")
    pix = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    h, w = depth.shape
    xi = np.rint(pix[:, 0])
    yi = np.rint(pix[:, 1])
    inside = np.isfinite(xi) & np.isfinite(yi) & (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
    out = np.full(pix.shape[0], np.nan)
    out[inside] = depth[yi[inside].astype(np.int64), xi[inside].astype(np.int64)]
    return out


def align_depth_to_points(depth: np.ndarray, pixels: np.ndarray, point_depth: np.ndarray,
                          weights: Optional[np.ndarray] = None, **kwargs) -> Optional[ScaleAlignment]:
    """Scale ``s`` with ``depth[pixels] ~= s * point_depth`` (dense map vs sparse depths).

    With triangulated depths from a unit-norm translation this ``s`` is the translation length in
    the depth map's units. Extra keyword arguments go to :func:`align_scale`.
    """
    return align_scale(np.asarray(point_depth), sample_depth(depth, pixels), weights=weights, **kwargs)
