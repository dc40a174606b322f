"""Local correlation cost volume (PWC-Net / FlowNet-C) in plain torch, without custom ops.

For every pixel p of ``a`` and every displacement (dx, dy) in ``[-d, d]^2`` the volume holds the
channel-mean of ``a(p) * b(p + (dx, dy))``. It is built by padding ``b`` once and multiplying ``a``
with (2d+1)^2 shifted views of it: at the sizes of our pyramid levels this shift loop was faster than
``F.unfold`` (which materialises C*(2d+1)^2 x HW) or a row-unfold + einsum variant
(``benchmarks/bench_networks.py --correlation``, docs/bench_nets.md "Cost-volume implementation"),
and it exports to ONNX as plain
Slice/Mul/ReduceSum nodes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def local_correlation(a: Tensor, b: Tensor, search_range: int) -> Tensor:
    """Cost volume B x (2d+1)^2 x H x W; channel k = (dy + d) * (2d+1) + (dx + d).

    Displacements outside ``b`` correlate with zeros. ``a`` and ``b`` are BxCxHxW of equal shape.
    """
    if a.shape != b.shape:
        raise ValueError(f"correlation inputs must have equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if search_range < 0:
        raise ValueError(f"correlation search_range must be >= 0, got {search_range}")
    d = int(search_range)
    h, w = a.shape[-2:]
    # One layout and fp32 for both operands: mixing NHWC (channels_last conv outputs) with NCHW slices,
    # or reducing in bf16, sends every one of the (2d+1)^2 products down a slow strided/convert path.
    a = a.float().contiguous()
    b_pad = F.pad(b.float().contiguous(), (d, d, d, d))
    scale = 1.0 / a.shape[1]
    volume = []
    for dy in range(2 * d + 1):
        for dx in range(2 * d + 1):
            volume.append((a * b_pad[:, :, dy : dy + h, dx : dx + w]).sum(dim=1, keepdim=True))
    return torch.cat(volume, dim=1) * scale


def displacement_of_channel(k: int, search_range: int) -> tuple[int, int]:
    """The (dx, dy) displacement that channel ``k`` of ``local_correlation`` holds."""
    size = 2 * search_range + 1
    return k % size - search_range, k // size - search_range
