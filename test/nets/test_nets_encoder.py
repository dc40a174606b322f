"""ResNet pyramid encoder: level shapes and channel counts for every depth / input channel count."""
from __future__ import annotations

import pytest
import torch

from depth_pose_ros.nets.resnet import LEVEL_STRIDES, ResNetEncoder, resnet_channels


@pytest.mark.parametrize("depth", [18, 34, 50])
@pytest.mark.parametrize("in_channels", [1, 3])
def test_pyramid_shapes_and_channels(depth: int, in_channels: int) -> None:
    torch.manual_seed(0)
    enc = ResNetEncoder(depth, width=0.25, in_channels=in_channels).eval()
    with torch.no_grad():
        feats = enc(torch.rand(2, in_channels, 64, 192))
    assert len(feats) == 5
    expected_ch = resnet_channels(depth, 0.25)
    assert enc.channels == expected_ch
    for f, stride, ch in zip(feats, LEVEL_STRIDES, expected_ch):
        assert tuple(f.shape) == (2, ch, 64 // stride, 192 // stride)
        assert torch.isfinite(f).all()


def test_channel_counts_hand_computed() -> None:
    # ResNet-18/34: stem 64, stages 64,128,256,512; ResNet-50 stages are x4 (bottleneck expansion)
    assert resnet_channels(18, 1.0) == (64, 64, 128, 256, 512)
    assert resnet_channels(34, 0.5) == (32, 32, 64, 128, 256)
    assert resnet_channels(50, 1.0) == (64, 256, 512, 1024, 2048)
    assert resnet_channels(18, 0.25) == (16, 16, 32, 64, 128)


def test_standard_resnet18_parameter_count() -> None:
    # torchvision's resnet18 has 11,689,512 parameters; minus its fc layer (512*1000 + 1000) = 11,176,512
    enc = ResNetEncoder(18, 1.0, 3)
    assert sum(p.numel() for p in enc.parameters()) == 11_176_512


def test_bad_inputs_raise_clear_errors() -> None:
    enc = ResNetEncoder(18, 0.25, 3)
    with pytest.raises(ValueError, match="divisible by 32"):
        enc(torch.rand(1, 3, 60, 192))
    with pytest.raises(ValueError, match="Bx3xHxW"):
        enc(torch.rand(1, 1, 64, 192))
    with pytest.raises(ValueError, match="depth must be one of"):
        ResNetEncoder(101)
