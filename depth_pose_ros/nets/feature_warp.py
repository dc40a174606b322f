"""Backward warping of feature maps by a flow field (the flow decoder's warp).

Samples ``src`` at ``p + flow(p)`` through the project's one sampler, ``geometry.warp.sample_at``
(pixel centres at integer coordinates, ``align_corners=True``). It differs from
``geometry.warp.warp_by_flow`` in two deliberate settings: outside points read zeros (a feature from
beyond the image must not look like the border's), and the grid keeps the flow's dtype (fp32, the
decoder accumulates flow in fp32) when the features are bf16 under autocast. No validity mask is
built: the decoder does not use one.
"""
from __future__ import annotations

import torch
from torch import Tensor

from depth_pose_ros.geometry.warp import sample_at


def warp_features(src: Tensor, flow: Tensor) -> Tensor:
    """Sample ``src`` (BxCxHxW) at ``p + flow(p)`` (flow Bx2xHxW in pixels); outside reads as 0."""
    h, w = src.shape[-2:]
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w)
    pix = torch.stack([xs + flow[:, 0], ys + flow[:, 1]], dim=1)
    return sample_at(src, pix, padding="zeros", grid_dtype=flow.dtype)
