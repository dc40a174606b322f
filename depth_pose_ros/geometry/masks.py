"""Occlusion and reliability masks from a pair of flows.

Two complementary cues, both used by the losses and by the two-view pose module:

* Forward-backward consistency (UnFlow, Meister et al. 2018): a pixel visible in both frames has
  ``f_fw(p) + f_bw(p + f_fw(p)) ~ 0``; the residual is a per-pixel reliability score, and the
  relative threshold ``|residual|^2 > alpha1 (|f_fw|^2 + |f_bw|^2) + alpha2`` marks occlusions
  (the tolerance grows with motion because large flows are less accurate).
* Range map (Wang et al. 2018, used as eq. 1 of Fang et al.): forward-splat every pixel of image 2
  to where the backward flow sends it in image 1 with bilinear weights. Pixels of image 1 that no
  pixel of image 2 lands on (range ~ 0) have no correspondence, i.e. are occluded in image 2.
  Unlike the fb check it needs only the backward flow and is differentiable with respect to it.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from depth_pose_ros.geometry.camera import pixel_grid
from depth_pose_ros.geometry.warp import warp_by_flow


def _check_flow(flow: torch.Tensor, name: str) -> None:
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name} must be a Bx2xHxW flow, got shape {tuple(flow.shape)}")


def fb_consistency(flow_fw: torch.Tensor, flow_bw: torch.Tensor, alpha1: float = 0.01,
                   alpha2: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-backward consistency of ``flow_fw`` (1->2) and ``flow_bw`` (2->1), on image 1's grid.

    Returns:
        ``(inconsistency, non_occluded)``, both Bx1xHxW: inconsistency is
        ``|f_fw(p) + f_bw(p + f_fw(p))|`` in pixels; non_occluded is float {0, 1}, 1 where the
        UnFlow test passes *and* ``p + f_fw(p)`` lies inside image 2 (a pixel leaving the view has
        no correspondence either, and its border-clamped sample would make the test meaningless).
    """
    _check_flow(flow_fw, "fb_consistency: flow_fw")
    _check_flow(flow_bw, "fb_consistency: flow_bw")
    if flow_fw.shape != flow_bw.shape:
        raise ValueError(f"fb_consistency: flow_fw {tuple(flow_fw.shape)} and flow_bw "
                         f"{tuple(flow_bw.shape)} must have the same shape")
    bw_at_fw, inside = warp_by_flow(flow_bw, flow_fw)
    diff = flow_fw + bw_at_fw
    sq = (diff * diff).sum(1, keepdim=True)
    mag = (flow_fw * flow_fw).sum(1, keepdim=True) + (bw_at_fw * bw_at_fw).sum(1, keepdim=True)
    consistent = (sq <= alpha1 * mag + alpha2).to(flow_fw.dtype)
    # sqrt of a clamped value: finite gradient where the flows agree exactly.
    inconsistency = torch.sqrt(sq.clamp(min=1e-12))
    return inconsistency, consistent * inside


def fb_consistency_np(flow_fw: np.ndarray, flow_bw: np.ndarray, alpha1: float = 0.01,
                      alpha2: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV twin of :func:`fb_consistency` for HxWx2 numpy flows -> (HxW float32, HxW bool).

    Same definition (bilinear sample of ``flow_bw`` at ``p + flow_fw(p)`` with border clamping,
    same UnFlow test, same in-image condition), but the sample is ``cv2.remap``, whose bilinear
    weights are fixed-point (1/32 pixel steps): values differ from the torch version by at most
    1/64 of the flow difference between neighbouring pixels, far below flow noise. It exists for
    the per-frame pose path, where it is much faster than torch on a CPU and needs no torch threads
    (which stall badly when the cores are shared; docs/bench_geometry.md, engineering notes).
    """
    fw = np.asarray(flow_fw, dtype=np.float32)
    bw = np.asarray(flow_bw, dtype=np.float32)
    if fw.ndim != 3 or fw.shape[2] != 2 or fw.shape != bw.shape:
        raise ValueError(f"fb_consistency_np: flow_fw and flow_bw must both be HxWx2, got {fw.shape} and "
                         f"{bw.shape}")
    h, w = fw.shape[:2]
    map_x = fw[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    map_y = fw[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    bw_at_fw = cv2.remap(bw, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    dx = fw[..., 0] + bw_at_fw[..., 0]
    dy = fw[..., 1] + bw_at_fw[..., 1]
    sq = dx * dx + dy * dy
    mag = fw[..., 0] ** 2 + fw[..., 1] ** 2 + bw_at_fw[..., 0] ** 2 + bw_at_fw[..., 1] ** 2
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    return np.sqrt(np.maximum(sq, np.float32(1e-12))), (sq <= alpha1 * mag + alpha2) & inside


def range_map(flow_bw: torch.Tensor) -> torch.Tensor:
    """Range map of image 1 from the backward flow ``F_21`` (Bx2xHxW, defined on image 2's grid).

    Every pixel q of image 2 deposits bilinear weights summing to 1 on the four pixels of image 1
    around ``q + F_21(q)``: ``R(p) = sum_q max(0, 1-|p_x - q'_x|) max(0, 1-|p_y - q'_y|)``. Weights
    falling outside image 1 are dropped. Returns Bx1xHxW; ~1 for matched pixels, ~0 where occluded.
    """
    _check_flow(flow_bw, "range_map: flow_bw")
    b, _, h, w = flow_bw.shape
    target = pixel_grid(h, w, device=flow_bw.device, dtype=flow_bw.dtype) + flow_bw
    # Non-finite flow (e.g. from invalid pixels) must not become a scatter index: send it off-image.
    target = torch.nan_to_num(target, nan=-2.0, posinf=-2.0, neginf=-2.0)
    x, y = target[:, 0].reshape(b, -1), target[:, 1].reshape(b, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    out = torch.zeros(b, h * w, dtype=flow_bw.dtype, device=flow_bw.device)
    for dx in (0.0, 1.0):
        for dy in (0.0, 1.0):
            xi, yi = x0 + dx, y0 + dy
            # Bilinear weight of this corner; differentiable in the flow.
            weight = (1.0 - (x - xi).abs()).clamp(min=0) * (1.0 - (y - yi).abs()).clamp(min=0)
            ok = (xi >= 0) & (xi <= w - 1) & (yi >= 0) & (yi <= h - 1)
            index = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).long()
            out = out.scatter_add(1, index, torch.where(ok, weight, torch.zeros_like(weight)))
    return out.reshape(b, 1, h, w)


def occlusion_from_range(range_map: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Non-occlusion mask (float {0, 1}, Bx1xHxW): 1 where the range value is >= ``threshold``.

    For a soft, differentiable version use ``range_map.clamp(max=1)`` (Fang et al.'s ``min(1, R)``).
    """
    if range_map.dim() != 4 or range_map.shape[1] != 1:
        raise ValueError(f"occlusion_from_range: range_map must be Bx1xHxW, got {tuple(range_map.shape)}")
    return (range_map >= threshold).to(range_map.dtype)
