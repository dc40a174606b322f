"""Optical flow scored on KITTI 2015 against its ground truth, with zero flow scored beside it.

What ``depth-pose eval flow`` computes (the command picks the flow and prints / writes the numbers): the
flow of each pair comes from a *flow function* ``(image1, image2) -> HxWx2`` (DIS, or a model's
``Estimator.flow_between``: this module imports no network code, the caller passes it in) or from saved
prediction files (then the images are not decoded). A flow of another size than the ground truth is
resized, values scaled (``eval.flow_metrics.resize_flow``). ``epe`` is the mean of per-image EPE,
``fl_all`` the pixel-pooled outlier percentage (KITTI devkit); the ``noc`` metrics exist when the data
has ``flow_noc``. A pair that cannot be read is skipped and listed; none readable is an error.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros.data.kitti_flow import KittiFlow2015, read_kitti_flow_png
from depth_pose_ros.data.source import FRAME_READ_ERRORS, skipped_summary
from depth_pose_ros.eval.flow_metrics import FlowMetricAccumulator, resize_flow
from depth_pose_ros.eval.saved_predictions import read_flow_file


@dataclass
class KittiFlowEvaluation:
    """Per pair ``{"name", <flow metrics>, "zero_flow_epe", "zero_flow_fl_all"}``, the summaries of the
    flow and of zero flow, and the ``(name, reason)`` of each pair that could not be read."""

    per_image: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    zero_flow: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[Any, str]] = field(default_factory=list)


def evaluate_kitti_flow(
    data: KittiFlow2015,
    predict: Optional[Callable[[Any, Any], Any]] = None,
    pred_files: Optional[dict[str, Path]] = None,
) -> KittiFlowEvaluation:
    """Score ``predict(image1, image2)`` or the saved ``pred_files[name]`` on every pair of ``data``."""
    if (predict is None) == (pred_files is None):
        raise ValueError("pass either predict or pred_files")
    acc, zero = FlowMetricAccumulator(), FlowMetricAccumulator()
    out = KittiFlowEvaluation()
    for i, name in enumerate(data.names):  # e.g. 000000_10
        try:
            if pred_files is not None:  # no need to decode the images
                gt, valid = read_kitti_flow_png(data.flow_dir / f"{name}.png")
                flow = read_flow_file(pred_files[name])
            else:
                pair = data[i]
                gt, valid = pair.flow, pair.valid
            noc = read_kitti_flow_png(data.dir / "flow_noc" / f"{name}.png")[1] if data.has_noc else None
        except FRAME_READ_ERRORS as exc:  # one corrupt file: skip the pair, report it at the end
            out.skipped.append((name, str(exc)))
            continue
        if pred_files is None:
            assert predict is not None
            flow = predict(pair.image1, pair.image2)
        if flow.shape[:2] != gt.shape[:2]:
            flow = resize_flow(flow, gt.shape[:2])
        m = acc.add(flow, gt, valid, noc)
        z = zero.add(np.zeros_like(gt), gt, valid, noc)
        out.per_image.append({"name": name, **m, "zero_flow_epe": z["epe"], "zero_flow_fl_all": z["fl_all"]})
    if not out.per_image:
        raise ValueError(f"no readable KITTI 2015 pair in {data.dir} ({skipped_summary(out.skipped)})")
    out.summary, out.zero_flow = acc.summary(), zero.summary()
    return out
