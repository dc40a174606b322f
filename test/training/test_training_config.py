"""Training config: base: inheritance, strict keys, overrides, stage validation."""
from __future__ import annotations

import pytest
import yaml

from depth_pose_ros.utils.config import ConfigError
from training.config import (
    TrainConfig,
    config_from_dict,
    load_config_dict,
    load_train_config,
    method_configs,
    resolve_config_path,
)


def _write(path, data) -> str:
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_base_chain_and_list_bases_merge_in_order(tmp_path) -> None:
    _write(tmp_path / "a.yaml", {"steps": 5, "data": {"height": 64, "width": 96}, "losses": {"icp": {"weight": 0.3}}})
    _write(tmp_path / "b.yaml", {"base": "a.yaml", "data": {"width": 128}, "seed": 2})
    _write(tmp_path / "c.yaml", {"steps": 9, "losses": {"icp": {"iterations": 7}}})
    top = _write(tmp_path / "top.yaml", {"base": ["b.yaml", "c.yaml"], "seed": 4})
    cfg = load_train_config(top)
    assert (cfg.steps, cfg.seed, cfg.data.height, cfg.data.width) == (9, 4, 64, 128)
    assert (cfg.losses.icp.weight, cfg.losses.icp.iterations) == (0.3, 7)  # mappings merge key by key
    assert "base" not in load_config_dict(top)


def test_circular_base_is_an_error(tmp_path) -> None:
    _write(tmp_path / "x.yaml", {"base": "y.yaml"})
    _write(tmp_path / "y.yaml", {"base": "x.yaml"})
    with pytest.raises(ConfigError, match="circular"):
        load_train_config(tmp_path / "x.yaml")


def test_unknown_keys_and_bad_values_name_the_file_and_key(tmp_path) -> None:
    bad = _write(tmp_path / "bad.yaml", {"losses": {"photometric": {"wieght": 1.0}}})
    with pytest.raises(ConfigError, match=r"bad.yaml.*losses.photometric: wieght"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="model.encoder"):
        load_train_config(None, ["model.encoder.widht=0.5"])
    with pytest.raises(ConfigError, match="pose_source"):
        load_train_config(None, ["pose_source=magic"])
    with pytest.raises(ConfigError, match="multiples of 32"):
        load_train_config(None, ["data.height=100"])
    with pytest.raises(ConfigError, match="clip_len"):
        load_train_config(None, ["data.clip_len=2"])
    with pytest.raises(ConfigError, match="override"):
        load_train_config(None, ["steps"])


def test_stage_validation() -> None:
    with pytest.raises(ConfigError, match="unknown module group"):
        load_train_config(None, ["schedule.stages=[{name: a, steps: 3, train: [wings]}]"])
    with pytest.raises(ConfigError, match="unknown loss term"):
        load_train_config(None, ["schedule.stages=[{name: a, steps: 3, losses: {magic: 1}}]"])
    with pytest.raises(ConfigError, match="only the last stage"):
        load_train_config(None, ["schedule.stages=[{name: a}, {name: b}]"])


def test_names_resolve_to_shipped_configs_and_round_trip() -> None:
    assert resolve_config_path("monodepth2").name == "monodepth2.yaml"
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        resolve_config_path("nonexistent")
    for path in method_configs():
        cfg = load_train_config(path)
        again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
        assert again == cfg, path.name
        assert cfg.method != "custom", f"{path.name} sets no method label"
    assert all(not p.name.startswith("_") for p in method_configs())


def test_defaults_are_valid() -> None:
    cfg = TrainConfig()
    assert cfg.losses.weights()["photometric"] == 1.0
    assert "occlusion_warmup_steps" not in cfg.losses.term_names()


def test_loss_defaults_have_one_source() -> None:
    """The cross-weighted loss's defaults (Fang et al.'s lambda_ed, lambda_eo, threshold) are the config's."""
    import inspect

    from depth_pose_ros.losses.occlusion_aware import adaptive_cross_weighted_loss
    from training.config import CrossWeightedConfig

    defaults = {k: v.default for k, v in inspect.signature(adaptive_cross_weighted_loss).parameters.items()}
    cfg = CrossWeightedConfig()
    assert (cfg.lambda_ed, cfg.lambda_eo, cfg.threshold) == (0.002, 0.02, 0.28)  # sec. 4 of the paper
    for key in ("lambda_ed", "lambda_eo", "threshold", "temperature"):
        assert defaults[key] == getattr(cfg, key), key


def test_training_never_imports_the_pipeline() -> None:
    """training/ sits beside the pipeline layer: it must not pull in online refinement (or any pipeline
    module), which would tie the training losses to the Estimator's code."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    modules = sorted(f"training.{p.stem}" for p in (repo / "training").glob("*.py") if p.stem != "__init__")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print([m for m in sys.modules if m.startswith('depth_pose_ros.pipeline')])")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
