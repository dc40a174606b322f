"""Depth decoder: sigmoid -> depth mapping, scales and the metric range."""
from __future__ import annotations

import pytest
import torch
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.depth_decoder import DepthDecoder, sigmoid_to_depth
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.nets.resnet import resnet_channels


def test_sigmoid_to_depth_hand_computed() -> None:
    s = torch.tensor([0.0, 1.0, 0.5])
    d = sigmoid_to_depth(s, 0.1, 100.0)
    # 0 -> 1/(1/100) = 100; 1 -> 1/(1/100 + 10 - 1/100) = 0.1; 0.5 -> 1/(0.01 + 9.99/2) = 1/5.005
    torch.testing.assert_close(d, torch.tensor([100.0, 0.1, 1.0 / 5.005]))
    with pytest.raises(ValueError, match="min_depth"):
        sigmoid_to_depth(s, 1.0, 0.5)


@pytest.mark.parametrize("finest_level, strides", [(0, (1, 2, 4, 8)), (1, (2, 4, 8, 16))])
def test_decoder_scales(finest_level: int, strides: tuple[int, ...]) -> None:
    ch = resnet_channels(18, 0.25)
    dec = DepthDecoder(ch, (8, 8, 16, 16, 32), finest_level=finest_level)
    feats = [torch.rand(1, c, H // s, W // s) for c, s in zip(ch, (2, 4, 8, 16, 32))]
    out = dec(feats)
    assert dec.disp_strides == strides
    assert [tuple(o.shape[-2:]) for o in out] == [(H // s, W // s) for s in strides]
    assert all(((o >= 0) & (o <= 1)).all() for o in out)


@pytest.mark.parametrize("channels", [1, 3])
def test_model_depth_in_range_at_every_scale(channels: int) -> None:
    torch.manual_seed(0)
    cfg = small_cfg(encoder={"image_channels": channels}, depth={"min_depth": 0.5, "max_depth": 40.0})
    model = build_model(cfg).eval()
    with torch.no_grad():
        feats, _ = model.encode(torch.rand(2, channels, H, W))
        depths = model.predict_depth(feats)
    assert model.depth_strides == (1, 4, 8, 16)
    assert [tuple(d.shape) for d in depths] == [(2, 1, H // s, W // s) for s in model.depth_strides]
    for d in depths:
        assert d.min() >= 0.5 - 1e-5 and d.max() <= 40.0 + 1e-3
    # extreme logits still land on the range ends
    dec = model.depth_decoder.disp["1"].conv
    with torch.no_grad():
        dec.bias.fill_(-50.0)
        assert torch.allclose(model.predict_depth(feats)[0], torch.full_like(depths[0], 40.0))
        dec.bias.fill_(50.0)
        assert torch.allclose(model.predict_depth(feats)[0], torch.full_like(depths[0], 0.5))
