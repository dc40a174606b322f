"""Backward warping of feature maps by a flow field (private to the flow decoder).

Same sampling convention as ``depth_pose_ros.geometry.warp.warp_by_flow`` (samples ``src`` at
``p + flow(p)`` with pixel centres at integer coordinates, ``align_corners=True``); kept here because
the decoder only needs the warped features, not the validity mask, and must export to ONNX.
TODO(lead): switch to geometry.warp.warp_by_flow once it exists, if its extra mask costs nothing.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def warp_features(src: Tensor, flow: Tensor) -> Tensor:
    """Sample ``src`` (BxCxHxW) at ``p + flow(p)`` (flow Bx2xHxW in pixels); outside reads as 0."""
    b, _, h, w = src.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    # pixel -> [-1, 1] with align_corners=True: x_n = 2 x / (W - 1) - 1 (guard 1-pixel-wide maps)
    gx = (xs + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
