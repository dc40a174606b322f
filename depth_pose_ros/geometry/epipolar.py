"""Epipolar geometry in torch: essential / fundamental matrices and point-to-epipolar-line errors.

Convention: for a relative pose ``T_2_1`` (maps frame-1 camera points into frame 2,
``X_2 = R X_1 + t``) the essential matrix is ``E = [t]_x R`` and corresponding pixels satisfy
``x_2^T F x_1 = 0`` with ``F = K_2^-T E K_1^-1``. Pixels are homogeneous ``(x, y, 1)``.

Two residuals are offered because they serve different purposes:
* Sampson distance: first-order approximation of the reprojection distance to the nearest exact
  correspondence; the standard RANSAC/refinement error, used for the rigid mask.
* Symmetric epipolar distance: distances of each point to the epipolar line of the other; more
  intuitive to threshold and the usual "epipolar loss" for flow networks.
Both are returned in pixels (RMS over the two images for the symmetric one) so that thresholds read
the same; ``squared=True`` returns the squared value, which is smooth at zero for losses.
"""
from __future__ import annotations

import numpy as np
import torch

from depth_pose_ros.geometry.camera import invert_intrinsics, pixel_grid
from depth_pose_ros.geometry.se3 import skew

_EPS = 1e-12


def essential_from_pose(R: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``E = [t]_x R`` (Bx3x3) from the relative pose ``T_2_1`` = (R Bx3x3, t Bx3)."""
    if R.shape[-2:] != (3, 3) or t.shape[-1] != 3:
        raise ValueError(f"essential_from_pose: need R ...x3x3 and t ...x3, got {tuple(R.shape)}, "
                         f"{tuple(t.shape)}")
    return torch.matmul(skew(t.to(R.dtype)), R)


def fundamental_from_essential(E: torch.Tensor, K1: torch.Tensor, K2: torch.Tensor) -> torch.Tensor:
    """``F = K2^-T E K1^-1`` for pixels of image 1 (intrinsics K1) and image 2 (K2); 3x3 or Bx3x3."""
    K1_inv = invert_intrinsics(K1.to(E.dtype))
    K2_inv = invert_intrinsics(K2.to(E.dtype))
    return torch.matmul(torch.matmul(K2_inv.transpose(-1, -2), E), K1_inv)


def _homogeneous(p: torch.Tensor) -> torch.Tensor:
    return torch.cat((p, torch.ones_like(p[..., :1])), dim=-1)


def _lines(p1: torch.Tensor, p2: torch.Tensor, F: torch.Tensor):
    """Epipolar lines ``F x1`` (in image 2), ``F^T x2`` (in image 1) and the algebraic error."""
    if p1.shape != p2.shape or p1.shape[-1] != 2 or p1.dim() != 3:
        raise ValueError(f"epipolar: p1 and p2 must both be BxNx2, got {tuple(p1.shape)}, {tuple(p2.shape)}")
    if F.dim() == 2:
        F = F.unsqueeze(0)
    F = F.to(p1.dtype)
    x1, x2 = _homogeneous(p1), _homogeneous(p2)
    l2 = torch.matmul(x1, F.transpose(-1, -2))  # BxNx3 rows: (F x1)^T
    l1 = torch.matmul(x2, F)  # BxNx3 rows: (F^T x2)^T
    algebraic = (x2 * l2).sum(-1)
    return l1, l2, algebraic


def sampson_distance(p1: torch.Tensor, p2: torch.Tensor, F: torch.Tensor,
                     squared: bool = False) -> torch.Tensor:
    """Sampson distance (pixels) of correspondences p1 <-> p2 (BxNx2) under F (Bx3x3 or 3x3) -> BxN.

    ``d^2 = (x2^T F x1)^2 / ((F x1)_1^2 + (F x1)_2^2 + (F^T x2)_1^2 + (F^T x2)_2^2)``.
    """
    l1, l2, alg = _lines(p1, p2, F)
    denom = l2[..., 0] ** 2 + l2[..., 1] ** 2 + l1[..., 0] ** 2 + l1[..., 1] ** 2
    d2 = alg * alg / denom.clamp(min=_EPS)
    return d2 if squared else torch.sqrt(d2.clamp(min=_EPS))


def epipolar_distance(p1: torch.Tensor, p2: torch.Tensor, F: torch.Tensor,
                      squared: bool = False) -> torch.Tensor:
    """Symmetric epipolar distance (pixels, RMS of the two point-to-line distances) -> BxN.

    ``d^2 = ((x2^T F x1)^2 / |(F x1)_12|^2 + (x2^T F x1)^2 / |(F^T x2)_12|^2) / 2``.
    """
    l1, l2, alg = _lines(p1, p2, F)
    n2 = (l2[..., 0] ** 2 + l2[..., 1] ** 2).clamp(min=_EPS)
    n1 = (l1[..., 0] ** 2 + l1[..., 1] ** 2).clamp(min=_EPS)
    d2 = 0.5 * alg * alg * (1.0 / n1 + 1.0 / n2)
    return d2 if squared else torch.sqrt(d2.clamp(min=_EPS))


def _dense_points(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"epipolar: flow must be Bx2xHxW, got {tuple(flow.shape)}")
    b, _, h, w = flow.shape
    grid = pixel_grid(h, w, device=flow.device, dtype=flow.dtype)
    p1 = grid.expand(b, 2, h, w).reshape(b, 2, -1).transpose(1, 2)
    p2 = (grid + flow).reshape(b, 2, -1).transpose(1, 2)
    return p1, p2


def sampson_distance_dense(flow: torch.Tensor, F: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Sampson distance of every pixel p of image 1 and its match ``p + flow(p)`` -> Bx1xHxW.

    ``flow`` is Bx2xHxW from image 1 to image 2; ``F`` maps image-1 pixels to epipolar lines in 2.
    """
    p1, p2 = _dense_points(flow)
    b, _, h, w = flow.shape
    return sampson_distance(p1, p2, F, squared=squared).reshape(b, 1, h, w)


def epipolar_distance_dense(flow: torch.Tensor, F: torch.Tensor, squared: bool = False) -> torch.Tensor:
    """Symmetric epipolar distance of every pixel and its flow match -> Bx1xHxW (see above)."""
    p1, p2 = _dense_points(flow)
    b, _, h, w = flow.shape
    return epipolar_distance(p1, p2, F, squared=squared).reshape(b, 1, h, w)


# ----------------------------------------------------------------------------------------- numpy


def fundamental_np(K: np.ndarray, R: np.ndarray, t: np.ndarray, K_inv: np.ndarray | None = None) -> np.ndarray:
    """``F = K^-T [t]x R K^-1`` of a relative pose ``T_2_1`` = (R, t) seen by one camera K (numpy).

    ``K_inv`` may be given to save the inverse in loops over many poses of one camera.
    """
    K_inv = invert_intrinsics(K) if K_inv is None else K_inv
    tx = np.array([[0.0, -t[2], t[1]], [t[2], 0.0, -t[0]], [-t[1], t[0], 0.0]])
    return K_inv.T @ tx @ R @ K_inv


def sampson_residual_np(p1: np.ndarray, p2: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Signed Sampson residual (pixels) of Nx2 correspondences under a 3x3 F (numpy, float64).

    ``|r|`` equals :func:`sampson_distance`; the sign (that of ``x2^T F x1``) keeps the residual
    smooth through zero, which the Gauss-Newton / LM refinement of the two-view pose needs.
    """
    p1 = np.asarray(p1, dtype=np.float64)
    p2 = np.asarray(p2, dtype=np.float64)
    F = np.asarray(F, dtype=np.float64)
    l2 = p1 @ F[:, :2].T + F[:, 2]  # rows (F x1)^T
    l1 = p2 @ F[:2, :] + F[2, :]  # rows (F^T x2)^T
    alg = (p2 * l2[:, :2]).sum(-1) + l2[:, 2]
    denom = l2[:, 0] ** 2 + l2[:, 1] ** 2 + l1[:, 0] ** 2 + l1[:, 1] ** 2
    return alg / np.sqrt(np.maximum(denom, _EPS))


def sampson_distance_dense_np(flow: np.ndarray, F: np.ndarray) -> np.ndarray:
    """Sampson distance (pixels, HxW float32) of every pixel p and ``p + flow(p)`` (HxWx2) under 3x3 F.

    Numpy twin of :func:`sampson_distance_dense` for the per-frame pose path: the epipolar lines of
    the pixel grid are separable (``F[k,0] x + F[k,1] y + F[k,2]``), so nothing of size HxWx3 is
    built; float32 is ample for a mask (error ~1e-4 px at 1000 px coordinates).
    """
    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"sampson_distance_dense_np: flow must be HxWx2, got {flow.shape}")
    F = np.asarray(F, dtype=np.float64)
    F = (F / max(np.linalg.norm(F), 1e-300)).astype(np.float32)
    h, w = flow.shape[:2]
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    x2 = x + flow[..., 0]
    y2 = y + flow[..., 1]
    a0 = F[0, 0] * x + F[0, 1] * y + F[0, 2]  # (F x1)_0
    a1 = F[1, 0] * x + F[1, 1] * y + F[1, 2]  # (F x1)_1
    a2 = F[2, 0] * x + F[2, 1] * y + F[2, 2]  # (F x1)_2
    alg = x2 * a0 + y2 * a1 + a2
    b0 = F[0, 0] * x2 + F[1, 0] * y2 + F[2, 0]  # (F^T x2)_0
    b1 = F[0, 1] * x2 + F[1, 1] * y2 + F[2, 1]  # (F^T x2)_1
    denom = a0 * a0 + a1 * a1 + b0 * b0 + b1 * b1
    return np.abs(alg) / np.sqrt(np.maximum(denom, np.float32(1e-30)))
