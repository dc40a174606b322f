"""Reference Monodepth2 network pair (depth + pose) used only as the speed/accuracy yardstick.

Standard Monodepth2 (Godard et al. 2019) at its published size: ResNet-18 (width 1.0) depth encoder
with the reflection-padded ELU decoder producing sigmoid disparity at full, 1/2, 1/4 and 1/8
resolution, and a separate ResNet-18 pose encoder on the 6-channel pair with the pose decoder. The
benchmark times ``step`` — depth of the current frame plus pose of the pair — as the per-frame cost
of a Monodepth2 pipeline, the same work our streaming model replaces with encoder + recurrent cell +
depth + bidirectional flow.
"""
from __future__ import annotations

from torch import Tensor, nn

from depth_pose_ros.nets.depth_decoder import DepthDecoder
from depth_pose_ros.nets.pose import PoseNet, PoseOutput
from depth_pose_ros.nets.resnet import ResNetEncoder, normalize_image


class ReferenceMonodepth2(nn.Module):
    """Monodepth2 ResNet-18 depth network + separate ResNet-18 pose network."""

    def __init__(self, image_channels: int = 3) -> None:
        super().__init__()
        self.encoder = ResNetEncoder(18, 1.0, in_channels=image_channels)
        self.decoder = DepthDecoder(
            self.encoder.channels, (16, 32, 64, 128, 256), finest_level=0, pad_mode="reflect"
        )
        self.pose = PoseNet(image_channels=image_channels, depth=18, width=1.0, decoder_channels=256)

    def depth(self, image: Tensor) -> list[Tensor]:
        """Sigmoid disparities at strides 1, 2, 4, 8 (finest first) for images in [0, 1]."""
        return self.decoder(self.encoder(normalize_image(image)))

    def step(self, image_prev: Tensor, image_cur: Tensor) -> tuple[list[Tensor], PoseOutput]:
        """One frame of a Monodepth2 pipeline: depth of the current image + pose of the pair."""
        return self.depth(image_cur), self.pose(image_prev, image_cur)

    def forward(self, image_prev: Tensor, image_cur: Tensor) -> tuple[list[Tensor], PoseOutput]:
        return self.step(image_prev, image_cur)
