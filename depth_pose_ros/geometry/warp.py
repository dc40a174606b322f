"""Inverse warping: rigid flow from depth + pose, and sampling an image at flow-displaced pixels.

Both warping losses (photometric reconstruction from depth + pose, and from optical flow), the
forward-backward flow check, the flow decoder's feature warping and the sparse depth lookups of the
geometric losses reduce to "sample an image at pixel coordinates", so there is one sampler here
(:func:`sample_at`). ``grid_sample`` is used with ``align_corners=True`` because then normalised -1 and +1
are the *centres* of the first and last pixels, which matches the project convention of pixel
centres at integer coordinates: pixel x maps to ``2 x / (W - 1) - 1`` exactly.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from depth_pose_ros.geometry.camera import backproject, invert_intrinsics, pixel_grid, project
from depth_pose_ros.geometry.se3 import transform_points


def pixels_to_grid(pix: torch.Tensor, size: Optional[tuple[int, int]] = None) -> torch.Tensor:
    """Bx2xHxW absolute pixel coordinates -> BxHxWx2 normalised ``grid_sample`` grid.

    The normalisation uses ``size`` (H, W of the sampled image), by default the H, W of ``pix``
    (dense warps sample an image of the grid's own size); ``align_corners=True`` semantics: pixel 0
    -> -1, pixel W-1 -> +1. Non-finite coordinates (from a diverged network output) become a point
    outside the image: ``grid_sample``'s CPU backward can crash the process on NaN grids, and such
    samples are masked as invalid anyway.
    """
    if pix.dim() != 4 or pix.shape[1] != 2:
        raise ValueError(f"pixels_to_grid: expected Bx2xHxW pixels, got {tuple(pix.shape)}")
    h, w = pix.shape[-2:] if size is None else size
    gx = pix[:, 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = pix[:, 1] * (2.0 / max(h - 1, 1)) - 1.0
    return torch.nan_to_num(torch.stack((gx, gy), dim=-1), nan=-2.0, posinf=-2.0, neginf=-2.0)


def sample_at(image: torch.Tensor, pix: torch.Tensor, padding: str = "border",
              grid_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """Bilinear sample of ``image`` (BxCxHxW) at absolute pixel coordinates ``pix`` (Bx2xH'xW', x then y).

    The one ``grid_sample`` of the project (pixel centres at integers, ``align_corners=True``); the
    result is BxCxH'xW'. ``padding`` is what a point outside the image reads: ``"border"`` (the
    losses: values stay finite and gradients local) or ``"zeros"`` (feature warping: no content from
    outside). The grid is built in ``pix``'s dtype and cast to ``grid_dtype`` (default: the image's):
    the flow decoder passes its fp32 flow's dtype so that bf16 features under autocast are still
    sampled at sub-pixel-exact positions.
    """
    if image.dim() != 4 or pix.dim() != 4 or pix.shape[1] != 2 or image.shape[0] != pix.shape[0]:
        raise ValueError(f"sample_at: need image BxCxHxW and pixels Bx2xH'xW' of one batch, got "
                         f"{tuple(image.shape)} and {tuple(pix.shape)}")
    grid = pixels_to_grid(pix, (int(image.shape[-2]), int(image.shape[-1])))
    grid = grid.to(image.dtype if grid_dtype is None else grid_dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=True)


def inside_image(pix: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bx1xH'xW' mask in ``pix``'s dtype: 1 where the point lies within the pixel-centre hull of an HxW image."""
    x, y = pix[:, 0:1], pix[:, 1:2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    return inside.to(pix.dtype)


def warp_by_flow(src: torch.Tensor, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``src`` at ``p + flow(p)`` for every pixel p of the target grid (backward warping).

    Args:
        src: BxCxHxW image/feature map to sample (the "source" view).
        flow: Bx2xHxW flow (dx, dy) in pixels defined on the target grid, pointing into ``src``.

    Returns:
        ``(warped, valid)``: warped BxCxHxW (bilinear; outside samples clamp to the border, so
        values stay finite and gradients stay local), and valid Bx1xHxW float, 1 where the sample
        point lies inside the image (callers mask losses with it).
    """
    if src.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"warp_by_flow: need src BxCxHxW and flow Bx2xHxW, got {tuple(src.shape)} "
                         f"and {tuple(flow.shape)}")
    if src.shape[0] != flow.shape[0] or src.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"warp_by_flow: src {tuple(src.shape)} and flow {tuple(flow.shape)} must share "
                         "batch and spatial size")
    h, w = flow.shape[-2:]
    pix = pixel_grid(h, w, device=flow.device, dtype=flow.dtype) + flow
    return sample_at(src, pix, padding="border"), inside_image(pix, h, w)


def rigid_flow(depth_t: torch.Tensor, T_s_t: torch.Tensor, K: torch.Tensor,
               eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Flow induced on the target view by its depth and the camera motion.

    Args:
        depth_t: Bx1xHxW depth (z, metres) of the target view.
        T_s_t: Bx4x4 ``T_source_target``: maps target-camera points into the source camera.
        K: Bx3x3 (or 3x3) intrinsics shared by both views.
        eps: z clamp of the projection (points behind the source camera get finite pixels).

    Returns:
        ``(flow, z_s)``: flow Bx2xHxW such that target pixel p appears at ``p + flow(p)`` in the
        source image, and z_s Bx1xHxW the depth of that point in the source camera (``<= 0``: behind).
    """
    if depth_t.dim() != 4 or depth_t.shape[1] != 1:
        raise ValueError(f"rigid_flow: depth_t must be Bx1xHxW, got {tuple(depth_t.shape)}")
    if T_s_t.dim() != 3 or T_s_t.shape[1:] != (4, 4):
        raise ValueError(f"rigid_flow: T_s_t must be Bx4x4, got {tuple(T_s_t.shape)}")
    K = K.to(depth_t.dtype)
    points_t = backproject(depth_t, invert_intrinsics(K))
    points_s = transform_points(T_s_t.to(depth_t.dtype), points_t)
    pix_s, z_s = project(points_s, K, eps=eps)
    h, w = depth_t.shape[-2:]
    flow = pix_s - pixel_grid(h, w, device=depth_t.device, dtype=depth_t.dtype)
    return flow, z_s


def warp_rigid(src: torch.Tensor, depth_t: torch.Tensor, T_s_t: torch.Tensor,
               K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesise the target view from ``src`` using target depth and ``T_source_target``.

    ``T_s_t`` (Bx4x4) maps target-camera points into the source camera. Returns ``(warped, valid)``
    as in :func:`warp_by_flow`, with ``valid`` also 0 where the point falls behind the source camera.
    """
    flow, z_s = rigid_flow(depth_t, T_s_t, K)
    warped, valid = warp_by_flow(src, flow)
    return warped, valid * (z_s > 1e-6).to(valid.dtype)
