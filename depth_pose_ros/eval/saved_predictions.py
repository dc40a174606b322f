"""Saved predictions on disk, and depth predictions scored against ground-truth files.

Folders of predictions and ground truth are matched by file stem (``by_stem``); depth files are ``.npy``
(float metres) or 16-bit PNGs holding ``metres * png_scale``, flow files ``.npy`` (HxWx2) or KITTI flow
PNGs. ``evaluate_depth_files`` is what ``depth-pose eval depth --pred DIR --gt DIR`` computes; a file that
cannot be read is skipped and listed, not fatal.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from depth_pose_ros.data.kitti_flow import read_kitti_flow_png
from depth_pose_ros.data.source import FRAME_READ_ERRORS, read_depth_png
from depth_pose_ros.eval.depth_metrics import DepthMetricAccumulator

FLOW_PRED_SUFFIXES = (".npy", ".png")
DEPTH_SUFFIXES = (".npy", ".png")


def by_stem(folder: Path, suffixes: tuple[str, ...], what: str) -> dict[str, Path]:
    """The files of ``folder`` with one of ``suffixes``, by stem (``what`` names the folder in errors)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{what} directory not found: {folder}")
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in suffixes and p.is_file():
            if p.stem in files:
                raise ValueError(f"{what}: both {files[p.stem].name} and {p.name} in {folder}; keep one")
            files[p.stem] = p
    if not files:
        raise ValueError(f"{what}: no {'/'.join(suffixes)} files in {folder}")
    return files


def read_depth_file(path: Path, png_scale: float) -> Any:
    """HxW metres from .npy (float metres) or a 16-bit PNG holding ``metres * png_scale``."""
    if path.suffix.lower() == ".png":
        return read_depth_png(path, png_scale)
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read depth .npy {path}: {exc}") from None
    return arr  # shape checked by depth_metrics (HxW, 1xHxW or HxWx1)


def read_flow_file(path: Path) -> Any:
    """HxWx2 predicted flow from ``.npy`` or a KITTI flow PNG (pixels the PNG marks invalid read as
    zero flow: a prediction should cover every pixel)."""
    if path.suffix.lower() == ".png":
        return read_kitti_flow_png(path)[0]
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read flow .npy {path}: {exc}") from None
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{path}: expected HxWx2 flow (dx, dy), got shape {arr.shape}")
    return arr


@dataclass
class DepthFilesEvaluation:
    """Per image ``{"name": stem, <depth metrics>}``, their means (``summary``: empty when nothing was
    read) and the ``(stem, reason)`` of each pair that could not be read."""

    per_image: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[Any, str]] = field(default_factory=list)


def evaluate_depth_files(
    stems: Sequence[str],
    preds: dict[str, Path],
    gts: dict[str, Path],
    *,
    png_scale: float,
    median_scale: bool,
    garg_crop: bool,
    min_depth: float,
    max_depth: float,
) -> DepthFilesEvaluation:
    """Eigen depth metrics of ``preds[stem]`` against ``gts[stem]`` for each of ``stems``."""
    acc = DepthMetricAccumulator(
        median_scale=median_scale, garg_crop=garg_crop, min_depth=min_depth, max_depth=max_depth,
    )
    out = DepthFilesEvaluation()
    for stem in stems:
        try:
            pred, gt = read_depth_file(preds[stem], png_scale), read_depth_file(gts[stem], png_scale)
        except FRAME_READ_ERRORS as exc:  # one corrupt file: skip the image, report it at the end
            out.skipped.append((stem, str(exc)))
            continue
        try:
            m = acc.add(pred, gt)
        except ValueError as exc:
            raise ValueError(f"{stem} ({preds[stem]} vs {gts[stem]}): {exc}") from None
        out.per_image.append({"name": stem, **m})
    if out.per_image:
        out.summary = acc.summary()
    return out
