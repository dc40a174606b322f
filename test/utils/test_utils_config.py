from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from depth_pose_ros.utils.config import ConfigError, apply_overrides, from_dict, load_config, to_dict


@dataclass
class Inner:
    size: int = 3
    kind: Literal["a", "b"] = "a"


@dataclass
class Outer:
    name: str = "x"
    rate: float = 1.0
    flag: bool = False
    levels: list[int] = field(default_factory=lambda: [1, 2])
    inner: Inner = field(default_factory=Inner)
    maybe: Optional[float] = None


def test_round_trip_and_defaults():
    cfg = from_dict(Outer, {"rate": 2, "inner": {"kind": "b"}})
    assert cfg.rate == 2.0 and isinstance(cfg.rate, float)
    assert cfg.inner == Inner(size=3, kind="b")
    assert from_dict(Outer, to_dict(cfg)) == cfg


def test_unknown_key_names_path():
    with pytest.raises(ConfigError, match="inner.*sise"):
        from_dict(Outer, {"inner": {"sise": 4}})


def test_type_errors():
    with pytest.raises(ConfigError, match="inner.size"):
        from_dict(Outer, {"inner": {"size": 2.5}})
    with pytest.raises(ConfigError, match="kind"):
        from_dict(Outer, {"inner": {"kind": "c"}})
    with pytest.raises(ConfigError, match="flag"):
        from_dict(Outer, {"flag": "maybe"})


def test_overrides_and_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: y\ninner:\n  size: 5\n")
    cfg = load_config(Outer, path, ["inner.size=7", "levels=[4, 5]", "maybe=0.5"])
    assert (cfg.name, cfg.inner.size, cfg.levels, cfg.maybe) == ("y", 7, [4, 5], 0.5)
    assert apply_overrides({"a": {"b": 1}}, ["a.c=2"]) == {"a": {"b": 1, "c": 2}}
    with pytest.raises(ConfigError):
        apply_overrides({}, ["novalue"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(Outer, tmp_path / "nope.yaml")


def test_partial_nested_mapping_keeps_the_field_default_factory():
    """`--set two_view.seed=3` must keep the Estimator's own two-view defaults (estimator_two_view()),
    not fall back to TwoViewConfig's class defaults for every key it does not name."""
    from depth_pose_ros.pipeline.config import EstimatorConfig, estimator_two_view

    cfg = from_dict(EstimatorConfig, {"two_view": {"seed": 3}})
    assert cfg.two_view.seed == 3
    assert cfg.two_view.num_samples == estimator_two_view().num_samples != 6000
    assert cfg.refinement.two_view.ransac_method == "ransac"  # loss_two_view(), untouched
    cfg = from_dict(EstimatorConfig, {"refinement": {"two_view": {"seed": 5}, "iterations": 2}})
    assert cfg.refinement.two_view.ransac_method == "ransac" and cfg.refinement.two_view.seed == 5


def test_a_renamed_key_fails_naming_its_new_name(tmp_path):
    """Issue 20: an old key is no alias; the error names the new key (utils.config.RENAMED), for the estimator
    config (YAML and --set alike), the training config and a config nested under a prefix."""
    from depth_pose_ros.pipeline.config import EstimatorConfig
    from depth_pose_ros.utils.config import RENAMED, renamed_key
    from training.config import load_train_config

    assert RENAMED["pose.scale"] == "pose.image_fraction"
    with pytest.raises(ConfigError, match=r"^pose\.scale was renamed pose\.image_fraction$"):
        load_config(EstimatorConfig, overrides=["pose.scale=0.5"])
    path = tmp_path / "estimator.yaml"
    path.write_text("pose:\n  scale: 0.5\n  widht: 3\n")
    with pytest.raises(ConfigError, match=r"pose\.scale was renamed pose\.image_fraction; unknown .*in pose: widht"):
        load_config(EstimatorConfig, path)
    with pytest.raises(ConfigError, match=r"data\.teacher\.scale was renamed data\.teacher\.size_factor"):
        load_train_config(None, ["data.teacher.scale=3"])
    assert renamed_key("estimator.pose.scale") == "estimator.pose.image_fraction"
    assert renamed_key("scale") is None and renamed_key("scale.source") is None and renamed_key("xpose.scale") is None
    assert load_config(EstimatorConfig, overrides=["pose.image_fraction=0.5"]).pose.image_fraction == 0.5
