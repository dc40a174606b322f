"""Flow decoder pieces: correlation, feature warping, flow upsampling/scaling, occlusion mask, batching."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.correlation import displacement_of_channel, local_correlation
from depth_pose_ros.nets.feature_warp import warp_features
from depth_pose_ros.nets.flow_decoder import upsample_flow
from depth_pose_ros.nets.model import build_model


def test_correlation_hand_computed() -> None:
    a = torch.ones(1, 2, 3, 3)
    corr = local_correlation(a, a, 1)
    assert corr.shape == (1, 9, 3, 3)
    centre = 4  # (dx, dy) = (0, 0)
    assert displacement_of_channel(centre, 1) == (0, 0)
    assert torch.equal(corr[0, centre], torch.ones(3, 3))
    # displacement (-1, -1) at pixel (0, 0) reads the zero padding; at pixel (1, 1) it reads a 1
    k = 0
    assert displacement_of_channel(k, 1) == (-1, -1)
    assert corr[0, k, 0, 0] == 0 and corr[0, k, 1, 1] == 1


def test_correlation_peaks_at_the_true_shift() -> None:
    torch.manual_seed(0)
    a = torch.randn(1, 16, 12, 20)
    a = a / a.norm(dim=1, keepdim=True)  # unit descriptors: the true match is the strict maximum
    dx, dy = 2, -1
    b = torch.roll(a, shifts=(dy, dx), dims=(2, 3))  # b(p + (dx, dy)) = a(p)
    corr = local_correlation(a, b, 3)
    k = (dy + 3) * 7 + (dx + 3)
    assert displacement_of_channel(k, 3) == (dx, dy)
    inner = corr[0, :, 2:-2, 3:-3]  # pixels whose shifted sample does not wrap around
    assert torch.equal(inner.argmax(0), torch.full_like(inner[0], k, dtype=torch.long))
    torch.testing.assert_close(inner[k], (a * a).mean(1)[0, 2:-2, 3:-3])


def test_warp_features_integer_shift() -> None:
    src = torch.arange(2 * 4 * 5, dtype=torch.float32).view(1, 2, 4, 5)
    flow = torch.zeros(1, 2, 4, 5)
    flow[:, 0] = 1.0  # sample one pixel to the right
    out = warp_features(src, flow)
    torch.testing.assert_close(out[..., :-1], src[..., 1:])
    assert torch.equal(out[..., -1], torch.zeros(1, 2, 4))  # outside the image reads zero


def test_upsample_flow_scales_values() -> None:
    flow = torch.zeros(1, 2, 4, 6)
    flow[:, 0], flow[:, 1] = 1.5, -2.0
    up = upsample_flow(flow, (16, 24))
    torch.testing.assert_close(up[:, 0], torch.full((1, 16, 24), 6.0))
    torch.testing.assert_close(up[:, 1], torch.full((1, 16, 24), -8.0))


def _pair(model, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fa, s = model.encode(torch.rand(2, 3, H, W, generator=g))
        fb, _ = model.encode(torch.rand(2, 3, H, W, generator=g), s)
    return fa, fb


def test_flow_output_scales_and_full_resolution_scaling() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    fa, fb = _pair(model)
    with torch.no_grad():
        out = model.predict_flow(fa, fb)
    assert out.strides == (1, 4, 8, 16, 32)
    for flows in (out.forward, out.backward):
        assert [tuple(f.shape) for f in flows] == [(2, 2, H // s, W // s) for s in out.strides]
    # the full-resolution flow is the stride-4 flow upsampled with its values multiplied by 4
    expected = F.interpolate(out.forward[1], size=(H, W), mode="bilinear", align_corners=False) * 4
    torch.testing.assert_close(out.forward[0], expected)
    assert out.forward[1].abs().max() > 0


def test_occlusion_mask_in_unit_range_at_every_scale() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    fa, fb = _pair(model)
    with torch.no_grad():
        out = model.predict_flow(fa, fb)
    assert out.non_occluded_fw is not None and out.non_occluded_bw is not None
    for masks in (out.non_occluded_fw, out.non_occluded_bw):
        assert [tuple(m.shape) for m in masks] == [(2, 1, H // s, W // s) for s in out.strides]
        assert all(((m >= 0) & (m <= 1)).all() for m in masks)
    no_mask = build_model(small_cfg(flow={"occlusion_mask": False})).eval()
    with torch.no_grad():
        plain = no_mask.predict_flow(*_pair(no_mask))
    assert plain.non_occluded_fw is None and plain.non_occluded_bw is None


def test_occlusion_mask_gates_the_warped_features() -> None:
    # a closed mask (logit -> -inf) with zero trade-off term removes the warped features from the cost
    # volume, so the finer levels see the same volume whatever the second image is
    torch.manual_seed(0)
    model = build_model(small_cfg(flow={"coarsest_level": 4, "finest_level": 3,
                                        "feature_channels": [8, 8], "estimator_channels": [[8], [8]]})).eval()
    est = model.flow_decoder.estimators["4"]
    with torch.no_grad():
        est.mask.weight.zero_()
        est.mask.bias.fill_(-100.0)
        fa, fb = _pair(model)
        _, fc = _pair(model, seed=1)
        out_b = model.flow_decoder(fa, fb)
        fc_mixed = list(fc)
        fc_mixed[4] = fb[4]  # same coarsest level -> same coarse flow and mask; different level 3
        out_c = model.flow_decoder(fa, fc_mixed)
    assert torch.allclose(out_b.flows[0], out_c.flows[0], atol=1e-5)
    assert torch.all(out_b.non_occluded[1] < 1e-20)


def test_both_directions_batched_equal_separate_calls() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    fa, fb = _pair(model)
    with torch.no_grad():
        both = model.predict_flow(fa, fb, both_directions=True)
        fw = model.predict_flow(fa, fb, both_directions=False)
        bw = model.predict_flow(fb, fa, both_directions=False)
    assert fw.backward is None
    for x, y in zip(both.forward, fw.forward):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)
    for x, y in zip(both.backward, bw.forward):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)
    for x, y in zip(both.non_occluded_bw, bw.non_occluded_fw):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4)


def test_finest_level_stride_two() -> None:
    cfg = small_cfg(flow={"finest_level": 0, "feature_channels": [8, 8, 8, 8, 8],
                          "estimator_channels": [[8]] * 5})
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model.predict_flow(*_pair(model))
    assert out.strides == (1, 2, 4, 8, 16, 32)
    expected = F.interpolate(out.forward[1], size=(H, W), mode="bilinear", align_corners=False) * 2
    torch.testing.assert_close(out.forward[0], expected)


def test_disabled_flow_decoder_raises() -> None:
    model = build_model(small_cfg(flow={"enabled": False}))
    assert model.flow_decoder is None
    with pytest.raises(ValueError, match="flow.enabled"):
        model.predict_flow([], [])
