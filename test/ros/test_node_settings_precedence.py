"""Settings precedence of the node (docs/architecture.md): dataclass default < model folder <
estimator_config file < parameters that were set. A parameter left at its declared default must not
override what the model folder or the estimator_config file chose (it used to: bug of issue 11)."""
from __future__ import annotations

import shutil

import pytest
import yaml

from depth_pose_ros.nets.zoo import default_checkpoint
from depth_pose_ros.pipeline.config import EstimatorConfig
from depth_pose_ros.ros.node_params import ESTIMATOR_PARAMS, defaults, make_estimator, parse_settings


def _estimator_yaml(tmp_path, data) -> str:
    path = tmp_path / "estimator.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_estimator_config_file_survives_unset_parameters(tmp_path):
    cfg_file = _estimator_yaml(tmp_path, {"max_gap_s": 2.0, "scale": {"source": "camera_height"},
                                          "flow_source": "dis", "pose": {"image_fraction": 0.25}})
    # the node passes every declared value, but only estimator_config was set
    values = {**defaults(), "estimator_config": cfg_file}
    s = parse_settings(values, explicit={"estimator_config"})
    assert s.estimator.max_gap_s == 2.0 and s.estimator.scale.source == "camera_height"
    assert s.estimator.flow_source == "dis" and s.estimator.pose.image_fraction == 0.25
    # a parameter that *was* set wins over the file
    s = parse_settings({**values, "max_gap_s": 1.0}, explicit={"estimator_config", "max_gap_s"})
    assert s.estimator.max_gap_s == 1.0 and s.estimator.scale.source == "camera_height"


def test_every_estimator_parameter_defaults_to_the_dataclass():
    base = EstimatorConfig()
    s = parse_settings({})
    for name, field_path in ESTIMATOR_PARAMS.items():
        value_cfg, value_default = s.estimator, base
        for part in field_path.split("."):
            value_cfg, value_default = getattr(value_cfg, part), getattr(value_default, part)
        assert value_cfg == value_default, name
        assert defaults()[name] == value_default, name


@pytest.mark.parametrize("name, value, field_path", [
    ("max_gap_s", 1.5, "max_gap_s"), ("input.height", 96, "height"), ("flow_source", "network", "flow_source"),
    ("scale.source", "camera_height", "scale.source"), ("pose.image_fraction", 0.75, "pose.image_fraction"),
])
def test_model_folder_wins_over_defaults_and_loses_to_set_parameters(tmp_path, name, value, field_path):
    shipped = default_checkpoint()
    if shipped is None:
        pytest.skip("no shipped model in models/default")
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(shipped, folder / "model.safetensors")
    (folder / "estimator.yaml").write_text(yaml.safe_dump(
        {"height": 64, "width": 192, "flow_source": "dis", "max_gap_s": 3.0, "scale": {"source": "none"},
         "pose": {"image_fraction": 0.5}}))

    def effective(settings):
        est, _ = make_estimator(settings, warn=lambda _: None)
        v = est.config
        for part in field_path.split("."):
            v = getattr(v, part)
        return est.config, v

    cfg, _ = effective(parse_settings({"checkpoint": str(folder / "model.safetensors")}))
    assert (cfg.height, cfg.width, cfg.flow_source, cfg.max_gap_s) == (64, 192, "dis", 3.0)
    _, got = effective(parse_settings({"checkpoint": str(folder / "model.safetensors"), name: value}))
    assert got == value
