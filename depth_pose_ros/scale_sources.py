"""Absolute scale for monocular depth: camera-height prior and stereo baseline.

Monocular self-supervision fixes depth only up to one unknown factor. A robot usually knows one
metric quantity: how high its camera sits above the ground, or the baseline of a stereo pair. Each
source here turns one frame's network depth into a factor ``s`` with ``metric = s * network`` and
smooths it over time (a per-frame estimate is noisy; the true factor is constant for a given model
and camera). Returning ``None`` means "no reliable estimate this frame": the last factor is kept.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

from depth_pose_ros.estimator_types import EstimatorConfig, ScaleConfig
from depth_pose_ros.geometry.camera import invert_intrinsics


class _Smoothed:
    """Exponential smoothing in the log domain (scale errors are multiplicative)."""

    def __init__(self, cfg: ScaleConfig) -> None:
        self.cfg = cfg
        self._log: Optional[float] = None

    def reset(self) -> None:
        self._log = None

    def _push(self, s: Optional[float]) -> Optional[float]:
        if s is None or not np.isfinite(s) or s <= 0:
            return None if self._log is None else float(np.exp(self._log))
        a = self.cfg.smoothing
        self._log = float(np.log(s)) if self._log is None else a * self._log + (1 - a) * float(np.log(s))
        return float(np.exp(self._log))


def fit_ground_plane(points: np.ndarray, max_tilt_deg: float, iterations: int = 100,
                     threshold: float = 0.05, seed: int = 0) -> Optional[tuple[np.ndarray, float, float]]:
    """RANSAC plane ``n . X + d = 0`` through Nx3 camera-frame points, normal near the camera's -y.

    ``threshold`` is relative to the median point depth, so it works in any depth units. Returns
    ``(n, d, inlier_ratio)`` with ``n`` pointing up (towards -y, the camera being above the ground
    plane means ``d > 0``), or ``None`` when no plane of the allowed tilt is found.
    """
    if len(points) < 50:
        return None
    rng = np.random.default_rng(seed)
    tol = threshold * float(np.median(points[:, 2]))
    cos_tilt = np.cos(np.deg2rad(max_tilt_deg))
    best: Optional[tuple[np.ndarray, float, int]] = None
    for _ in range(iterations):
        a, b, c = points[rng.choice(len(points), 3, replace=False)]
        n = np.cross(b - a, c - a)
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n = n / norm
        if n[1] > 0:
            n = -n
        if -n[1] < cos_tilt:
            continue
        d = -float(n @ a)
        count = int((np.abs(points @ n + d) < tol).sum())
        if best is None or count > best[2]:
            best = (n, d, count)
    if best is None:
        return None
    n, d, _ = best
    inl = np.abs(points @ n + d) < tol
    # least-squares refinement on the inliers
    P = points[inl]
    centroid = P.mean(axis=0)
    _, _, vt = np.linalg.svd(P - centroid)
    n = vt[2] if vt[2][1] <= 0 else -vt[2]
    d = -float(n @ centroid)
    return n, d, float(inl.mean())


class CameraHeightScale(_Smoothed):
    """Scale from the road plane: the fitted plane must lie ``camera_height_m`` below the camera."""

    def update(self, depth: np.ndarray, K: np.ndarray, image: np.ndarray, stereo_image, stereo_baseline,
               est_cfg: EstimatorConfig) -> Optional[float]:
        h, w = depth.shape
        y0 = int(h * (1.0 - self.cfg.ground_region))
        ys, xs = np.mgrid[y0:h:2, w // 5: 4 * w // 5:2]
        z = depth[ys, xs].astype(np.float64)
        ok = np.isfinite(z) & (z > 0)
        rays = np.stack([xs[ok], ys[ok], np.ones(ok.sum())], axis=1) @ np.asarray(invert_intrinsics(K)).T
        points = rays * z[ok][:, None]
        plane = fit_ground_plane(points, self.cfg.max_plane_tilt_deg)
        if plane is None or plane[2] < 0.3 or plane[1] <= 0:
            return self._push(None)
        return self._push(self.cfg.camera_height_m / plane[1])


class StereoScale(_Smoothed):
    """Scale from a rectified stereo pair: SGBM disparity gives metric depth ``f * b / d``."""

    def update(self, depth: np.ndarray, K: np.ndarray, image: np.ndarray, stereo_image: Optional[np.ndarray],
               stereo_baseline: Optional[float], est_cfg: EstimatorConfig) -> Optional[float]:
        baseline = self.cfg.stereo_baseline_m or stereo_baseline
        if stereo_image is None or not baseline or baseline <= 0:
            return self._push(None)
        h, w = depth.shape
        left = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        right = np.asarray(stereo_image)
        if right.dtype != np.uint8:
            right = (right / 256).astype(np.uint8) if right.dtype == np.uint16 else right.astype(np.uint8)
        if right.ndim == 3:
            right = cv2.cvtColor(right[..., :3], cv2.COLOR_RGB2GRAY)
        right = cv2.resize(right, (w, h), interpolation=cv2.INTER_AREA)
        num_disp = max(16, int(np.ceil(w / 8 / 16)) * 16)
        sgbm = cv2.StereoSGBM_create(minDisparity=0, numDisparities=num_disp, blockSize=5,
                                     P1=8 * 25, P2=32 * 25, uniquenessRatio=10, speckleWindowSize=50,
                                     speckleRange=2, mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
        disp = sgbm.compute(left, right).astype(np.float32) / 16.0
        ok = (disp > 1.0) & np.isfinite(depth) & (depth > 0)
        if ok.sum() < 200:
            return self._push(None)
        metric = K[0, 0] * baseline / disp[ok]
        return self._push(float(np.median(metric / depth[ok])))
