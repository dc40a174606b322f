"""GLNet geometric constraints (Chen, Schmid, Sminchisescu, ICCV 2019; papers/chen2019_glnet_notes.md).

GLNet ties depth D, camera motion (R, t) and optical flow F together with three self-supervised terms,
and reuses them for online refinement at test time (which is why they live in the core package):

* Epipolar loss: the flow must respect the epipolar geometry of the predicted camera motion,
      L_e = mean_p rho(d_S(p, p + F(p); F_mat)),  F_mat = K^-T [t]_x R K^-1
  with d_S the Sampson distance (pixels) and rho a robust penalty. It constrains flow by pose without
  needing depth, and gives flow geometric awareness in textureless regions.
* Adaptive photometric loss: per pixel, the smaller of the rigid-warp and flow-warp photometric errors,
      L_ap = mean_p min(pe(I_t, I_s^rigid)(p), pe(I_t, I_s^flow)(p))
  so that moving objects (explained only by flow) do not corrupt depth/pose, and rigid regions where
  the flow is wrong still teach depth.
* Multi-view 3D structure consistency: t's 3D points moved by the pose must coincide with s's 3D points
  at the flow-matched pixels,
      L_mv = mean_p |T_s_t X_t(p) - X_s(p + F(p))|_1
  which couples the two depth maps and the pose (penalising depth changes not explained by motion).

Pose convention everywhere: ``T_s_t`` (Bx4x4) is T_source_target, mapping points of camera t into camera
s; the flow ``flow_t_s`` lives on t's grid and points into s.
"""
from __future__ import annotations

from typing import Literal, Optional, overload

import torch

from depth_pose_ros.geometry.camera import backproject, invert_intrinsics
from depth_pose_ros.geometry.epipolar import (
    essential_from_pose,
    fundamental_from_essential,
    sampson_distance_dense,
)
from depth_pose_ros.geometry.se3 import transform_points
from depth_pose_ros.geometry.warp import warp_by_flow
from depth_pose_ros.losses.photometric import DEFAULT_ALPHA, min_reprojection_loss
from depth_pose_ros.losses.reduction import (
    LossOut,
    check_bchw,
    check_intrinsics,
    check_pose,
    check_same_hw,
    finish,
)

_ROBUST = ("charbonnier", "cauchy", "l2")


def fundamental_from_pose(T_s_t: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Bx3x3 fundamental matrix with ``x_s^T F x_t = 0`` for the motion ``T_s_t`` (T_source_target).

    ``T_s_t`` maps points of camera t into camera s (``X_s = R X_t + t``), so E = [t]_x R and
    F = K^-T E K^-1 (same intrinsics for both views).
    """
    E = essential_from_pose(T_s_t[:, :3, :3], T_s_t[:, :3, 3])
    return fundamental_from_essential(E, K, K)


def epipolar_error_map(flow_t_s: torch.Tensor, T_s_t: torch.Tensor, K: torch.Tensor,
                       squared: bool = False) -> torch.Tensor:
    """Per-pixel Sampson distance (pixels, Bx1xHxW) of the matches p <-> p + flow_t_s(p) under T_s_t.

    ``T_s_t`` (Bx4x4) maps points of camera t into camera s. Independent of the length of the
    translation (F is defined up to scale); for zero translation E = 0 and the distance is 0.
    """
    check_bchw("flow_t_s", flow_t_s, channels=2)
    b = flow_t_s.shape[0]
    check_pose("T_s_t", T_s_t, b)
    K = check_intrinsics("K", K, b)
    F_mat = fundamental_from_pose(T_s_t.to(flow_t_s.dtype), K.to(flow_t_s.dtype))
    return sampson_distance_dense(flow_t_s, F_mat, squared=squared)


def robust_penalty(sq_dist: torch.Tensor, kind: str = "charbonnier", eps: float = 0.1) -> torch.Tensor:
    """Robust penalty of a squared distance d^2 (pixels^2).

    ``"charbonnier"``: sqrt(d^2 + eps^2) - eps, ~|d| for d >> eps, smooth at 0 (gradient bounded, unlike
    sqrt at an exact match); ``"cauchy"``: eps^2 log(1 + d^2 / eps^2), grows only logarithmically so
    moving objects (large epipolar errors) barely pull the pose; ``"l2"``: d^2.
    """
    if kind == "charbonnier":
        return torch.sqrt(sq_dist + eps * eps) - eps
    if kind == "cauchy":
        return eps * eps * torch.log1p(sq_dist / (eps * eps))
    if kind == "l2":
        return sq_dist
    raise ValueError(f"robust: must be one of {_ROBUST}, got {kind!r}")


@overload
def epipolar_loss(
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    robust: str = ...,
    eps: float = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def epipolar_loss(
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    robust: str = ...,
    eps: float = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def epipolar_loss(
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    robust: str = ...,
    eps: float = ...,
    return_map: bool = ...,
) -> LossOut: ...


def epipolar_loss(
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    robust: str = "charbonnier",
    eps: float = 0.1,
    return_map: bool = False,
) -> LossOut:
    """GLNet epipolar loss: mean over mask of rho(Sampson distance of p <-> p + flow_t_s(p) under T_s_t).

    Args:
        flow_t_s: Bx2xHxW flow from t into s.
        T_s_t: Bx4x4 T_source_target (maps points of camera t into camera s).
        K: Bx3x3 (or 3x3) intrinsics.
        mask: optional Bx1xHxW (e.g. non-occluded, or a rigid-scene mask; moving objects violate it).
        robust, eps: see :func:`robust_penalty` (eps in pixels).
        return_map: also return the masked per-pixel penalty.

    Flow consistent with (R, t) gives ~0; gradients reach both the flow and the pose.
    """
    check_same_hw(("flow_t_s", flow_t_s), ("mask", mask))
    d2 = epipolar_error_map(flow_t_s, T_s_t, K, squared=True)
    return finish(robust_penalty(d2, robust, eps), mask, return_map)


@overload
def adaptive_photometric_loss(
    target: torch.Tensor,
    rigid_warped: torch.Tensor,
    flow_warped: torch.Tensor,
    rigid_valid: Optional[torch.Tensor] = ...,
    flow_valid: Optional[torch.Tensor] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def adaptive_photometric_loss(
    target: torch.Tensor,
    rigid_warped: torch.Tensor,
    flow_warped: torch.Tensor,
    rigid_valid: Optional[torch.Tensor] = ...,
    flow_valid: Optional[torch.Tensor] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def adaptive_photometric_loss(
    target: torch.Tensor,
    rigid_warped: torch.Tensor,
    flow_warped: torch.Tensor,
    rigid_valid: Optional[torch.Tensor] = ...,
    flow_valid: Optional[torch.Tensor] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: bool = ...,
) -> LossOut: ...


def adaptive_photometric_loss(
    target: torch.Tensor,
    rigid_warped: torch.Tensor,
    flow_warped: torch.Tensor,
    rigid_valid: Optional[torch.Tensor] = None,
    flow_valid: Optional[torch.Tensor] = None,
    mask: Optional[torch.Tensor] = None,
    alpha: float = DEFAULT_ALPHA,
    return_map: bool = False,
) -> LossOut:
    """GLNet adaptive photometric loss: mean_p min(pe(I_t, rigid warp), pe(I_t, flow warp)).

    Args:
        target: Bx3xHxW image t.
        rigid_warped: source warped by depth + pose (``geometry.warp.warp_rigid``).
        flow_warped: source warped by the optical flow (``geometry.warp.warp_by_flow``).
        rigid_valid, flow_valid: their Bx1xHxW validity masks; an invalid warp never wins the minimum.
        mask: optional extra Bx1xHxW mask.
        alpha: SSIM weight; return_map: also return the per-pixel minimum.
    """
    return min_reprojection_loss(
        target, [rigid_warped, flow_warped], valid=[rigid_valid, flow_valid], mask=mask, alpha=alpha,
        return_map=return_map,
    )


@overload
def multiview_structure_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    relative: bool = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def multiview_structure_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    relative: bool = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def multiview_structure_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    relative: bool = ...,
    return_map: bool = ...,
) -> LossOut: ...


def multiview_structure_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    flow_t_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    relative: bool = False,
    return_map: bool = False,
) -> LossOut:
    """GLNet multi-view 3D structure consistency: mean_p |T_s_t X_t(p) - X_s(p + F(p))|_1.

    Args:
        depth_t, depth_s: Bx1xHxW predicted depths of frames t and s (metres).
        flow_t_s: Bx2xHxW flow from t into s giving the corresponding pixel in s.
        T_s_t: Bx4x4 T_source_target (maps points of camera t into camera s).
        K: Bx3x3 (or 3x3) intrinsics.
        mask: optional Bx1xHxW mask (non-occluded pixels); samples leaving image s are always excluded.
        relative: divide each residual by (z_a + z_b) of the two points, so distant points (whose depth
            is less certain) do not dominate; off by default (the paper's metric L1).
        return_map: also return the per-pixel residual (sum over x, y, z).
    """
    check_bchw("depth_t", depth_t, channels=1)
    check_bchw("depth_s", depth_s, channels=1)
    check_bchw("flow_t_s", flow_t_s, channels=2)
    check_same_hw(("depth_t", depth_t), ("depth_s", depth_s), ("flow_t_s", flow_t_s), ("mask", mask))
    b = depth_t.shape[0]
    check_pose("T_s_t", T_s_t, b)
    K_inv = invert_intrinsics(check_intrinsics("K", K, b).to(depth_t.dtype))
    moved = transform_points(T_s_t.to(depth_t.dtype), backproject(depth_t, K_inv))
    matched, inside = warp_by_flow(backproject(depth_s, K_inv), flow_t_s)
    per_pixel = (moved - matched).abs().sum(dim=1, keepdim=True)
    if relative:
        per_pixel = per_pixel / (moved[:, 2:3].abs() + matched[:, 2:3].abs()).clamp_min(1e-6)
    m = inside if mask is None else inside * mask
    return finish(per_pixel, m, return_map)
