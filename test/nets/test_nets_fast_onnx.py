"""Fast path (BN folding, channels_last, autocast) and ONNX export parity with onnxruntime."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nets_helpers import H, W, small_cfg

from depth_pose_ros.nets.fast import (
    FastPathOptions,
    carried_levels,
    export_onnx,
    fuse_batchnorm,
    inference_context,
    onnx_parity,
    optimize_for_inference,
)
from depth_pose_ros.nets.model import build_model


def _randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial running statistics, so that folding them is actually exercised."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def test_fuse_batchnorm_preserves_outputs() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(idce={"enabled": True})).eval()
    _randomise_bn(model)
    x = torch.rand(1, 3, H, W)
    with torch.no_grad():
        feats, _ = model.encode(x)
        ref = model.predict_depth(feats, model.stream_features(None, feats))[0]
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        fuse_batchnorm(model)
        assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) == 0 < n_bn
        feats, _ = model.encode(x)
        out = model.predict_depth(feats, model.stream_features(None, feats))[0]
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batchnorm(build_model(small_cfg()).train())


def test_fast_path_matches_eager_within_reduced_precision() -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg()).eval()
    frames = [torch.rand(1, 3, H, W) for _ in range(2)]
    with torch.no_grad():
        prev, s = model.encode(frames[0])
        feats, _ = model.encode(frames[1], s)
        depth_ref = model.predict_depth(feats)[0]
        flow_ref = model.predict_flow(prev, feats).forward[0]
    fast = optimize_for_inference(model, FastPathOptions(), example_size=(H, W))
    with fast.context():
        prev, s = model.encode(fast.prepare_input(frames[0]))
        feats, _ = model.encode(fast.prepare_input(frames[1]), s)
        depth = model.predict_depth(feats)[0]
        flow = model.predict_flow(prev, feats).forward[0]
    assert depth.dtype == torch.float32 and flow.dtype == torch.float32  # heads return fp32 under autocast
    assert s.hidden[0].dtype == torch.float32  # the recurrent state does not drop to bf16
    assert ((depth - depth_ref).abs() / depth_ref).max() < 0.05
    assert (flow - flow_ref).abs().max() < 0.05 * flow_ref.abs().max() + 1e-3


def test_inference_context_without_autocast_is_fp32() -> None:
    with inference_context("cpu", use_autocast=False):
        y = torch.nn.functional.conv2d(torch.rand(1, 2, 4, 4), torch.rand(3, 2, 1, 1))
    assert y.dtype == torch.float32 and not y.requires_grad


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_onnx_export_parity_with_onnxruntime(tmp_path: Path, cell: str) -> None:
    torch.manual_seed(0)
    model = build_model(small_cfg(recurrent={"type": cell}, idce={"enabled": True, "levels": [4]})).eval()
    _randomise_bn(model)
    export = export_onnx(model, tmp_path / "step.onnx", H, W)
    assert export.path.is_file()
    assert export.feature_levels == carried_levels(model) == (1, 2, 3, 4)
    state_inputs = [n for n in export.input_names if n.startswith("state_")]
    assert state_inputs == (["state_h0", "state_c0"] if cell == "lstm" else ["state_h0"])
    assert export.output_names[:5] == ["depth", "flow_fw", "flow_bw", "non_occluded_fw", "non_occluded_bw"]
    assert ["new_" + n for n in state_inputs] == export.output_names[-len(state_inputs):]
    assert onnx_parity(model, export, steps=3) < 1e-3


def test_onnx_export_rejects_bad_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="divisible by 32"):
        export_onnx(build_model(small_cfg()), tmp_path / "x.onnx", 100, W)


def test_onnx_export_of_a_single_frame_depth_only_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = small_cfg(recurrent={"levels": [], "hidden_channels": []}, flow={"enabled": False})
    model = build_model(cfg).eval()
    export = export_onnx(model, tmp_path / "depth.onnx", H, W)
    assert export.input_names == ["image"] and export.output_names == ["depth"]
    assert onnx_parity(model, export, steps=2) < 1e-3


def test_try_compile_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch) -> None:
    from depth_pose_ros.nets import fast

    def broken_compile(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    module = torch.nn.Conv2d(1, 1, 1)
    with pytest.warns(UserWarning, match="no compiler here"):
        assert fast.try_compile(module) is module
