"""Geometric consistency losses between depth, pose, flow and the two-view module.

* Depth-triangulation consistency (han2021 geometry-aided training, TrianFlow): the network depth at
  pixels that the two-view module triangulated (inliers of the essential-matrix fit) should match the
  triangulated depth once the unknown monocular scale is fixed:
      L_tri = mean_i rho(D_t(p_i), s * z_i),  rho = |log a - log b|  or  |a - b| / (a + b)
* Depth reprojection consistency (SC-SfMLearner, Bian et al. 2019): the depth of t's points seen from
  s must equal s's predicted depth at the pixel they land on:
      D_diff(p) = |z_s(p) - D_s(p')| / (z_s(p) + D_s(p')),  p' = p + rigid_flow(p),  L_gc = mean D_diff
  The normalisation makes it scale-free and bounded in [0, 1); ``1 - D_diff`` is SC-SfMLearner's
  per-pixel weight for down-weighting moving objects and occlusions in the photometric loss.
* Rigid-flow vs optical-flow consistency (GeoNet, DF-Net): where the scene is rigid, the flow induced
  by depth + pose and the optical flow must agree: L_rf = mean_{rigid} |F_rigid - F_opt|_1.
"""
from __future__ import annotations

from typing import Literal, Optional, Union, overload

import torch

from depth_pose_ros.geometry.warp import inside_image, rigid_flow, sample_at, warp_by_flow
from depth_pose_ros.losses.reduction import (
    LossOut,
    check_bchw,
    check_intrinsics,
    check_pose,
    check_same_hw,
    finish,
)

_MIN_DEPTH = 1e-6


def sample_at_pixels(image: torch.Tensor, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear sample of a BxCxHxW map at sparse pixels BxNx2 (x, y) -> (BxCxN values, BxN inside).

    The sparse form of ``geometry.warp.sample_at`` (border padding): the N points are laid out as a
    1xN grid. ``inside`` is 1 where the pixel lies within the pixel-centre hull of the image.
    """
    check_bchw("image", image)
    if pixels.dim() != 3 or pixels.shape[-1] != 2 or pixels.shape[0] != image.shape[0]:
        raise ValueError(f"pixels: expected BxNx2 with B={image.shape[0]}, got {tuple(pixels.shape)}")
    h, w = image.shape[-2:]
    pix = pixels.to(image.dtype).permute(0, 2, 1).unsqueeze(2)  # Bx2x1xN
    values = sample_at(image, pix, padding="border")
    return values.squeeze(2), inside_image(pix, h, w)[:, 0, 0]


def scale_invariant_log_loss(depth: torch.Tensor, target: torch.Tensor, min_points: int = 20,
                             variance_focus: float = 1.0) -> torch.Tensor:
    """Variance of ``log depth - log target`` over the pixels where ``target > 0``, averaged over the batch.

    The scale-invariant log error of Eigen et al. with lambda = ``variance_focus``: at 1 a global scale of
    either map leaves it unchanged, so a target known only up to its own unknown scale (triangulated points of
    one frame pair) teaches the *shape* of the depth and nothing about its units, which other terms own. Below
    1 it adds ``(1 - lambda) * mean(log depth - log target)^2``: for a metric target (rendered depth) that
    anchors the network's units, which no scale-free term does.
    Items with fewer than ``min_points`` target pixels are left out; 0 when no item qualifies.

    Args:
        depth: Bx1xHxW predicted depth (> 0).
        target: Bx1xHxW sparse target depth, 0 (or non-finite) = none.
        variance_focus: lambda in [0, 1].
    """
    if not 0.0 <= variance_focus <= 1.0:
        raise ValueError(f"variance_focus must be in [0, 1], got {variance_focus}")
    check_bchw("depth", depth, channels=1)
    if target.shape != depth.shape:
        raise ValueError(f"target: expected shape {tuple(depth.shape)} like depth, got {tuple(target.shape)}")
    known = (torch.isfinite(target) & (target > 0)).to(depth.dtype)
    safe_target = torch.where(known > 0, target, torch.ones_like(target))
    diff = (torch.log(depth.clamp_min(1e-6)) - torch.log(safe_target)) * known
    n = known.flatten(1).sum(1)
    mean = diff.flatten(1).sum(1) / n.clamp_min(1.0)
    var = (diff * diff).flatten(1).sum(1) / n.clamp_min(1.0) - mean * mean
    use = n >= min_points
    if not bool(use.any()):
        return depth.sum() * 0.0
    return (var.clamp_min(0.0) + (1.0 - variance_focus) * mean * mean)[use].mean()


@overload
def depth_triangulation_loss(
    depth: torch.Tensor,
    pixels: torch.Tensor,
    tri_depth: torch.Tensor,
    scale: Union[float, torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    kind: str = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def depth_triangulation_loss(
    depth: torch.Tensor,
    pixels: torch.Tensor,
    tri_depth: torch.Tensor,
    scale: Union[float, torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    kind: str = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def depth_triangulation_loss(
    depth: torch.Tensor,
    pixels: torch.Tensor,
    tri_depth: torch.Tensor,
    scale: Union[float, torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    kind: str = ...,
    return_map: bool = ...,
) -> LossOut: ...


def depth_triangulation_loss(
    depth: torch.Tensor,
    pixels: torch.Tensor,
    tri_depth: torch.Tensor,
    scale: Union[float, torch.Tensor] = 1.0,
    valid: Optional[torch.Tensor] = None,
    kind: str = "log",
    return_map: bool = False,
) -> LossOut:
    """Consistency of the predicted depth with triangulated depths: mean_i rho(D(p_i), s z_i).

    Args:
        depth: Bx1xHxW predicted depth of the frame the points were triangulated in.
        pixels: BxNx2 pixel coordinates (x, y) of the triangulated points in that frame.
        tri_depth: BxN triangulated depths (up to scale; unit translation from the essential matrix).
        scale: float or B tensor with ``depth ~ scale * tri_depth`` (``geometry.scale_align.align_scale(
            source=tri_depth, target=depth).scale``). Used as given: detach it if it was computed from
            ``depth``, or the loss can be reduced by moving the scale instead of the depth.
        valid: optional BxN mask of inlier points; points off the image or with non-positive depth
            are always dropped.
        kind: ``"log"`` |log D - log(s z)| (scale errors count the same near and far) or ``"relative"``
            |D - s z| / (D + s z) (bounded, SC-SfMLearner style).
        return_map: also return the BxN per-point residuals (masked).
    """
    check_bchw("depth", depth, channels=1)
    b = depth.shape[0]
    if tri_depth.dim() != 2 or tri_depth.shape != pixels.shape[:2]:
        raise ValueError(
            f"tri_depth: expected BxN matching pixels {tuple(pixels.shape[:2])}, got {tuple(tri_depth.shape)}"
        )
    if valid is not None and valid.shape != tri_depth.shape:
        raise ValueError(f"valid: expected shape {tuple(tri_depth.shape)}, got {tuple(valid.shape)}")
    if kind not in ("log", "relative"):
        raise ValueError(f"kind: must be 'log' or 'relative', got {kind!r}")
    s = torch.as_tensor(scale, dtype=depth.dtype, device=depth.device)
    if s.dim() == 0:
        s = s.expand(b)
    if s.shape != (b,):
        raise ValueError(f"scale: expected a float or a tensor of shape ({b},), got {tuple(s.shape)}")
    pred, inside = sample_at_pixels(depth, pixels)
    pred = pred[:, 0]
    ref = s[:, None] * tri_depth.to(depth.dtype)
    ok = inside * (pred > _MIN_DEPTH).to(depth.dtype) * (ref > _MIN_DEPTH).to(depth.dtype)
    ok = ok * torch.isfinite(ref).to(depth.dtype)
    if valid is not None:
        ok = ok * valid.to(depth.dtype)
    pred_c, ref_c = pred.clamp_min(_MIN_DEPTH), torch.nan_to_num(ref, nan=1.0).clamp_min(_MIN_DEPTH)
    if kind == "log":
        residual = (torch.log(pred_c) - torch.log(ref_c)).abs()
    else:
        residual = (pred_c - ref_c).abs() / (pred_c + ref_c)
    return finish(residual, ok, return_map)


@overload
def depth_reprojection_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def depth_reprojection_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def depth_reprojection_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def depth_reprojection_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """SC-SfMLearner geometry consistency: mean over valid p of |z_s - D_s(p')| / (z_s + D_s(p')).

    Args:
        depth_t: Bx1xHxW predicted depth of frame t; depth_s: the same for frame s (e.g. t+1).
        T_s_t: Bx4x4 ``T_source_target``: maps points of camera t into camera s (predicted pose).
        K: Bx3x3 (or 3x3) intrinsics.
        mask: optional Bx1xHxW extra mask on t's grid. Pixels landing outside image s or behind
            camera s are always excluded.
        return_map: also return D_diff (Bx1xHxW, masked), e.g. to build the weight ``1 - D_diff``.

    z_s is the depth of t's point in camera s (the "computed depth" D_t^s), D_s(p') the prediction of s
    sampled bilinearly at the pixel where that point projects.
    """
    check_bchw("depth_t", depth_t, channels=1)
    check_bchw("depth_s", depth_s, channels=1)
    check_same_hw(("depth_t", depth_t), ("depth_s", depth_s), ("mask", mask))
    b = depth_t.shape[0]
    check_pose("T_s_t", T_s_t, b)
    K = check_intrinsics("K", K, b)
    flow, z_s = rigid_flow(depth_t, T_s_t, K)
    d_s, inside = warp_by_flow(depth_s, flow)
    ok = inside * (z_s > _MIN_DEPTH).to(depth_t.dtype) * (d_s > _MIN_DEPTH).to(depth_t.dtype)
    if mask is not None:
        ok = ok * mask
    z_c, d_c = z_s.clamp_min(_MIN_DEPTH), d_s.clamp_min(_MIN_DEPTH)
    diff = (z_c - d_c).abs() / (z_c + d_c)
    return finish(diff, ok, return_map)


@overload
def rigid_flow_consistency_loss(
    rigid: torch.Tensor,
    optical: torch.Tensor,
    rigid_mask: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def rigid_flow_consistency_loss(
    rigid: torch.Tensor,
    optical: torch.Tensor,
    rigid_mask: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def rigid_flow_consistency_loss(
    rigid: torch.Tensor,
    optical: torch.Tensor,
    rigid_mask: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def rigid_flow_consistency_loss(
    rigid: torch.Tensor,
    optical: torch.Tensor,
    rigid_mask: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """Rigid-flow vs optical-flow consistency: mean over the rigid mask of |F_rigid - F_opt|_1 (pixels).

    Args:
        rigid: Bx2xHxW flow induced by depth + pose (``geometry.warp.rigid_flow``).
        optical: Bx2xHxW optical flow in the same direction.
        rigid_mask: Bx1xHxW mask (hard or soft) of static-scene pixels, e.g. the two-view module's
            epipolar rigid mask or an fb-consistency mask; None = every pixel.
        return_map: also return the masked per-pixel |dx| + |dy|.

    Gradients reach both flows; detach one of them to use the other as a fixed teacher.
    """
    check_bchw("rigid", rigid, channels=2)
    check_bchw("optical", optical, channels=2)
    check_same_hw(("rigid", rigid), ("optical", optical), ("rigid_mask", rigid_mask))
    per_pixel = (rigid - optical).abs().sum(dim=1, keepdim=True)
    return finish(per_pixel, rigid_mask, return_map)
