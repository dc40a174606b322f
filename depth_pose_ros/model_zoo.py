"""Finding and loading models: the shipped default, a user checkpoint, or untrained weights.

A model folder holds ``model.safetensors`` (weights + architecture, see :mod:`checkpoint`) and
optionally ``estimator.yaml`` (the :class:`EstimatorConfig` the model was trained and evaluated
with, e.g. its input size). Callers pass ``key=value`` overrides on top.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional

from depth_pose_ros.config_utils import apply_overrides, from_dict, load_yaml
from depth_pose_ros.estimator import Estimator
from depth_pose_ros.estimator_types import EstimatorConfig
from depth_pose_ros.paths import models_dir

log = logging.getLogger(__name__)
DEFAULT_MODEL = "default"


def default_checkpoint() -> Optional[Path]:
    """``models/default/model.safetensors`` when it is there (source tree or installed share)."""
    path = models_dir() / DEFAULT_MODEL / "model.safetensors"
    return path if path.is_file() else None


def resolve_checkpoint(checkpoint: Optional[str]) -> Optional[Path]:
    """A checkpoint path from a file, a model folder, a shipped model name, or None (the default)."""
    if not checkpoint:
        return default_checkpoint()
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        path = path / "model.safetensors"
    elif not path.exists() and (models_dir() / checkpoint).is_dir():
        path = models_dir() / checkpoint / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def trained_input_size(checkpoint: Path) -> Optional[tuple[int, int]]:
    """The (height, width) a training run used, so that a model straight out of ``runs/`` is run at the
    size it learned (a network trained at 64x192 sees a different world at 192x640): the file's
    metadata (``extra.height/width``, written by training) or the run's ``config.yaml`` beside it."""
    from depth_pose_ros.checkpoint import read_metadata

    try:
        extra = json.loads(read_metadata(checkpoint).get("extra", "{}"))
        if extra.get("height") and extra.get("width"):
            return int(extra["height"]), int(extra["width"])
    except Exception:  # unreadable here: load_model reports it properly later
        return None
    cfg = checkpoint.parent / "config.yaml"
    if cfg.is_file():
        data = (load_yaml(cfg) or {}).get("data") or {}
        if data.get("height") and data.get("width"):
            return int(data["height"]), int(data["width"])
    return None


def estimator_config(checkpoint: Optional[Path], overrides: Optional[list[str]] = None) -> EstimatorConfig:
    """EstimatorConfig: defaults <- the model folder's estimator.yaml <- ``key=value`` overrides."""
    data: dict = {}
    if checkpoint is not None and (checkpoint.parent / "estimator.yaml").is_file():
        data = load_yaml(checkpoint.parent / "estimator.yaml")
    if checkpoint is not None and not ("height" in data and "width" in data):
        size = trained_input_size(checkpoint)
        if size is not None:
            data = {**data, "height": size[0], "width": size[1]}
    return from_dict(EstimatorConfig, apply_overrides(data, overrides or []))


def build_estimator(checkpoint: Optional[str] = None, overrides: Optional[list[str]] = None,
                    allow_untrained: bool = True) -> tuple[Estimator, str]:
    """(Estimator, one-line description of the weights used).

    With no checkpoint given and no shipped default, untrained weights are used when
    ``allow_untrained`` (depth is then meaningless; flow falls back to classical DIS so the pose is
    still real) — the description says so loudly.
    """
    path = resolve_checkpoint(checkpoint)
    cfg = estimator_config(path, overrides)
    if path is not None:
        return Estimator.from_checkpoint(path, cfg, map_location=cfg.device), f"checkpoint {path}"
    if not allow_untrained:
        raise FileNotFoundError("no checkpoint given and no shipped default model in models/default/")
    import torch

    from depth_pose_ros.nets.model import build_model

    torch.manual_seed(0)
    if "flow_source" not in " ".join(overrides or []):
        cfg.flow_source = "dis"
    log.warning("no trained model found: using UNTRAINED weights (depth is not meaningful), flow from %s",
                cfg.flow_source)
    return Estimator(build_model(), cfg), f"UNTRAINED weights (no models/{DEFAULT_MODEL}), flow: {cfg.flow_source}"
