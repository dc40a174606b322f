"""PoseNet output transform, HAM (Wang et al.) identity at beta=0, IDCE effect on depth."""
from __future__ import annotations

import math

import pytest
import torch
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.ham import HighDimAttention
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.nets.pose import POSE_OUTPUT_SCALE, PoseNet


def test_ham_with_beta_zero_is_identity_and_beta_changes_it() -> None:
    torch.manual_seed(0)
    ham = HighDimAttention(16, delta=0.5).eval()
    x = torch.randn(2, 16, 3, 5)
    assert ham.beta.item() == 0.0  # paper: beta initialised to 0
    assert torch.equal(ham(x), x)
    with torch.no_grad():
        ham.beta.fill_(1.0)
    assert not torch.allclose(ham(x), x)


def test_ham_similarity_is_a_gaussian_kernel() -> None:
    torch.manual_seed(0)
    ham = HighDimAttention(8, delta=0.5).eval()
    ham.query.load_state_dict(ham.key.state_dict())  # K == Q: every position matches itself exactly
    x = torch.randn(1, 8, 4, 6)
    with torch.no_grad():
        s = ham.similarity(x)
        k = ham.key(x).flatten(2)[0]
    assert s.shape == (1, 24, 24)
    assert ((s >= 0) & (s <= 1)).all()
    torch.testing.assert_close(torch.diagonal(s[0]), torch.ones(24), atol=1e-5, rtol=0)
    torch.testing.assert_close(s, s.transpose(1, 2), atol=1e-6, rtol=0)  # symmetric when K == Q
    # hand check of one entry: exp(-mean_c (k_i - q_j)^2 / (2 delta^2))
    expected = math.exp(-float(((k[:, 0] - k[:, 5]) ** 2).mean()) / (2 * 0.25))
    assert abs(float(s[0, 0, 5]) - expected) < 1e-5


def test_posenet_outputs_a_rigid_transform() -> None:
    torch.manual_seed(0)
    net = PoseNet(image_channels=3, depth=18, width=0.25, decoder_channels=32, ham=True).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, H, W), torch.rand(2, 3, H, W))
    T = out.T_prev_cur
    assert T.shape == (2, 4, 4)
    torch.testing.assert_close(T[:, 3], torch.tensor([[0.0, 0, 0, 1]] * 2))
    R = T[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(2, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(T[:, :3, 3], out.translation)
    # output scaling: an untrained net predicts near-identity motion
    assert POSE_OUTPUT_SCALE == 0.01
    assert out.axis_angle.abs().max() < 0.1 and out.translation.abs().max() < 0.1


def test_posenet_gray_pairs_and_shape_check() -> None:
    net = PoseNet(image_channels=1, depth=18, width=0.25, decoder_channels=16)
    assert net.encoder.in_channels == 2
    with pytest.raises(ValueError, match="equal shapes"):
        net(torch.rand(1, 1, H, W), torch.rand(1, 1, H, 2 * W))


def test_idce_changes_depth_and_needs_cues() -> None:
    torch.manual_seed(0)
    plain = build_model(small_cfg()).eval()
    with_idce = build_model(small_cfg(idce={"enabled": True, "source": "feature_pair", "levels": [3, 4]})).eval()
    missing, unexpected = with_idce.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("idce.") for k in missing)
    a, b, c = (torch.rand(1, 3, H, W) for _ in range(3))
    with torch.no_grad():
        fa, _ = plain.encode(a)
        fc, _ = plain.encode(c)
        fb, _ = plain.encode(b)
        base = plain.predict_depth(fb)[0]
        after_a = with_idce.predict_depth(fb, with_idce.stream_features(fa, fb))[0]
        after_c = with_idce.predict_depth(fb, with_idce.stream_features(fc, fb))[0]
    assert (after_a - base).abs().max() > 1e-4  # IDCE contributes
    assert (after_a - after_c).abs().max() > 1e-5  # and the contribution depends on the previous frame
    with pytest.raises(ValueError, match="cue_features"):
        with_idce.predict_depth(fb)


def test_idce_from_pose_encoder_in_a_clip() -> None:
    torch.manual_seed(0)
    cfg = small_cfg(
        pose_net={"enabled": True, "width": 0.25, "decoder_channels": 16, "ham": True},
        idce={"enabled": True, "source": "pose_encoder", "levels": [4]},
    )
    model = build_model(cfg).eval()
    assert model.idce is not None and model.pose_net is not None
    with torch.no_grad():
        out = model.forward_clip(torch.rand(2, 3, 3, H, W))
    assert out.poses is not None and len(out.poses) == 2
    assert out.poses[0].T_prev_cur.shape == (2, 4, 4)
    assert len(out.depths) == 3 and out.depths[0][0].shape == (2, 1, H, W)
