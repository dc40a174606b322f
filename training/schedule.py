"""The training schedule: learning rate and stages as pure functions of the step.

Why a module of its own: the schedule is what a step number means -- its learning rate (:func:`lr_at`:
warm-up, then constant / step decay / cosine), its stage (:func:`stage_at` in ``schedule.stages``), that
stage's loss weights (:func:`stage_weights`) and the module groups it trains (:func:`trainable_groups`,
:func:`apply_stage`). Being pure functions of the step, they need no saved "scheduler state": a resumed
run recomputes them from the step alone. The dataset (``training.dataset``) reads the stages' weights to
know whether exact depth must be kept; the trainer (``training.train``) applies them.
"""
from __future__ import annotations

import math

from depth_pose_ros.nets.model import DepthFlowNet
from training.config import MODULE_GROUPS, StageConfig, TrainConfig


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate at ``step`` (0-based): warm-up, then constant / step decay / cosine."""
    o = cfg.optim
    lr = o.lr
    if o.lr_schedule == "step" and o.lr_step > 0:
        lr *= o.lr_gamma ** (step // o.lr_step)
    elif o.lr_schedule == "cosine":
        lr *= 0.5 * (1.0 + math.cos(math.pi * min(step, cfg.steps) / max(cfg.steps, 1)))
    if o.warmup_steps > 0 and step < o.warmup_steps:
        lr *= (step + 1) / o.warmup_steps
    return lr


def stages_of(cfg: TrainConfig) -> list[StageConfig]:
    return list(cfg.schedule.stages) or [StageConfig(name="all")]


def stage_at(cfg: TrainConfig, step: int) -> tuple[int, StageConfig]:
    """Index and config of the stage that ``step`` belongs to."""
    stages = stages_of(cfg)
    end = 0
    for i, st in enumerate(stages):
        if st.steps == 0:
            return i, st
        end += st.steps
        if step < end:
            return i, st
    return len(stages) - 1, stages[-1]


def stage_weights(cfg: TrainConfig, stage: StageConfig) -> dict[str, float]:
    weights = cfg.losses.weights()
    weights.update({k: float(v) for k, v in stage.losses.items()})
    return weights


def trainable_groups(stage: StageConfig) -> set[str]:
    groups = set(stage.train) if stage.train else set(MODULE_GROUPS)
    return groups - set(stage.freeze)


def apply_stage(model: DepthFlowNet, stage: StageConfig) -> None:
    """requires_grad per module group; frozen groups also keep their BatchNorm statistics."""
    train = trainable_groups(stage)
    for group, attr in MODULE_GROUPS.items():
        module = getattr(model, attr, None)
        if module is None:
            continue
        flag = group in train
        for p in module.parameters():
            p.requires_grad_(flag)
        if not flag:
            module.eval()
