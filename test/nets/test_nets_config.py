"""NetConfig: strict loading, round trip, shipped YAML files, architecture signature."""
from __future__ import annotations

from pathlib import Path

import pytest

from depth_pose_ros.nets.config import NetConfig, architecture_signature
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.utils.paths import REPO_ROOT

MODELS = REPO_ROOT / "config" / "models"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"bogus": 1}, "bogus"),
        ({"flow": {"serch_range": 3}}, "serch_range"),
        ({"encoder": {"depth": "eighteen"}}, "encoder.depth"),
        ({"flow": {"occlusion_mask": 3}}, "flow.occlusion_mask"),
        ({"encoder": {"depth": 101}}, "encoder.depth"),
        ({"recurrent": {"levels": [3, 4], "hidden_channels": [8]}}, "hidden_channels"),
        ({"idce": {"enabled": True, "source": "pose_encoder"}}, "pose_net.enabled"),
        ({"flow": {"feature_channels": [8, 8]}}, "flow.feature_channels"),
    ],
)
def test_from_dict_rejects_bad_input_naming_the_key(data: dict, message: str) -> None:
    with pytest.raises(ValueError, match="my.yaml") as info:
        NetConfig.from_dict(data, where="my.yaml")
    assert message in str(info.value)


def test_round_trip_and_partial_override() -> None:
    cfg = NetConfig.from_dict({"encoder": {"width": 0.25}, "recurrent": {"type": "lstm"}})
    assert cfg.encoder.width == 0.25 and cfg.encoder.depth == 18  # untouched keys keep defaults
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    assert isinstance(cfg.to_dict()["flow"]["estimator_channels"][0], list)  # YAML-safe


@pytest.mark.parametrize("name", ["st_light.yaml", "st_resnet18.yaml"])
def test_shipped_configs_load_and_name_every_switch(name: str) -> None:
    path = MODELS / name
    cfg = NetConfig.from_yaml(path)
    import yaml

    raw = yaml.safe_load(path.read_text())
    assert raw == cfg.to_dict()  # every key spelt out, nothing implicit
    build_model(cfg)


def test_light_yaml_is_the_default() -> None:
    assert NetConfig.from_yaml(MODELS / "st_light.yaml") == NetConfig()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        NetConfig.from_yaml(tmp_path / "nope.yaml")


def test_architecture_signature_is_stable_and_discriminating() -> None:
    a = architecture_signature(NetConfig())
    assert a == architecture_signature(NetConfig.from_dict(NetConfig().to_dict()))
    assert a.startswith("net-v1-") and len(a) == len("net-v1-") + 16
    assert a != architecture_signature(NetConfig.from_dict({"encoder": {"width": 1.0}}))
    assert a != architecture_signature(NetConfig.from_dict({"flow": {"occlusion_mask": False}}))
    assert build_model(NetConfig()).signature == a
