"""Small building blocks shared by the decoders (kept here so every decoder pads and activates alike)."""
from __future__ import annotations

from typing import Literal

import torch.nn.functional as F
from torch import Tensor, nn


class Conv3x3(nn.Module):
    """3x3 convolution, stride 1, output size = input size.

    ``pad_mode="reflect"`` reproduces Monodepth2 (fewer border artefacts in disparity); ``"zeros"``
    folds the padding into the convolution, which saves one full-tensor copy per layer on CPU.
    """

    def __init__(self, in_ch: int, out_ch: int, pad_mode: str = "zeros", bias: bool = True) -> None:
        super().__init__()
        if pad_mode not in ("zeros", "reflect"):
            raise ValueError(f"pad_mode must be 'zeros' or 'reflect', got {pad_mode!r}")
        mode: Literal["zeros", "reflect"] = "reflect" if pad_mode == "reflect" else "zeros"
        self.conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias, padding_mode=mode)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class ConvELU(nn.Module):
    """``Conv3x3`` followed by ELU: the Monodepth2 decoder block (ELU keeps small negative responses)."""

    def __init__(self, in_ch: int, out_ch: int, pad_mode: str = "zeros") -> None:
        super().__init__()
        self.conv = Conv3x3(in_ch, out_ch, pad_mode)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.conv(x))


def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """Convolution + BatchNorm + ReLU (the block the IDCE/HAM paper uses for its modules)."""
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU(inplace=True),
    )


def conv_lrelu(in_ch: int, out_ch: int, kernel: int = 3) -> nn.Sequential:
    """Convolution + LeakyReLU(0.1): the PWC-Net estimator block (no normalisation in flow nets)."""
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel, 1, kernel // 2), nn.LeakyReLU(0.1, inplace=True))


def upsample2(x: Tensor) -> Tensor:
    """Nearest-neighbour x2 upsampling (Monodepth2 decoder)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def resize_like(x: Tensor, size: tuple[int, int], mode: str = "bilinear") -> Tensor:
    """Resize ``x`` to ``size`` (H, W); bilinear without corner alignment, matching pixel-centre scaling."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode=mode, align_corners=False)
