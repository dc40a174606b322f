"""Finding models on disk: the shipped default, a user checkpoint or model folder, and the input size a
training run used. A model folder holds ``model.safetensors`` (weights + architecture, see
:mod:`depth_pose_ros.nets.checkpoint`) and optionally ``estimator.yaml`` (the pipeline settings the model
was evaluated with, read by :mod:`depth_pose_ros.pipeline.factory`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from depth_pose_ros.utils import paths
from depth_pose_ros.utils.config import load_yaml

DEFAULT_MODEL = "default"


def default_checkpoint() -> Optional[Path]:
    """``models/default/model.safetensors`` when it is there (source tree or installed share)."""
    path = paths.models_dir() / DEFAULT_MODEL / "model.safetensors"
    return path if path.is_file() else None


def resolve_checkpoint(checkpoint: Optional[str]) -> Optional[Path]:
    """A checkpoint path from a file, a model folder, a shipped model name, or None (the default)."""
    if not checkpoint:
        return default_checkpoint()
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        path = path / "model.safetensors"
    elif not path.exists() and (paths.models_dir() / checkpoint).is_dir():
        path = paths.models_dir() / checkpoint / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path


def trained_input_size(checkpoint: Path) -> Optional[tuple[int, int]]:
    """The (height, width) a training run used, so that a model straight out of ``runs/`` is run at the
    size it learned (a network trained at 64x192 sees a different world at 192x640): the file's
    metadata (``extra.height/width``, written by training) or the run's ``config.yaml`` beside it."""
    from depth_pose_ros.nets.checkpoint import read_metadata  # (torch: only when asked)

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
