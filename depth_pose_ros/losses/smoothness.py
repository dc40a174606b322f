"""Edge-aware smoothness regularisers for inverse depth and optical flow.

Photometric losses say nothing in textureless regions, so the predictions there are regularised to
be smooth *except* across image edges, where depth and motion boundaries usually are:

    depth (Godard et al. 2017/2019; han2021 eq. 6):
        L_s = mean |d_x d*| e^{-|d_x I|} + mean |d_y d*| e^{-|d_y I|},   d* = d / mean(d)
    flow, first order:   mean |d_x F| e^{-lambda |d_x I|} + (same in y)
    flow, second order:  mean |d_xx F| e^{-lambda |d_x I|} + (same in y)

Mean-normalising the inverse depth d makes the depth term invariant to the global scale of the
prediction, which would otherwise let the network shrink depth to make the regulariser vanish.
The second-order flow term penalises curvature, not slope, so it leaves the smoothly varying flow of a
rigid scene (a linear ramp on a plane under translation) unpenalised. Image gradients are averaged over
channels. Images are expected in [0, 1].
"""
from __future__ import annotations

from typing import Literal, Optional, overload

import torch

from depth_pose_ros.losses.reduction import LossOut, check_bchw, check_same_hw, masked_mean


def _dx(x: torch.Tensor) -> torch.Tensor:
    """Forward difference along x: BxCxHx(W-1)."""
    return x[..., :, 1:] - x[..., :, :-1]


def _dy(x: torch.Tensor) -> torch.Tensor:
    """Forward difference along y: BxCx(H-1)xW."""
    return x[..., 1:, :] - x[..., :-1, :]


def _image_weights(image: torch.Tensor, edge_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-stopping weights exp(-lambda |dI|) along x (BxHx(W-1)) and y, channel-averaged."""
    wx = torch.exp(-edge_weight * _dx(image).abs().mean(dim=1, keepdim=True))
    wy = torch.exp(-edge_weight * _dy(image).abs().mean(dim=1, keepdim=True))
    return wx, wy


def _to_map(term_x: torch.Tensor, term_y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Place the x and y terms (channel-summed) on a Bx1xHxW grid for visualisation (zero-padded)."""
    out = term_x.new_zeros(term_x.shape[0], 1, h, w)
    out[..., :, : term_x.shape[-1]] += term_x.sum(dim=1, keepdim=True)
    out[..., : term_y.shape[-2], :] += term_y.sum(dim=1, keepdim=True)
    return out


def _pair_mask(mask: Optional[torch.Tensor], axis: str) -> Optional[torch.Tensor]:
    """A difference is used only where both of its pixels are inside ``mask``."""
    if mask is None:
        return None
    if axis == "x":
        return mask[..., :, 1:] * mask[..., :, :-1]
    return mask[..., 1:, :] * mask[..., :-1, :]


@overload
def edge_aware_smoothness(
    disp: torch.Tensor,
    image: torch.Tensor,
    normalise: bool = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def edge_aware_smoothness(
    disp: torch.Tensor,
    image: torch.Tensor,
    normalise: bool = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def edge_aware_smoothness(
    disp: torch.Tensor,
    image: torch.Tensor,
    normalise: bool = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def edge_aware_smoothness(
    disp: torch.Tensor,
    image: torch.Tensor,
    normalise: bool = True,
    edge_weight: float = 1.0,
    mask: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """Monodepth2 edge-aware first-order smoothness of inverse depth (disparity).

    L_s = mean_x |d_x d*| e^{-lambda |d_x I|} + mean_y |d_y d*| e^{-lambda |d_y I|},  d* = d / mean_HW(d)

    Args:
        disp: Bx1xHxW inverse depth (or disparity), positive.
        image: BxCxHxW image of the same size (in [0, 1]).
        normalise: divide by the per-image mean first (scale invariance; Monodepth2 default).
        edge_weight: lambda; 1 in Monodepth2.
        mask: optional Bx1xHxW region to regularise (a difference counts if both pixels are in it).
        return_map: also return a Bx1xHxW map of the summed x and y terms (for display only; its mean
            differs from the loss because the two terms have different sizes).

    A constant disparity gives 0; the ramp d = a x + b on a flat image gives a / mean(d).
    """
    check_bchw("disp", disp, channels=1)
    check_bchw("image", image)
    check_same_hw(("disp", disp), ("image", image), ("mask", mask))
    if normalise:
        disp = disp / (disp.mean(dim=(2, 3), keepdim=True) + 1e-7)
    wx, wy = _image_weights(image, edge_weight)
    term_x = _dx(disp).abs() * wx
    term_y = _dy(disp).abs() * wy
    loss = masked_mean(term_x, _pair_mask(mask, "x")) + masked_mean(term_y, _pair_mask(mask, "y"))
    if not return_map:
        return loss
    return loss, _to_map(term_x, term_y, disp.shape[-2], disp.shape[-1])


@overload
def flow_smoothness(
    flow: torch.Tensor,
    image: torch.Tensor,
    order: int = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def flow_smoothness(
    flow: torch.Tensor,
    image: torch.Tensor,
    order: int = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def flow_smoothness(
    flow: torch.Tensor,
    image: torch.Tensor,
    order: int = ...,
    edge_weight: float = ...,
    mask: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def flow_smoothness(
    flow: torch.Tensor,
    image: torch.Tensor,
    order: int = 1,
    edge_weight: float = 10.0,
    mask: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """Edge-aware first- or second-order smoothness of a Bx2xHxW flow field.

    order 1: mean |d_x F| e^{-lambda |d_x I|} + mean |d_y F| e^{-lambda |d_y I|}
    order 2: mean |F(x-1) - 2F(x) + F(x+1)| e^{-lambda |d_x I|} + (same in y), the image weight taken
             at the centre pixel's forward difference.
    Means run over pixels and both flow components. ``edge_weight`` (lambda) multiplies image
    gradients of images in [0, 1]: 10 makes a 0.1 intensity step halve the penalty roughly 3x, the
    strength commonly used for flow, stronger than for depth because flow boundaries are sharper.
    A linear flow ramp F = (a x, 0) on a flat image gives a / 2 (order 1) and exactly 0 (order 2).
    """
    check_bchw("flow", flow, channels=2)
    check_bchw("image", image)
    check_same_hw(("flow", flow), ("image", image), ("mask", mask))
    if order not in (1, 2):
        raise ValueError(f"order: must be 1 or 2, got {order}")
    wx, wy = _image_weights(image, edge_weight)
    if order == 1:
        term_x = _dx(flow).abs() * wx
        term_y = _dy(flow).abs() * wy
        mx, my = _pair_mask(mask, "x"), _pair_mask(mask, "y")
    else:
        if flow.shape[-1] < 3 or flow.shape[-2] < 3:
            raise ValueError(f"flow: order-2 smoothness needs at least 3x3 pixels, got {tuple(flow.shape)}")
        term_x = _dx(_dx(flow)).abs() * wx[..., :, 1:]
        term_y = _dy(_dy(flow)).abs() * wy[..., 1:, :]
        mx = None if mask is None else mask[..., :, :-2] * mask[..., :, 1:-1] * mask[..., :, 2:]
        my = None if mask is None else mask[..., :-2, :] * mask[..., 1:-1, :] * mask[..., 2:, :]
    loss = masked_mean(term_x, mx) + masked_mean(term_y, my)
    if not return_map:
        return loss
    return loss, _to_map(term_x, term_y, flow.shape[-2], flow.shape[-1])
