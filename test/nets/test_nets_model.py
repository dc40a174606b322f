"""DepthFlowNet: the batched clip path equals the streaming path; shapes; input checks; reference."""
from __future__ import annotations

import pytest
import torch
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.model import build_model
from depth_pose_ros.nets.reference import ReferenceMonodepth2


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_forward_clip_equals_streaming(cell: str) -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(recurrent={"type": cell}, idce={"enabled": True})).eval()
    clip = torch.rand(2, 3, 3, H, W)
    with torch.no_grad():
        out = model.forward_clip(clip)
        prev, state = None, None
        for t in range(3):
            feats, state = model.encode(clip[:, t], state)
            depth = model.predict_depth(feats, model.stream_features(prev, feats))
            for d_clip, d_stream in zip(out.depths[t], depth):
                torch.testing.assert_close(d_clip, d_stream, atol=1e-4, rtol=1e-4)
            if prev is not None:
                flow = model.predict_flow(prev, feats)
                clip_flow = out.flows[t - 1]
                for name in ("forward", "backward", "non_occluded_fw", "non_occluded_bw"):
                    for x, y in zip(getattr(clip_flow, name), getattr(flow, name)):
                        torch.testing.assert_close(x, y, atol=1e-4, rtol=1e-4)
            prev = feats
    for x, y in zip(out.state.hidden, state.hidden):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    for x, y in zip(out.last_features, prev):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-5)
    assert out.poses is None and len(out.flows) == 2


def test_forward_clip_gray_single_frame_network() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(encoder={"image_channels": 1}, recurrent={"levels": [], "hidden_channels": []}))
    model.train()
    out = model.forward_clip(torch.rand(2, 2, 1, H, W))
    assert out.depths[1][0].shape == (2, 1, H, W) and out.flows[0].forward[0].shape == (2, 2, H, W)
    loss = out.depths[0][0].mean() + out.flows[0].forward[0].abs().mean()
    loss.backward()
    assert model.encoder.conv1.weight.grad is not None


def test_posenet_in_clip_and_predict_pose() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(pose_net={"enabled": True, "width": 0.25, "decoder_channels": 16})).eval()
    clip = torch.rand(1, 3, 3, H, W)
    with torch.no_grad():
        out = model.forward_clip(clip)
        direct = model.predict_pose(clip[:, 1], clip[:, 2])
    assert out.poses is not None and len(out.poses) == 2
    torch.testing.assert_close(out.poses[1].T_prev_cur, direct.T_prev_cur, atol=1e-5, rtol=1e-4)


def test_input_checks_name_the_problem() -> None:
    model = build_model(small_cfg())
    with pytest.raises(ValueError, match="divisible by 32"):
        model.encode(torch.rand(1, 3, 50, W))
    with pytest.raises(ValueError, match="image_channels=3"):
        model.encode(torch.rand(1, 1, H, W))
    with pytest.raises(ValueError, match="BxTxCxHxW"):
        model.forward_clip(torch.rand(1, 3, H, W))
    with pytest.raises(ValueError, match="pose_net.enabled"):
        model.predict_pose(torch.rand(1, 3, H, W), torch.rand(1, 3, H, W))


def test_reference_monodepth2_runs() -> None:
    torch.manual_seed(0)
    ref = ReferenceMonodepth2().eval()
    assert ref.encoder.channels == (64, 64, 128, 256, 512) and ref.pose.encoder.in_channels == 6
    with torch.no_grad():
        disps, pose = ref.step(torch.rand(1, 3, H, W), torch.rand(1, 3, H, W))
    assert [tuple(d.shape[-2:]) for d in disps] == [(H, W), (H // 2, W // 2), (H // 4, W // 4), (H // 8, W // 8)]
    assert all(((d >= 0) & (d <= 1)).all() for d in disps)
    assert pose.T_prev_cur.shape == (1, 4, 4)
