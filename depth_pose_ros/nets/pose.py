"""Two-frame PoseNet (Monodepth2 design) with the optional HAM of Wang et al.

A ResNet encoder reads the channel-wise concatenation ``[I_prev, I_cur]`` (6 channels for RGB, 2 for
gray); the decoder squeezes the stride-32 features, runs two 3x3 convolutions, optionally the HAM
attention on those pose features ("HAM is used as the subsequent processing of the PoseNet decoder"),
and a 1x1 convolution to 6 numbers averaged over the image. The output is scaled by 0.01 so that an
untrained network starts near the identity motion, which keeps early view synthesis meaningful.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from depth_pose_ros.geometry.se3 import pose_vec_to_mat
from depth_pose_ros.nets.ham import HighDimAttention
from depth_pose_ros.nets.resnet import ResNetEncoder, normalize_image

POSE_OUTPUT_SCALE = 0.01


@dataclass
class PoseOutput:
    """Relative camera motion predicted from ``(I_prev, I_cur)``.

    ``T_prev_cur`` (Bx4x4) maps points of the *current* camera into the *previous* camera, i.e.
    ``T_source_target`` with the current frame as target: exactly what view synthesis of the current
    frame from the previous one needs. ``axis_angle``/``translation`` (Bx3 each) parametrise it.
    """

    axis_angle: Tensor
    translation: Tensor
    T_prev_cur: Tensor


class PoseDecoder(nn.Module):
    """Squeeze 1x1 -> 3x3 -> 3x3 -> [HAM] -> 1x1 to 6, spatial mean, x0.01 (Monodepth2 + Wang et al.)."""

    def __init__(self, in_channels: int, channels: int = 256, ham: bool = False, ham_delta: float = 0.5):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, channels, 1)
        self.conv0 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        self.ham = HighDimAttention(channels, ham_delta) if ham else None
        self.out = nn.Conv2d(channels, 6, 1)

    def features(self, x: Tensor) -> Tensor:
        """Pose features before the output layer (after HAM when enabled)."""
        x = self.relu(self.squeeze(x))
        x = self.relu(self.conv0(x))
        x = self.relu(self.conv1(x))
        return x if self.ham is None else self.ham(x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Return (axis_angle Bx3, translation Bx3) from the stride-32 pose-encoder features."""
        vec = POSE_OUTPUT_SCALE * self.out(self.features(x)).mean(dim=(2, 3))
        return vec[:, :3], vec[:, 3:]


class PoseNet(nn.Module):
    """Two-frame pose network; ``encode`` is exposed separately so IDCE can reuse the unit stream."""

    def __init__(
        self,
        image_channels: int = 3,
        depth: int = 18,
        width: float = 1.0,
        decoder_channels: int = 256,
        ham: bool = False,
        ham_delta: float = 0.5,
    ) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.encoder = ResNetEncoder(depth, width, in_channels=2 * image_channels)
        self.decoder = PoseDecoder(self.encoder.channels[-1], decoder_channels, ham, ham_delta)

    @property
    def channels(self) -> tuple[int, ...]:
        """Channel counts of the unit-stream pyramid returned by ``encode``."""
        return self.encoder.channels

    def encode(self, image_prev: Tensor, image_cur: Tensor) -> list[Tensor]:
        """Unit-stream features (5 levels) of the pair; images Bx C xHxW in [0, 1]."""
        if image_prev.shape != image_cur.shape:
            raise ValueError(
                f"PoseNet images must have equal shapes, got {tuple(image_prev.shape)} and "
                f"{tuple(image_cur.shape)}"
            )
        return self.encoder(normalize_image(torch.cat([image_prev, image_cur], dim=1)))

    def decode(self, stream: list[Tensor]) -> PoseOutput:
        axis_angle, translation = self.decoder(stream[-1])
        return PoseOutput(axis_angle, translation, pose_vec_to_mat(axis_angle, translation))

    def forward(self, image_prev: Tensor, image_cur: Tensor) -> PoseOutput:
        """Predict ``T_prev_cur`` (maps current-camera points into the previous camera)."""
        return self.decode(self.encode(image_prev, image_cur))
