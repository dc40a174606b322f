"""Least-squares alignment of point sets and trajectories (Umeyama 1991), with or without scale.

Why it exists: a monocular trajectory lives in an arbitrary world frame *and* at an arbitrary scale,
so absolute trajectory error (ATE) is only meaningful after the best similarity transform (Sim(3))
that maps the estimate onto the ground truth. Stereo / metric estimates are compared after a rigid
(SE(3)) alignment only, which keeps their scale error visible.

Reference: S. Umeyama, "Least-squares estimation of transformation parameters between two point
patterns", IEEE TPAMI 13(4), 1991 (closed form via the SVD of the cross-covariance, with the sign
correction that rules out reflections).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sim3:
    """A similarity transform ``x -> scale * R @ x + t`` (``scale == 1`` for a rigid transform)."""

    scale: float
    R: np.ndarray  # 3x3 rotation, det +1
    t: np.ndarray  # (3,)

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix ``[[s R, t], [0, 1]]``."""
        M = np.eye(4)
        M[:3, :3] = self.scale * self.R
        M[:3, 3] = self.t
        return M

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform Nx3 (or (3,)) points."""
        pts = np.asarray(points, dtype=np.float64)
        return self.scale * pts @ self.R.T + self.t

    def apply_to_poses(self, T_world_cam: np.ndarray) -> np.ndarray:
        """Move Nx4x4 camera-to-world poses ``T_world_cam`` (maps camera points into the world) into
        the aligned world frame.

        The rotation part becomes ``R @ R_i`` (still a rotation) and the position
        ``s R p_i + t``; camera-frame distances are not rescaled, which is what a trajectory plot or a
        position error wants.
        """
        T = np.asarray(T_world_cam, dtype=np.float64)
        out = T.copy()
        out[..., :3, :3] = self.R @ T[..., :3, :3]
        out[..., :3, 3] = self.apply(T[..., :3, 3])
        return out


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Sim3:
    """Best ``Sim3`` (or rigid transform when ``with_scale=False``) minimising
    ``sum_i || dst_i - (s R src_i + t) ||^2`` for corresponding Nx3 point sets.

    The rotation is unique when the centred ``src`` points span at least a plane; for collinear
    points any minimiser is returned (the residual is still optimal). Raises ``ValueError`` for
    mismatched shapes, fewer than 2 points, non-finite values, or (with scale) a ``src`` set with
    no spread, whose scale is undefined.
    """
    X = np.asarray(src, dtype=np.float64)
    Y = np.asarray(dst, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 3 or X.shape != Y.shape:
        raise ValueError(f"umeyama: src and dst must both be Nx3, got {X.shape} and {Y.shape}")
    if X.shape[0] < 2:
        raise ValueError(f"umeyama: need at least 2 corresponding points, got {X.shape[0]}")
    if not (np.isfinite(X).all() and np.isfinite(Y).all()):
        raise ValueError("umeyama: src / dst contain non-finite values")

    mu_x = X.mean(axis=0)
    mu_y = Y.mean(axis=0)
    Xc = X - mu_x
    Yc = Y - mu_y
    n = X.shape[0]
    cov = Yc.T @ Xc / n  # cross-covariance Sigma_xy of Umeyama's eq. (38)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:  # best orthogonal map is a reflection: flip the
        S[2, 2] = -1.0  # direction of the smallest singular value instead (eq. 39/43)
    R = U @ S @ Vt

    if with_scale:
        var_x = float((Xc**2).sum() / n)
        if var_x <= 1e-300:
            raise ValueError("umeyama: all src points coincide, the scale is undefined")
        scale = float(np.sum(D * np.diag(S)) / var_x)  # eq. (42): tr(D S) / sigma_x^2
    else:
        scale = 1.0
    t = mu_y - scale * R @ mu_x
    return Sim3(scale=scale, R=R, t=t)


def least_squares_scale(pred: np.ndarray, gt: np.ndarray) -> float:
    """Scale ``s`` minimising ``|| s * pred - gt ||^2`` (no rotation / translation), i.e.
    ``<gt, pred> / <pred, pred>``; 1.0 when ``pred`` is all zeros (no scale can help)."""
    p = np.asarray(pred, dtype=np.float64).ravel()
    g = np.asarray(gt, dtype=np.float64).ravel()
    if p.shape != g.shape:
        raise ValueError(f"least_squares_scale: shapes differ ({p.shape} vs {g.shape})")
    denom = float(p @ p)
    return float(g @ p) / denom if denom > 0 else 1.0
