"""The training config of ``depth-pose finetune``: a model's own config with the user's recordings in front.

The field workflow is *record -> fine-tune -> launch*. This module turns "these recordings, from this model,
for this long" into a :class:`~training.config.TrainConfig` without a hand-written YAML file:

- each recording is split in time: the first ``1 - holdout`` of its frames train, the last ``holdout`` are
  kept for the before/after report (:func:`split_source`, ``frames="START:STOP"`` of ``open_source``);
- the starting model's training config (``config.yaml`` of its folder) is the base, ``init_from`` its weights;
- ``data.train`` becomes the recordings (shrunk in memory to ``width`` px, the geometry teacher running at their
  recorded size) mixed with a few synthetic worlds whose exact depth keeps the model from forgetting the shape
  of scenes (the recipe of ``training/configs/real_mix_rooms.yaml``: ``losses.depth_supervised`` with
  variance_focus 0.85, ``rigid_flow_consistency`` off, the node's aspect sizes in ``data.extra_sizes``);
- the budget is ``steps`` and / or ``max_minutes`` (step time summed over resumes).
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros.data.source import open_source
from depth_pose_ros.utils.config import ConfigError, apply_overrides
from training.config import SourceConfig, TrainConfig, config_from_dict

#: Synthetic worlds mixed into a fine-tune (``{h}``/``{w}``: the model's training size). The specs of
#: ``real_mix_rooms.yaml`` at 64x192, so the geometry teacher's cache of those runs serves here too.
SYNTHETIC_WORLDS = (
    "synthetic:seed=0,length=400,height={h},width={w},num_moving=9",
    "synthetic:seed=5,length=200,height={h},width={w},traffic=dense",
    "synthetic:world=room,seed=0,length=200,height={h},width={w}",
    "synthetic:seed=1,length=400,height={h},width={w},fps=30",
    "synthetic:world=room,seed=1,length=200,height={h},width={w}",
    "synthetic:seed=2,length=400,height={h},width={w},num_moving=9",
)
RECORDED_WIDTH = 384  # recorded frames are shrunk to this width in memory (SourceConfig.width)
#: Fine-tune learning rate ceiling: a tenth of the from-scratch rate (1e-3), the usual fine-tuning ratio, so
#: a recording of one place nudges the weights instead of overwriting what the other worlds taught.
FINETUNE_LR = 1e-4
MAX_REPEAT = 10


@dataclass
class SplitSource:
    """One user recording split into its training head and held-out tail."""

    spec: str  # open_source spec (paths made absolute)
    options: dict[str, Any]  # open_source options except ``frames``
    name: str  # the source's own description
    num_frames: int
    train_frames: Any  # ``frames`` option of the training part ("START:STOP[:STEP]" or a list)
    holdout_frames: Any  # ``frames`` option of the held-out tail
    image_size: tuple[int, int]  # (height, width) of its frames
    num_train: int = 0
    num_holdout: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def source_config(self, width: int = RECORDED_WIDTH, repeat: int = 1) -> SourceConfig:
        return SourceConfig(spec=self.spec, options={**self.options, "frames": self.train_frames},
                            repeat=int(repeat), width=int(width) if width < self.image_size[1] else 0)


def _frames_option(raw: np.ndarray) -> Any:
    """A ``frames`` option selecting exactly the raw indices ``raw``: a slice string when they are evenly
    spaced (readable in config.yaml, stable teacher-cache key), else the list."""
    raw = np.asarray(raw, dtype=np.int64)
    if raw.size == 1:
        return f"{raw[0]}:{raw[0] + 1}"
    steps = np.diff(raw)
    if np.all(steps == steps[0]) and steps[0] > 0:
        step = int(steps[0])
        return f"{raw[0]}:{raw[-1] + 1}" + (f":{step}" if step != 1 else "")
    return [int(i) for i in raw]


def _absolute_spec(spec: str) -> str:
    """``spec`` with a file-system path made absolute (``data:`` and ``synthetic`` specs unchanged), so the
    written config works from any directory."""
    if spec.startswith(("data:", "synthetic")):
        return spec
    return str(Path(spec).expanduser().resolve())


def split_source(spec: str, holdout: float, min_train: int = 3, min_holdout: int = 2,
                 **options: Any) -> SplitSource:
    """Open ``spec`` (``open_source`` with ``options``; ``frames`` selects the part of the recording to use)
    and split it: the last ``holdout`` fraction of its frames (at least ``min_holdout``) is held out.

    Raises FileNotFoundError / ValueError naming the source when it cannot be opened, is a synthetic world
    (fine-tuning is for recordings), or holds too few frames for both parts.
    """
    if spec == "synthetic" or str(spec).startswith("synthetic:"):
        raise ValueError(f"{spec}: fine-tuning is for recordings (bag, image folder, KITTI sequence, video); "
                         "the synthetic worlds are mixed in already")
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"--holdout must be in (0, 1), got {holdout}")
    opts = {k: v for k, v in options.items() if v is not None}
    try:
        src = open_source(spec, **opts)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"source {spec}: {exc}") from None
    raw = np.asarray(src.raw_indices)
    n = len(raw)
    n_hold = max(min_holdout, int(round(holdout * n)))
    n_train = n - n_hold
    if n_train < min_train:
        raise ValueError(f"source {spec}: {n} frames are too few to hold out {n_hold} and train on at least "
                         f"{min_train} (select more frames or lower --holdout)")
    try:
        first = src[0]
    except ValueError as exc:
        raise ValueError(f"source {spec}: its first frame cannot be read: {exc}") from None
    rest = {k: v for k, v in opts.items() if k != "frames"}
    return SplitSource(spec=_absolute_spec(str(spec)), options=rest, name=src.name, num_frames=n,
                       train_frames=_frames_option(raw[:n_train]), holdout_frames=_frames_option(raw[n_train:]),
                       image_size=(int(first.image.shape[0]), int(first.image.shape[1])),
                       num_train=n_train, num_holdout=n_hold)


def base_config(model_dir: Path) -> TrainConfig:
    """The training config a model folder was trained with (its ``config.yaml``)."""
    path = Path(model_dir) / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: no config.yaml (the training config of the model to fine-tune); "
                                "a model folder holds model.safetensors and config.yaml")
    from depth_pose_ros.utils.config import load_yaml

    return config_from_dict(load_yaml(path), where=str(path))


def finetune_config(base: TrainConfig, sources: list[SplitSource], init_from: str, *, steps: Optional[int] = None,
                    minutes: Optional[float] = None, synthetic_worlds: int = 4,
                    extra_sizes: Sequence[Sequence[int]] = (), teacher_cache: Optional[str] = None,
                    name: str = "finetune", width: int = RECORDED_WIDTH, overrides: Sequence[str] = ()) -> TrainConfig:
    """``base`` turned into the fine-tune of ``init_from`` on ``sources`` (see the module docstring).

    ``steps`` / ``minutes``: the budget (at least one); with ``minutes`` alone the step count is unbounded and
    the run stops after that much step time. ``extra_sizes``: the network input sizes the node will run the
    recordings' cameras at (added to the base's). ``overrides``: ``key=value`` strings applied last.
    """
    if not sources:
        raise ValueError("finetune: at least one source is needed")
    if not steps and not minutes:
        raise ValueError("finetune: give a budget: --minutes M or --steps N")
    if steps is not None and steps < 1:
        raise ValueError(f"--steps must be >= 1, got {steps}")
    if minutes is not None and minutes <= 0:
        raise ValueError(f"--minutes must be > 0, got {minutes}")
    if not 0 <= synthetic_worlds <= len(SYNTHETIC_WORLDS):
        raise ValueError(f"--synthetic must be in 0..{len(SYNTHETIC_WORLDS)}, got {synthetic_worlds}")
    cfg = copy.deepcopy(base)
    d = cfg.data
    synth = [SourceConfig(spec=s.format(h=d.height, w=d.width))
             for s in SYNTHETIC_WORLDS[:synthetic_worlds]]
    synth_frames = sum(_synthetic_length(s.spec) for s in synth)
    train_frames = sum(s.num_train for s in sources)
    # the recordings weigh about as much as the synthetic worlds in every shuffled epoch (without copies)
    repeat = int(np.clip(round(synth_frames / max(train_frames, 1)), 1, MAX_REPEAT)) if synth else 1
    d.train = [s.source_config(width, repeat) for s in sources] + synth
    if d.teacher.size_factor <= 0:
        d.teacher.size_factor = 3.0
    if teacher_cache is not None:
        d.teacher.cache_dir = str(teacher_cache)
    sizes = [list(map(int, hw)) for hw in list(d.extra_sizes) + list(extra_sizes)]
    d.extra_sizes = [hw for i, hw in enumerate(sizes) if hw != [d.height, d.width] and hw not in sizes[:i]]
    losses = cfg.losses
    if losses.depth_teacher.weight <= 0:
        losses.depth_teacher.weight = 1.0
    if synth:
        losses.depth_supervised.weight = 1.0
        losses.depth_supervised.variance_focus = 0.85
    losses.rigid_flow_consistency.weight = 0.0
    losses.occlusion_warmup_steps = 0  # the flow is trained already: no warm-up without occlusion masks
    cfg.optim.lr = min(cfg.optim.lr, FINETUNE_LR)
    cfg.init_from = str(init_from)
    cfg.method = name
    cfg.max_minutes = float(minutes or 0.0)
    cfg.steps = int(steps) if steps else 10_000_000  # minutes alone: the time budget ends the run
    cfg.log.progress = True
    if cfg.checkpoint.every == 0 or cfg.checkpoint.every > 200:
        cfg.checkpoint.every = 200  # a killed run loses at most 200 steps
    if overrides:
        try:
            data = apply_overrides(cfg.to_dict(), list(overrides))
        except ConfigError as exc:
            raise ConfigError(f"--set: {exc}") from None
        cfg = config_from_dict(data, where="--set")
    cfg.validate()
    return cfg


def _synthetic_length(spec: str) -> int:
    for item in spec.split(":", 1)[-1].split(","):
        key, _, value = item.partition("=")
        if key.strip() == "length":
            return int(value)
    return 120
