"""Unsupervised optical-flow losses: occlusion-masked photometric warp loss and forward-backward consistency.

Flow convention: ``flow_t_s`` is Bx2xHxW on the grid of image t and points into image s (pixel p of t
is seen at p + flow_t_s(p) in s); ``flow_s_t`` is the reverse flow on the grid of s.

    L_photo = mean_{p: M(p)} pe(I_t(p), I_s(p + F_ts(p)))                  (UnFlow / Wang et al. 2018)
    L_fb    = mean_{p: M(p)} |F_ts(p) + F_st(p + F_ts(p))|_1                (UnFlow, GeoNet)

The occlusion mask M removes pixels of t that are not visible in s, where no flow can make the
photometric error small and the network would be pushed to hallucinate matches. Two estimates are
available from ``depth_pose_ros.geometry.masks`` and combined by :func:`flow_occlusion_mask`: the fb test
(needs both flows, threshold on the residual) and the range map of the reverse flow (Fang et al. eq. 1).
Smoothness lives in :mod:`depth_pose_ros.losses.smoothness` (``flow_smoothness``).
"""
from __future__ import annotations

from typing import Literal, Optional, overload

import torch

from depth_pose_ros.geometry.masks import fb_consistency, occlusion_from_range, range_map
from depth_pose_ros.geometry.warp import warp_by_flow
from depth_pose_ros.losses.photometric import DEFAULT_ALPHA, photometric_error
from depth_pose_ros.losses.reduction import LossOut, check_bchw, check_same_hw, finish


def flow_occlusion_mask(
    flow_t_s: torch.Tensor,
    flow_s_t: torch.Tensor,
    method: str = "fb",
    alpha1: float = 0.01,
    alpha2: float = 0.5,
    range_threshold: Optional[float] = 0.5,
) -> torch.Tensor:
    """Non-occlusion mask of image t (Bx1xHxW, 1 = visible in s), detached (a mask, not a target).

    method: ``"fb"`` forward-backward test (alpha1, alpha2 as UnFlow; also 0 where p + F leaves the
    image), ``"range"`` range map of ``flow_s_t`` (thresholded at ``range_threshold``, or the soft
    ``min(1, R)`` of Fang eq. 1 when it is None), ``"both"`` their product.
    """
    check_bchw("flow_t_s", flow_t_s, channels=2)
    check_bchw("flow_s_t", flow_s_t, channels=2)
    check_same_hw(("flow_t_s", flow_t_s), ("flow_s_t", flow_s_t))
    if method not in ("fb", "range", "both"):
        raise ValueError(f"method: must be 'fb', 'range' or 'both', got {method!r}")
    with torch.no_grad():
        mask = torch.ones_like(flow_t_s[:, :1])
        if method in ("fb", "both"):
            mask = mask * fb_consistency(flow_t_s, flow_s_t, alpha1, alpha2)[1]
        if method in ("range", "both"):
            r = range_map(flow_s_t)
            visible = r.clamp(max=1.0) if range_threshold is None else occlusion_from_range(r, range_threshold)
            mask = mask * visible
    return mask


@overload
def flow_photometric_loss(
    target: torch.Tensor,
    source: torch.Tensor,
    flow_t_s: torch.Tensor,
    non_occluded: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def flow_photometric_loss(
    target: torch.Tensor,
    source: torch.Tensor,
    flow_t_s: torch.Tensor,
    non_occluded: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def flow_photometric_loss(
    target: torch.Tensor,
    source: torch.Tensor,
    flow_t_s: torch.Tensor,
    non_occluded: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: bool = ...,
) -> LossOut: ...


def flow_photometric_loss(
    target: torch.Tensor,
    source: torch.Tensor,
    flow_t_s: torch.Tensor,
    non_occluded: Optional[torch.Tensor] = None,
    alpha: float = DEFAULT_ALPHA,
    return_map: bool = False,
) -> LossOut:
    """Photometric loss of the flow warp: mean over M of pe(I_t, I_s warped by ``flow_t_s``).

    Args:
        target: Bx3xHxW image t; source: Bx3xHxW image s (in [0, 1]).
        flow_t_s: Bx2xHxW flow from t into s.
        non_occluded: optional Bx1xHxW mask (hard or soft) of pixels of t visible in s, e.g. from
            :func:`flow_occlusion_mask`. Pixels whose sample leaves image s are always excluded.
        alpha: SSIM weight of the photometric error.
        return_map: also return the masked per-pixel error.
    """
    check_bchw("target", target)
    check_bchw("flow_t_s", flow_t_s, channels=2)
    check_same_hw(
        ("target", target), ("source", source), ("flow_t_s", flow_t_s), ("non_occluded", non_occluded)
    )
    warped, valid = warp_by_flow(source, flow_t_s)
    mask = valid if non_occluded is None else valid * non_occluded
    return finish(photometric_error(warped, target, alpha), mask, return_map)


@overload
def fb_consistency_loss(
    flow_t_s: torch.Tensor,
    flow_s_t: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def fb_consistency_loss(
    flow_t_s: torch.Tensor,
    flow_s_t: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def fb_consistency_loss(
    flow_t_s: torch.Tensor,
    flow_s_t: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def fb_consistency_loss(
    flow_t_s: torch.Tensor,
    flow_s_t: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """Forward-backward consistency loss: mean over M of |F_ts(p) + F_st(p + F_ts(p))|_1 (pixels).

    Exact inverse flows give 0. ``mask`` (Bx1xHxW) should hold the non-occluded pixels (occluded pixels
    legitimately have no inverse); pixels whose sample leaves image s are always excluded. The L1 norm
    sums |dx| + |dy|. Gradients flow into both flows.
    """
    check_bchw("flow_t_s", flow_t_s, channels=2)
    check_bchw("flow_s_t", flow_s_t, channels=2)
    check_same_hw(("flow_t_s", flow_t_s), ("flow_s_t", flow_s_t), ("mask", mask))
    back, inside = warp_by_flow(flow_s_t, flow_t_s)
    per_pixel = (flow_t_s + back).abs().sum(dim=1, keepdim=True)
    m = inside if mask is None else inside * mask
    return finish(per_pixel, m, return_map)


def teacher_confidence(teacher_t_s: torch.Tensor, teacher_s_t: torch.Tensor, alpha1: float = 0.01,
                       alpha2: float = 0.5) -> torch.Tensor:
    """Bx1xHxW confidence of a teacher flow t -> s (e.g. classical DIS): 0 where its forward-backward
    check fails or the match leaves image s, else ``1 / (1 + inconsistency in px)``. Detached: the
    teacher is a label-free target, not something to train."""
    inconsistency, consistent = fb_consistency(teacher_t_s.detach(), teacher_s_t.detach(), alpha1, alpha2)
    return (consistent / (1.0 + inconsistency)).detach()


@overload
def flow_distillation_loss(
    flow_t_s: torch.Tensor,
    teacher_t_s: torch.Tensor,
    confidence: torch.Tensor,
    q: float = ...,
    eps: float = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def flow_distillation_loss(
    flow_t_s: torch.Tensor,
    teacher_t_s: torch.Tensor,
    confidence: torch.Tensor,
    q: float = ...,
    eps: float = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def flow_distillation_loss(
    flow_t_s: torch.Tensor,
    teacher_t_s: torch.Tensor,
    confidence: torch.Tensor,
    q: float = ...,
    eps: float = ...,
    return_map: bool = ...,
) -> LossOut: ...


def flow_distillation_loss(
    flow_t_s: torch.Tensor,
    teacher_t_s: torch.Tensor,
    confidence: torch.Tensor,
    q: float = 0.4,
    eps: float = 0.01,
    return_map: bool = False,
) -> LossOut:
    """Distil a teacher flow into the network: confidence-weighted robust distance (ARFlow's generalised
    Charbonnier ``(|d|_1 + eps)^q`` per pixel) between the network's flow and the teacher's, averaged over
    the confidence. Pixels where the teacher fails (confidence 0: occlusions, low texture) are left to the
    photometric and occlusion terms, so the student can end better than its teacher there.
    """
    check_bchw("flow_t_s", flow_t_s, channels=2)
    check_bchw("teacher_t_s", teacher_t_s, channels=2)
    check_same_hw(("flow_t_s", flow_t_s), ("teacher_t_s", teacher_t_s), ("confidence", confidence))
    per_pixel = ((flow_t_s - teacher_t_s.detach()).abs().sum(dim=1, keepdim=True) + eps) ** q
    return finish(per_pixel, confidence.detach(), return_map)
