"""Metric scale for monocular odometry: camera-height prior and stereo baseline.

Monocular geometry fixes the trajectory only up to one unknown factor. A robot usually knows one metric
quantity: how high its camera sits above the ground, or the baseline of a stereo pair. Each source
here turns one frame into an observation ``m`` of the factor from the pipeline's geometric units to
metres; the odometry policy smooths it over time (``odometry_policy.RobustFactor``: a per-frame estimate
is noisy; the true factor is constant while the monocular scale is carried consistently). ``None`` means
"no reliable estimate this frame".

The camera-height source fits the road plane to points *triangulated* by the two-view module (not to
network depth, whose errors would become the metric error).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from depth_pose_ros.geometry.epipolar import fundamental_np, sampson_residual_np
from depth_pose_ros.geometry.triangulation import triangulate
from depth_pose_ros.pipeline.config import ScaleConfig
from depth_pose_ros.utils.image import to_gray_u8


def fit_ground_plane(points: np.ndarray, max_tilt_deg: float, iterations: int = 100,
                     threshold: float = 0.01, seed: int = 0) -> Optional[tuple[np.ndarray, float, float]]:
    """RANSAC plane ``n . X + d = 0`` through Nx3 camera-frame points, normal near the camera's -y.

    ``threshold`` is relative to the median point depth, so it works in any units. Returns
    ``(n, d, inlier_ratio)`` with ``n`` pointing up (towards -y; a camera above the plane has
    ``d > 0``), or ``None`` when no plane of the allowed tilt is found.
    """
    if len(points) < 30:
        return None
    rng = np.random.default_rng(seed)
    tol = threshold * float(np.median(points[:, 2]))
    cos_tilt = np.cos(np.deg2rad(max_tilt_deg))
    # all hypotheses at once (vectorised: the loop over hypotheses was the cost)
    tri = points[rng.integers(0, len(points), size=(iterations, 3))]
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    ok = norms > 1e-12
    normals = normals[ok] / norms[ok, None]
    normals *= np.where(normals[:, 1] > 0, -1.0, 1.0)[:, None]  # pointing up (camera -y)
    keep = -normals[:, 1] >= cos_tilt
    if not keep.any():
        return None
    normals, offsets = normals[keep], -np.einsum("ij,ij->i", normals[keep], tri[ok][keep, 0])
    counts = (np.abs(points @ normals.T + offsets) < tol).sum(axis=0)
    best = int(np.argmax(counts))
    n, d = normals[best], float(offsets[best])
    inl = np.abs(points @ n + d) < tol
    P = points[inl]  # least-squares refinement on the inliers
    centroid = P.mean(axis=0)
    _, _, vt = np.linalg.svd(P - centroid, full_matrices=False)  # (the full U would be NxN)
    n = vt[2] if vt[2][1] <= 0 else -vt[2]
    if -n[1] < cos_tilt:
        return None
    d = -float(n @ centroid)
    return n, d, float(inl.mean())


@dataclass
class PlaneObservation:
    """One frame's road plane: camera height in geometric units and the share of points on the plane."""

    height: float
    inlier_ratio: float
    num_points: int


def ground_points(flow: np.ndarray, valid: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                  region: float, max_samples: int = 2500, max_epipolar_px: float = np.inf) -> np.ndarray:
    """Points (Mx3, first camera, translation ``t`` as given) triangulated from the flow of the road
    region: the bottom ``region`` of the image, middle 60 % of its width, on a regular grid of at most
    about ``max_samples`` pixels (a plane of three parameters needs no more; the cost stays the same at
    any image size). ``valid`` marks usable flow; ``max_epipolar_px`` drops samples whose flow the camera
    motion does not explain (Sampson distance; moving objects), tested on the samples only."""
    h, w = flow.shape[:2]
    y0 = int(h * (1.0 - region))
    x0, x1 = w // 5, 4 * w // 5
    stride = max(1, int(np.ceil(np.sqrt((h - y0) * (x1 - x0) / max_samples))))
    ys, xs = np.mgrid[y0:h:stride, x0:x1:stride]
    ok = valid[ys, xs]
    p1 = np.stack([xs[ok], ys[ok]], axis=1).astype(np.float64)
    if len(p1) < 30:
        return np.zeros((0, 3))
    p2 = p1 + flow[ys[ok], xs[ok]].astype(np.float64)
    if np.isfinite(max_epipolar_px):
        rigid = np.abs(sampson_residual_np(p1, p2, fundamental_np(K, R, t))) < max_epipolar_px
        p1, p2 = p1[rigid], p2[rigid]
    tri = triangulate(p1, p2, K, R, t, min_parallax_deg=0.5, max_reproj_px=1.0, image_size=(h, w))
    return tri.points[tri.valid]


def observe_camera_height(points: np.ndarray, cfg: ScaleConfig) -> Optional[PlaneObservation]:
    """The road plane of ``points`` (geometric units), or None when there is no usable plane."""
    plane = fit_ground_plane(points, cfg.max_plane_tilt_deg)
    if plane is None or plane[1] <= 0 or plane[2] < cfg.min_plane_inliers:
        return None
    return PlaneObservation(height=float(plane[1]), inlier_ratio=float(plane[2]), num_points=len(points))


def stereo_metric_depth(left: np.ndarray, right: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Metric depth (HxW, NaN where unknown) of a rectified pair of the same size by SGBM."""
    h, w = left.shape[:2]
    left_g, right_g = to_gray_u8(left), to_gray_u8(right)
    if right_g.shape != (h, w):
        right_g = cv2.resize(right_g, (w, h), interpolation=cv2.INTER_AREA)
    num_disp = max(16, int(np.ceil(w / 8 / 16)) * 16)
    sgbm = cv2.StereoSGBM.create(minDisparity=0, numDisparities=num_disp, blockSize=5, P1=8 * 25, P2=32 * 25,
                                 uniquenessRatio=10, speckleWindowSize=50, speckleRange=2,
                                 mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    disp = sgbm.compute(left_g, right_g).astype(np.float32) / 16.0
    with np.errstate(divide="ignore"):
        return np.where(disp > 1.0, fx * baseline / disp, np.nan)


def observe_stereo(depth: np.ndarray, left: np.ndarray, right: Optional[np.ndarray], fx: float,
                   baseline: Optional[float]) -> Optional[float]:
    """Factor ``metric / depth`` from a rectified pair (``left`` and ``depth`` share a size and ``fx``)."""
    if right is None or not baseline or baseline <= 0:
        return None
    metric = stereo_metric_depth(left, right, fx, baseline)
    ok = np.isfinite(metric) & np.isfinite(depth) & (depth > 0)
    if ok.sum() < 200:
        return None
    return float(np.median(metric[ok] / depth[ok]))
