"""Implicit depth cue extractor (IDCE) of Wang et al.: unit-stream features -> additive depth cues.

The "unit stream" is a two-frame representation (in the paper: the PoseNet encoder output on
``[I_{t-1}, I_t]``). Four identical bottlenecks (1x1 reduce to C/4, 3x3, 1x1 restore, BN after each
conv, identity shortcut) turn it into cues that are *added* to the depth encoder features of the
same level before the depth decoder, so motion boundaries visible between the frames can sharpen the
single-frame depth. A 1x1 projection is inserted first when the stream and depth features differ in
width (e.g. a half-width depth encoder with a full-width pose encoder, or the concatenated
``[X_{t-1}, X_t]`` feature pair used as the stream when there is no PoseNet).
"""
from __future__ import annotations

from torch import Tensor, nn


class CueBottleneck(nn.Module):
    """1x1 (C -> C/4) -> 3x3 -> 1x1 (-> C), BN + ReLU, identity shortcut (ResNet bottleneck, stride 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(channels // 4, 1)
        self.body = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, 1, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(x + self.body(x))


class DepthCueExtractor(nn.Module):
    """IDCE on selected pyramid levels; ``forward`` returns one additive cue per level (None elsewhere).

    Args:
        levels: pyramid levels (0..4) that receive cues; the paper uses only the deepest (4).
        stream_channels: channels of the 5 unit-stream levels.
        depth_channels: channels of the 5 depth-encoder levels (the cue must match them).
        num_bottlenecks: cascaded bottlenecks per level (4 in the paper).
    """

    def __init__(
        self,
        levels: tuple[int, ...],
        stream_channels: tuple[int, ...],
        depth_channels: tuple[int, ...],
        num_bottlenecks: int = 4,
    ) -> None:
        super().__init__()
        if any(lv < 0 or lv > 4 for lv in levels):
            raise ValueError(f"IDCE levels must be in 0..4, got {levels}")
        self.levels = tuple(levels)
        self.branches = nn.ModuleDict()
        for lv in self.levels:
            c_in, c_out = stream_channels[lv], depth_channels[lv]
            layers: list[nn.Module] = []
            if c_in != c_out:
                layers += [nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers += [CueBottleneck(c_out) for _ in range(num_bottlenecks)]
            self.branches[str(lv)] = nn.Sequential(*layers)

    def forward(self, stream: list[Tensor]) -> list[Tensor | None]:
        return [self.branches[str(lv)](stream[lv]) if lv in self.levels else None for lv in range(len(stream))]
