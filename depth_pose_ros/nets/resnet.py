"""ResNet-18/34/50 feature-pyramid encoder in plain torch (no torchvision).

The depth, flow and pose networks all consume the same five-level pyramid (strides 2, 4, 8, 16, 32),
so the encoder returns every level instead of a classification logit. A width multiplier thins every
stage uniformly: on a 2-core CPU the cost of a ResNet is dominated by its channel count, and a
half-width ResNet-18 is the cheapest way to keep the proven topology while meeting the frame-rate
target (see docs/bench_nets.md).
"""
from __future__ import annotations

from torch import Tensor, nn

# Blocks per stage for each supported depth (He et al. 2016, table 1).
_STAGE_BLOCKS: dict[int, tuple[int, int, int, int]] = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
}
_BASE_WIDTHS = (64, 128, 256, 512)

NUM_LEVELS = 5
LEVEL_STRIDES = (2, 4, 8, 16, 32)


def _scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier, at least 8 and a multiple of 8 (SIMD friendly)."""
    return max(8, int(round(channels * width / 8.0)) * 8)


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module | None:
    """Projection shortcut (1x1 conv + BN) where the residual changes size or width; None: identity."""
    if stride == 1 and in_ch == out_ch:
        return None
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride, bias=False), nn.BatchNorm2d(out_ch))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut: ResNet-18/34."""

    expansion = 1

    def __init__(self, in_ch: int, mid_ch: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = mid_ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4) with a shortcut: ResNet-50. Stride sits on the 3x3 (v1.5)."""

    expansion = 4

    def __init__(self, in_ch: int, mid_ch: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = mid_ch * self.expansion
        self.conv1 = nn.Conv2d(in_ch, mid_ch, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid_ch)
        self.conv2 = nn.Conv2d(mid_ch, mid_ch, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid_ch)
        self.conv3 = nn.Conv2d(mid_ch, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def resnet_channels(depth: int, width: float = 1.0) -> tuple[int, ...]:
    """Channel counts of the five pyramid levels of ``ResNetEncoder(depth, width)``.

    Exposed so that decoders can be sized from a config without instantiating an encoder.
    """
    if depth not in _STAGE_BLOCKS:
        raise ValueError(f"encoder depth must be one of {sorted(_STAGE_BLOCKS)}, got {depth}")
    if width <= 0:
        raise ValueError(f"encoder width multiplier must be > 0, got {width}")
    expansion = Bottleneck.expansion if depth >= 50 else BasicBlock.expansion
    stem = _scaled(64, width)
    return (stem,) + tuple(_scaled(c, width) * expansion for c in _BASE_WIDTHS)


class ResNetEncoder(nn.Module):
    """ResNet trunk returning the 5-level pyramid ``[s2, s4, s8, s16, s32]``.

    Level 0 is the stem output (7x7/2 conv + BN + ReLU, before the max-pool), levels 1-4 the four
    residual stages, as in Monodepth2, so skip connections exist at every scale the depth decoder
    needs. ``in_channels`` is 1 (gray), 3 (RGB), or 2/6 for a two-frame pose encoder. Inputs must
    have H and W divisible by 32 so that every level has an exact integer size.
    """

    def __init__(self, depth: int = 18, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"encoder in_channels must be >= 1, got {in_channels}")
        self.depth = depth
        self.width = width
        self.in_channels = in_channels
        self.channels: tuple[int, ...] = resnet_channels(depth, width)
        block: type[BasicBlock] | type[Bottleneck] = Bottleneck if depth >= 50 else BasicBlock

        stem = self.channels[0]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        in_ch = stem
        stages = []
        for i, (n_blocks, base) in enumerate(zip(_STAGE_BLOCKS[depth], _BASE_WIDTHS)):
            mid = _scaled(base, width)
            blocks: list[nn.Module] = []
            for j in range(n_blocks):
                stride = 2 if (j == 0 and i > 0) else 1
                blocks.append(block(in_ch, mid, stride))
                in_ch = mid * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"encoder expects Bx{self.in_channels}xHxW input, got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"encoder input H and W must be divisible by 32, got {h}x{w}")
        f0 = self.relu(self.bn1(self.conv1(x)))
        f1 = self.layer1(self.maxpool(f0))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        return [f0, f1, f2, f3, f4]


def normalize_image(x: Tensor) -> Tensor:
    """Map images in [0, 1] to roughly zero mean / unit range, as Monodepth2 does ((x - 0.45) / 0.225).

    One fixed normalisation for every channel count keeps gray and RGB inputs interchangeable.
    """
    return (x - 0.45) / 0.225


__all__ = [
    "BasicBlock",
    "Bottleneck",
    "LEVEL_STRIDES",
    "NUM_LEVELS",
    "ResNetEncoder",
    "normalize_image",
    "resnet_channels",
]
