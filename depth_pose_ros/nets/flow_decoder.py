"""PWC-style coarse-to-fine optical-flow decoder on shared-encoder features, with the MaskFlowNet /
Fang et al. learnable occlusion mask.

Per level l, from the coarsest to the finest configured level:
1. project both feature maps with a 1x1 conv to a small width (the shared encoder is trained for
   depth; the projection gives the matcher its own descriptor and keeps the correlation cheap);
2. upsample the coarser flow x2 (values x2) and warp the second map's features towards the first;
3. occlusion mask (optional, Fang et al. Sec. III-A / MaskFlowNet): the warped features are
   multiplied by a learned mask M_occ in [0, 1] and a learned trade-off tensor mu (B x C x H x W) is
   added — ``warped * M_occ + mu`` — so features that have no valid match (occluded) are replaced by
   something the estimator can recognise instead of polluting the cost volume. M_occ and mu of level
   l are predicted by the estimator of level l+1 and upsampled;
4. local correlation (search range d) between the first map and the (masked) warped second map;
5. a conv stack on ``[cost volume, first features, upsampled flow]`` predicts the residual flow (and
   the next mask / trade-off term). Its first layer is 1x1: the cost volume already describes a
   (2d+1)^2 neighbourhood, so that layer only needs to mix channels, and at stride 4 a dense 3x3 on
   ~70 input channels would cost more than the whole encoder stage of that resolution.

Widths are per level (coarse to fine), so the cheap coarse levels can be wide and the expensive
stride-4 level thin.

Flows are in pixels *of their own level*; the model upsamples the finest one to the input size with
the values scaled by the resolution ratio.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from depth_pose_ros.nets.blocks import conv_lrelu
from depth_pose_ros.nets.correlation import local_correlation
from depth_pose_ros.nets.feature_warp import warp_features


def upsample_flow(flow: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinearly resize a flow field to ``size`` (H, W) and scale dx, dy by the resolution ratios.

    A displacement of 1 pixel at stride s is s pixels at stride 1, so the values must follow the grid.
    """
    h, w = flow.shape[-2:]
    if (h, w) == tuple(size):
        return flow
    up = F.interpolate(flow, size=size, mode="bilinear", align_corners=False)
    scale = torch.tensor([size[1] / w, size[0] / h], dtype=flow.dtype, device=flow.device).view(1, 2, 1, 1)
    return up * scale


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


@dataclass
class FlowLevelOutputs:
    """Per-level results of one decoder pass, finest level first (one direction or a batched pair)."""

    flows: list[Tensor]  # B x 2 x H_l x W_l, pixels of level l
    non_occluded: list[Tensor] | None  # B x 1 x H_l x W_l in [0, 1], 1 = visible in the second image


class _LevelEstimator(nn.Module):
    """Conv stack of one pyramid level -> residual flow (+ occlusion logits and next trade-off term)."""

    def __init__(self, in_ch: int, channels: tuple[int, ...], mask: bool, next_feat_ch: int) -> None:
        super().__init__()
        if not channels:
            raise ValueError("flow estimator needs at least one layer width")
        layers: list[nn.Module] = []
        for i, c in enumerate(channels):
            layers.append(conv_lrelu(in_ch, c, kernel=1 if i == 0 else 3))
            in_ch = c
        self.body = nn.Sequential(*layers)
        self.flow = nn.Conv2d(in_ch, 2, 3, 1, 1)
        self.mask = nn.Conv2d(in_ch, 1, 3, 1, 1) if mask else None
        self.tradeoff: nn.Conv2d | None = None
        if mask and next_feat_ch > 0:
            self.tradeoff = nn.Conv2d(in_ch, next_feat_ch, 3, 1, 1)
            # mu starts at 0: the first updates see plain masked features (MaskFlowNet's mu is free)
            nn.init.zeros_(self.tradeoff.weight)
            assert self.tradeoff.bias is not None  # Conv2d has a bias by default
            nn.init.zeros_(self.tradeoff.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor | None]:
        x = self.body(x)
        mask = self.mask(x) if self.mask is not None else None
        mu = self.tradeoff(x) if self.tradeoff is not None else None
        return self.flow(x), mask, mu


class FlowDecoder(nn.Module):
    """Coarse-to-fine flow from ``feats_a`` (first image) to ``feats_b`` (second image).

    Args:
        enc_channels: channels of the 5 encoder levels (strides 2..32).
        coarsest_level / finest_level: pyramid indices (4 = stride 32, 1 = stride 4, 0 = stride 2).
        feature_channels: per level (coarse -> fine), width of the 1x1 matching projection
            (0: correlate the raw encoder features).
        search_range: correlation radius d (cost volume has (2d+1)^2 channels).
        estimator_channels: per level (coarse -> fine), widths of the estimator conv stack.
        occlusion_mask: enable the learnable occlusion mask + trade-off term.
    """

    def __init__(
        self,
        enc_channels: tuple[int, ...],
        coarsest_level: int = 4,
        finest_level: int = 1,
        feature_channels: tuple[int, ...] = (32, 32, 32, 32),
        search_range: int = 4,
        estimator_channels: tuple[tuple[int, ...], ...] = ((64, 48, 32),) * 4,
        occlusion_mask: bool = False,
    ) -> None:
        super().__init__()
        if not 0 <= finest_level <= coarsest_level <= 4:
            raise ValueError(
                f"flow decoder needs 0 <= finest_level <= coarsest_level <= 4, got {finest_level}, "
                f"{coarsest_level}"
            )
        self.levels = tuple(range(coarsest_level, finest_level - 1, -1))  # coarse -> fine
        n = len(self.levels)
        if len(feature_channels) != n or len(estimator_channels) != n:
            raise ValueError(
                f"flow feature_channels and estimator_channels need one entry per level {list(self.levels)} "
                f"(coarse to fine), got {len(feature_channels)} and {len(estimator_channels)}"
            )
        if search_range < 0:
            raise ValueError(f"flow search_range must be >= 0, got {search_range}")
        self.search_range = int(search_range)
        self.occlusion_mask = bool(occlusion_mask)
        feat_ch = {lv: (fc or enc_channels[lv]) for lv, fc in zip(self.levels, feature_channels)}
        self.proj = nn.ModuleDict()
        for lv, fc in zip(self.levels, feature_channels):
            if fc:
                self.proj[str(lv)] = nn.Sequential(
                    nn.Conv2d(enc_channels[lv], fc, 1), nn.LeakyReLU(0.1, inplace=True)
                )
        corr_ch = (2 * self.search_range + 1) ** 2
        self.estimators = nn.ModuleDict()
        for lv, est_ch in zip(self.levels, estimator_channels):
            next_ch = feat_ch[lv - 1] if lv - 1 in feat_ch else 0
            self.estimators[str(lv)] = _LevelEstimator(
                corr_ch + feat_ch[lv] + 2, tuple(est_ch), self.occlusion_mask, next_ch
            )

    @property
    def strides(self) -> tuple[int, ...]:
        """Strides of the per-level outputs, finest first."""
        return tuple(2 ** (lv + 1) for lv in reversed(self.levels))

    def _project(self, lv: int, x: Tensor) -> Tensor:
        return self.proj[str(lv)](x) if str(lv) in self.proj else x

    def forward(
        self, feats_a: list[Tensor], feats_b: list[Tensor], both_directions: bool = False
    ) -> FlowLevelOutputs:
        """Flow A -> B per level, finest first; with ``both_directions`` the batch is [A->B, B->A].

        Both directions share one pass (batch 2B): each image is projected once and the decoder's
        convolutions run on twice the batch, which is cheaper than two calls on a 2-core CPU.
        """
        flow: Tensor | None = None
        mask_logit: Tensor | None = None
        mu: Tensor | None = None
        flows: list[Tensor] = []
        masks: list[Tensor] = []
        for lv in self.levels:
            a = self._project(lv, feats_a[lv])
            b = self._project(lv, feats_b[lv])
            if both_directions:
                a, b = torch.cat([a, b], 0), torch.cat([b, a], 0)
            size = (a.shape[-2], a.shape[-1])
            if flow is None:  # flow is accumulated in fp32 even under autocast (sub-pixel precision)
                up_flow = torch.zeros(a.shape[0], 2, size[0], size[1], device=a.device)
                warped = b
            else:
                up_flow = upsample_flow(flow, size)
                warped = warp_features(b, up_flow)
                if mask_logit is not None and mu is not None:
                    up_mask = torch.sigmoid(_resize(mask_logit, size))
                    warped = warped * up_mask.to(warped.dtype) + _resize(mu, size).to(warped.dtype)
            cost = F.leaky_relu(local_correlation(a, warped, self.search_range), 0.1)
            residual, mask_logit, mu = self.estimators[str(lv)](torch.cat([cost, a, up_flow], dim=1))
            flow = up_flow + residual.float()
            flows.append(flow)
            if mask_logit is not None:
                masks.append(torch.sigmoid(mask_logit.float()))
        return FlowLevelOutputs(flows[::-1], masks[::-1] if self.occlusion_mask else None)
