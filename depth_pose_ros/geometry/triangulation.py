"""Two-view triangulation with the checks that make triangulated depth usable for scale alignment.

Linear (DLT) triangulation via ``cv2.triangulatePoints`` in *normalised* image coordinates (better
conditioned than pixels), followed by rejection of the points that carry no depth information or
are wrong: near-parallel rays (depth error grows as 1/parallax), points behind either camera,
points at infinity, matches leaving image 2, and large reprojection error.

Pose convention: ``(R, t)`` is ``T_2_1``: ``X_2 = R X_1 + t``; triangulated points are returned in
the frame-1 camera, in the units of ``t`` (unit-norm from an essential matrix).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from depth_pose_ros.geometry.camera import invert_intrinsics, validate_intrinsics


@dataclass
class Triangulation:
    """Triangulated correspondences; every array has one row per input correspondence."""

    points: np.ndarray  # Nx3 float64, frame-1 camera coordinates (NaN where not computable)
    valid: np.ndarray  # N bool: passed every check below
    parallax_deg: np.ndarray  # N angle between the two viewing rays
    depth1: np.ndarray  # N z in camera 1
    depth2: np.ndarray  # N z in camera 2
    reproj_err_px: np.ndarray  # N max of the reprojection errors in image 1 and image 2

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())


def _check_points(p: np.ndarray, name: str) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"triangulate: {name} must be Nx2 pixels, got shape {p.shape}")
    return p


def triangulate(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                min_parallax_deg: float = 0.0, max_reproj_px: float = 2.0,
                image_size: Optional[tuple[int, int]] = None, max_depth: float = np.inf) -> Triangulation:
    """Triangulate pixel correspondences p1 <-> p2 (Nx2) seen by cameras K[I|0] and K[R|t].

    Args:
        p1, p2: Nx2 pixels in image 1 and image 2.
        K: 3x3 intrinsics of both images.
        R, t: ``T_2_1`` rotation (3x3) and translation (3,): maps frame-1 points into frame 2.
        min_parallax_deg: reject points whose two viewing rays meet at a smaller angle.
        max_reproj_px: reject points reprojecting further than this from either observation.
        image_size: ``(height, width)``; when given, reject matches whose p2 lies outside image 2.
        max_depth: reject points farther than this along z in camera 1 (in units of t).

    Returns:
        A :class:`Triangulation`; ``valid`` marks the usable points.
    """
    p1 = _check_points(p1, "p1")
    p2 = _check_points(p2, "p2")
    if p1.shape != p2.shape:
        raise ValueError(f"triangulate: p1 {p1.shape} and p2 {p2.shape} must have the same shape")
    K = validate_intrinsics(K, "triangulate: K")
    R = np.asarray(R, dtype=np.float64).reshape(3, 3)
    t = np.asarray(t, dtype=np.float64).reshape(3)
    n = p1.shape[0]
    if n == 0:
        empty = np.zeros(0)
        return Triangulation(np.zeros((0, 3)), np.zeros(0, bool), empty, empty, empty, empty)

    K_inv = invert_intrinsics(K)
    x1 = p1 @ K_inv[:2, :2].T + K_inv[:2, 2]
    x2 = p2 @ K_inv[:2, :2].T + K_inv[:2, 2]
    P1 = np.hstack((np.eye(3), np.zeros((3, 1))))
    P2 = np.hstack((R, t[:, None]))
    X_h = cv2.triangulatePoints(P1, P2, x1.T.copy(), x2.T.copy())  # 4xN
    w = X_h[3]
    finite_w = np.abs(w) > 1e-12
    X = np.full((n, 3), np.nan)
    X[finite_w] = (X_h[:3, finite_w] / w[finite_w]).T

    X2 = X @ R.T + t
    z1, z2 = X[:, 2], X2[:, 2]
    # Parallax: angle between the ray from camera 1 (X) and from camera 2 (X - C2), C2 = -R^T t.
    c2 = -R.T @ t
    ray1, ray2 = X, X - c2
    cos_par = (ray1 * ray2).sum(-1) / np.maximum(np.linalg.norm(ray1, axis=-1) * np.linalg.norm(ray2, axis=-1),
                                                  1e-300)
    parallax = np.degrees(np.arccos(np.clip(cos_par, -1.0, 1.0)))

    with np.errstate(invalid="ignore", divide="ignore"):
        proj1 = (X[:, :2] / z1[:, None]) @ K[:2, :2].T + K[:2, 2]
        proj2 = (X2[:, :2] / z2[:, None]) @ K[:2, :2].T + K[:2, 2]
    err = np.maximum(np.linalg.norm(proj1 - p1, axis=-1), np.linalg.norm(proj2 - p2, axis=-1))

    valid = finite_w & np.all(np.isfinite(X), axis=-1) & (z1 > 0) & (z2 > 0) & (z1 < max_depth)
    valid &= parallax >= min_parallax_deg
    valid &= np.nan_to_num(err, nan=np.inf) <= max_reproj_px
    if image_size is not None:
        h, w_img = image_size
        valid &= (p2[:, 0] >= 0) & (p2[:, 0] <= w_img - 1) & (p2[:, 1] >= 0) & (p2[:, 1] <= h - 1)
    return Triangulation(points=X, valid=valid, parallax_deg=np.nan_to_num(parallax, nan=0.0),
                         depth1=z1, depth2=z2, reproj_err_px=np.nan_to_num(err, nan=np.inf))
