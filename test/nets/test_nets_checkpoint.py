"""Checkpoints: safetensors round trip, architecture checks, atomic writes, corrupt files."""
from __future__ import annotations

import pytest
import torch

from depth_pose_ros.nets.checkpoint import CheckpointError, load_model, read_metadata, save_model
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model


def _model(width: float = 0.25) -> torch.nn.Module:
    torch.manual_seed(1)
    return build_model(NetConfig.from_dict({"encoder": {"width": width}}))


def test_round_trip_restores_weights_and_config(tmp_path):
    model = _model()
    path = tmp_path / "m.safetensors"
    save_model(path, model, extra={"step": 12})
    loaded, extra = load_model(path)
    assert extra == {"step": 12}
    assert loaded.cfg.to_dict() == model.cfg.to_dict()
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert not list(tmp_path.glob(".*tmp")), "temporary file left behind"


def test_other_architecture_is_rejected_with_the_difference(tmp_path):
    path = tmp_path / "m.safetensors"
    save_model(path, _model(0.25))
    expected = NetConfig.from_dict({"encoder": {"width": 0.5}})
    with pytest.raises(CheckpointError, match=r"encoder\.width: 0\.25 -> 0\.5"):
        load_model(path, expected=expected)


def test_corrupt_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_model(bad)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a depth_pose_ros model"):
        load_model(foreign)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        read_metadata(tmp_path / "missing.safetensors")


def test_tampered_weights_are_rejected(tmp_path):
    """A file whose tensors do not fit its declared architecture fails loudly."""
    import json

    from safetensors.torch import save_file

    model = _model()
    meta = read_metadata_of(model)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("depth_decoder")}
    path = tmp_path / "t.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="missing"):
        load_model(path)
    assert json.loads(meta["net_config"])["encoder"]["width"] == 0.25


def read_metadata_of(model) -> dict[str, str]:
    import json

    from depth_pose_ros.nets.checkpoint import FORMAT
    from depth_pose_ros.nets.config import architecture_signature

    return {"format": FORMAT, "net_config": json.dumps(model.cfg.to_dict()),
            "signature": architecture_signature(model.cfg), "extra": "{}"}
