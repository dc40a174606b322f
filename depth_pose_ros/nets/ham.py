"""High-dimensional attention module (HAM) of Wang et al. (IDCE + HAM paper, eqs. 7-8).

``x' = beta * s . F_v(x) + x`` with ``s_ij = exp(-||F_k(x)_i - F_q(x)_j||^2 / (2 delta^2))``: a
Gaussian-kernel (rather than dot-product) similarity between every pair of positions i, j of the
pose feature map, which the paper motivates as implicitly matching all polynomial orders of the
descriptors (eq. 9-11). ``beta`` starts at 0 so that the module is exactly the identity at
initialisation and the pose network trains as the baseline until the attention becomes useful.

Two choices the paper leaves open, made here so that the kernel is not numerically degenerate:
* the squared distance is the *mean* over channels, not the sum — with C=256 post-ReLU channels the
  summed distance is O(100) and ``exp(-d / 0.5)`` would be 0 for every pair;
* ``s . V`` is divided by the number of positions N, so the attended feature is an average weighted
  by similarity in [0, 1] and its magnitude does not grow with the input resolution.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from depth_pose_ros.nets.blocks import conv_bn_relu


class HighDimAttention(nn.Module):
    """Gaussian-kernel position attention with a learnable residual gain ``beta`` (init 0)."""

    def __init__(self, channels: int, delta: float = 0.5) -> None:
        super().__init__()
        if delta <= 0:
            raise ValueError(f"HAM delta must be > 0, got {delta}")
        self.delta = float(delta)
        self.key = conv_bn_relu(channels, channels, 3)
        self.query = conv_bn_relu(channels, channels, 3)
        self.value = conv_bn_relu(channels, channels, 3)
        self.beta = nn.Parameter(torch.zeros(1))

    def similarity(self, x: Tensor) -> Tensor:
        """``s`` of eq. 8 as a BxNxN matrix (rows: key positions, columns: query positions), in [0, 1]."""
        b, c = x.shape[:2]
        k = self.key(x).flatten(2)  # B x C x N
        q = self.query(x).flatten(2)
        k2 = (k * k).sum(1).unsqueeze(2)  # B x N x 1
        q2 = (q * q).sum(1).unsqueeze(1)  # B x 1 x N
        dist = (k2 + q2 - 2.0 * torch.bmm(k.transpose(1, 2), q)).clamp_min(0.0) / c
        return torch.exp(-dist / (2.0 * self.delta**2))

    def forward(self, x: Tensor) -> Tensor:
        s = self.similarity(x)
        v = self.value(x).flatten(2)  # B x C x N
        n = v.shape[2]
        attended = torch.bmm(v, s.transpose(1, 2)) / n  # out_i = sum_j s_ij v_j / N
        return self.beta * attended.view_as(x) + x
