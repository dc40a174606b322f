"""The one way to build an :class:`Estimator`: the CLI (``demo``, ``run``, ``vo --flow network``,
``eval``, ``export``), the node and the benchmarks all call :func:`build_estimator`.

Settings precedence, lowest first (``docs/architecture.md``, "Settings"):

1. the :class:`EstimatorConfig` dataclass defaults (the only place a default is written);
2. the model folder: its ``estimator.yaml``, else the input size the network was trained at; untrained
   weights count as a model whose folder says ``flow_source: dis`` (their flow is noise);
3. ``layers``, in order: e.g. the node's ``estimator_config`` YAML, then the node parameters that were
   actually set (a parameters file, then the command line);
4. ``overrides``: ``key=value`` strings (``--set`` on the command line).

A later source overrides a key only when it names that key, so nothing a layer leaves unsaid resets
what an earlier one chose.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

from depth_pose_ros.nets.zoo import DEFAULT_MODEL, resolve_checkpoint, trained_input_size
from depth_pose_ros.pipeline.config import EstimatorConfig
from depth_pose_ros.utils.config import apply_overrides, deep_merge, from_dict, load_yaml

log = logging.getLogger(__name__)

#: What the folder of untrained weights would say: the pose must come from classical flow.
UNTRAINED_MODEL_SETTINGS: dict[str, Any] = {"flow_source": "dis"}


def model_settings(checkpoint: Optional[Path]) -> dict[str, Any]:
    """Layer 2: the settings a model folder carries (``estimator.yaml``; the training size otherwise)."""
    if checkpoint is None:
        return dict(UNTRAINED_MODEL_SETTINGS)
    data: dict[str, Any] = {}
    if (checkpoint.parent / "estimator.yaml").is_file():
        data = load_yaml(checkpoint.parent / "estimator.yaml")
    if not ("height" in data and "width" in data):
        size = trained_input_size(checkpoint)
        if size is not None:
            data = {**data, "height": size[0], "width": size[1]}
    return data


def estimator_config(checkpoint: Optional[Path], layers: Sequence[Mapping[str, Any]] = (),
                     overrides: Sequence[str] = ()) -> EstimatorConfig:
    """EstimatorConfig of a model (None: untrained) under ``layers`` and ``key=value`` ``overrides``."""
    data = model_settings(checkpoint)
    for layer in layers:
        data = deep_merge(data, dict(layer))
    return from_dict(EstimatorConfig, apply_overrides(data, list(overrides)))


def build_estimator(checkpoint: Optional[str] = None, overrides: Sequence[str] = (),
                    layers: Sequence[Mapping[str, Any]] = (), *, allow_untrained: bool = True,
                    model_config: str = "", seed: int = 0,
                    warn: Callable[[str], None] = log.warning) -> tuple[Any, str]:
    """(Estimator, one-line description of the weights used).

    ``checkpoint``: a file, a model folder or a shipped model name; empty: ``models/default``. Without
    any, untrained weights of ``model_config`` (a NetConfig YAML; empty: the default network) seeded
    with ``seed`` are used when ``allow_untrained`` -- announced through ``warn``, since their depth
    is meaningless.
    """
    path = resolve_checkpoint(checkpoint or None)
    cfg = estimator_config(path, layers, overrides)
    from depth_pose_ros.pipeline.estimator import Estimator

    if path is not None:
        trained = model_settings(path)
        if "height" in trained and "width" in trained:
            ratio = (cfg.height * cfg.width) / float(int(trained["height"]) * int(trained["width"]))
            if not 0.5 <= ratio <= 2.0:
                warn(f"network input {cfg.height}x{cfg.width} has {ratio:.2g}x the pixels of the size {path} was "
                     f"trained at ({trained['height']}x{trained['width']}): the network learned depth and flow at "
                     "that pixel scale and is untested at this one; leave height/width unset to use the trained size")
        return Estimator.from_checkpoint(path, cfg, map_location=cfg.device), f"checkpoint {path}"
    if not allow_untrained:
        raise FileNotFoundError(f"no checkpoint given and no shipped default model in models/{DEFAULT_MODEL}/")
    import torch

    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model

    net_cfg = NetConfig.from_yaml(Path(model_config).expanduser()) if model_config else NetConfig()
    torch.manual_seed(seed)
    source = (f"UNTRAINED weights (no models/{DEFAULT_MODEL}; seed {seed}, {model_config or 'default NetConfig'}), "
              f"flow: {cfg.flow_source}")
    warn(f"no trained model found: running {source}. Depth is not meaningful; give a trained checkpoint.")
    return Estimator(build_model(net_cfg), cfg), source
