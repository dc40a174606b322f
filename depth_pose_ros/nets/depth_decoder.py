"""Monodepth2-style multi-scale disparity decoder and the sigmoid -> metric depth mapping.

The decoder walks the pyramid from stride 32 upwards: at each stage a 3x3 conv, x2 nearest
upsampling, concatenation with the encoder skip of that stride, another 3x3 conv, and (at the four
finest stages) a 3x3 disparity head with a sigmoid. ``finest_level=0`` ends at full resolution like
Monodepth2; ``finest_level=1`` ends at stride 2 and skips the two full-resolution convolutions, which
are the single most expensive layers of the Monodepth2 decoder on a CPU — the model upsamples that
map to the input size instead.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from depth_pose_ros.nets.blocks import Conv3x3, ConvELU, upsample2

NUM_DEPTH_SCALES = 4


def sigmoid_to_depth(sigmoid: Tensor, min_depth: float, max_depth: float) -> Tensor:
    """Map a sigmoid output in [0, 1] to depth in [min_depth, max_depth] metres.

    Interpolating linearly in *inverse* depth (Monodepth2) gives the network equal resolution per
    pixel of disparity, i.e. fine steps near the camera where parallax is large:
    ``depth = 1 / (1/max + (1/min - 1/max) * sigmoid)``.
    """
    if not 0.0 < min_depth < max_depth:
        raise ValueError(f"need 0 < min_depth < max_depth, got {min_depth}, {max_depth}")
    min_disp = 1.0 / max_depth
    max_disp = 1.0 / min_depth
    return 1.0 / (min_disp + (max_disp - min_disp) * sigmoid)


class DepthDecoder(nn.Module):
    """U-Net decoder producing ``NUM_DEPTH_SCALES`` sigmoid disparity maps, finest first.

    Args:
        enc_channels: channels of the 5 encoder levels (strides 2..32).
        dec_channels: decoder channels per level (strides 1, 2, 4, 8, 16 — Monodepth2 indexing, where
            level i of the decoder has stride 2**i).
        finest_level: 0 (last stage at full resolution) or 1 (last stage at stride 2).
        pad_mode: "reflect" (Monodepth2) or "zeros" (faster on CPU).
    """

    def __init__(
        self,
        enc_channels: tuple[int, ...],
        dec_channels: tuple[int, ...] = (16, 32, 64, 128, 256),
        finest_level: int = 0,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__()
        if len(enc_channels) != 5 or len(dec_channels) != 5:
            raise ValueError(
                f"depth decoder needs 5 encoder and 5 decoder channel counts, got {enc_channels}, "
                f"{dec_channels}"
            )
        if finest_level not in (0, 1):
            raise ValueError(f"depth decoder finest_level must be 0 or 1, got {finest_level}")
        self.finest_level = finest_level
        self.stages = list(range(4, finest_level - 1, -1))  # decoder levels, coarse -> fine
        self.disp_levels = self.stages[-NUM_DEPTH_SCALES:]  # the four finest, coarse -> fine
        self.upconv0 = nn.ModuleDict()
        self.upconv1 = nn.ModuleDict()
        self.disp = nn.ModuleDict()
        in_ch = enc_channels[4]
        for i in self.stages:
            self.upconv0[str(i)] = ConvELU(in_ch, dec_channels[i], pad_mode)
            # encoder level i-1 has stride 2**i, the stride this stage is upsampled to
            skip = enc_channels[i - 1] if i > 0 else 0
            self.upconv1[str(i)] = ConvELU(dec_channels[i] + skip, dec_channels[i], pad_mode)
            in_ch = dec_channels[i]
            if i in self.disp_levels:
                self.disp[str(i)] = Conv3x3(dec_channels[i], 1, pad_mode)

    @property
    def disp_strides(self) -> tuple[int, ...]:
        """Strides of the returned maps, finest first (before any upsampling by the caller)."""
        return tuple(2**i for i in reversed(self.disp_levels))

    def forward(self, features: list[Tensor]) -> list[Tensor]:
        """Return sigmoid disparities in [0, 1], finest first, at ``disp_strides``."""
        x = features[4]
        outputs: list[Tensor] = []
        for i in self.stages:
            x = upsample2(self.upconv0[str(i)](x))
            if i > 0:
                x = torch.cat([x, features[i - 1]], dim=1)
            x = self.upconv1[str(i)](x)
            if i in self.disp_levels:
                outputs.append(torch.sigmoid(self.disp[str(i)](x).float()))  # fp32 even under autocast
        return outputs[::-1]
