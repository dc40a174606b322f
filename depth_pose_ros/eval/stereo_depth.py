"""A model's depth over a rectified stereo sequence, scored against the stereo pseudo ground truth.

What ``depth-pose eval depth --stereo SEQ`` computes (the command parses the arguments, prints the table
and writes the JSON):

1. every frame of the sequence goes through the depth source -- the streaming Estimator (its recurrent
   state and odometry depend on the history, so it sees every frame) or saved predictions read by frame;
2. every ``every``-th frame is scored: an SGBM pseudo ground truth (``eval.stereo_pseudo_gt``) of the
   frame's stereo pair; the Estimator's depth is registered to the camera image through the exact K maps
   (``geometry.registration.register_depth``, edge-aware, or nearest everywhere for ``upsample="nearest"``),
   saved predictions of another size are resized;
3. pseudo-GT pixels where the prediction has no depth (0) are not scored (``pred_coverage`` says how many
   of them it covers); on the rest: ``eval.depth_metrics`` (median-scaled) and a constant depth map on
   the same pixels beside it.

This module imports no network code: the caller passes the Estimator in (anything with
``step(image, K, stamp, stereo_image, stereo_baseline, distortion=...)`` returning a result with ``depth``
and ``K``), as ``eval.real_depth`` and ``eval.label_free`` do.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from depth_pose_ros.eval.depth_metrics import DepthMetricAccumulator
from depth_pose_ros.eval.stereo_pseudo_gt import StereoPseudoGTConfig, constant_depth_like, stereo_pseudo_gt
from depth_pose_ros.geometry.registration import EDGE_RATIO, register_depth


@dataclass
class StereoDepthEvaluation:
    """Per scored frame: ``{"frame", "coverage" (pseudo GT), "pred_coverage", "rejected", "size": [h, w],
    <depth metrics>, "constant": <metrics of the constant map>}``; the means over those frames (``summary``,
    ``constant``: empty when no frame was scored) and the time spent in the model and in stereo matching."""

    per_image: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    constant: dict[str, Any] = field(default_factory=dict)
    frames_streamed: int = 0
    model_s: float = 0.0
    pseudo_gt_s: float = 0.0

    @property
    def coverage_mean(self) -> float:
        return float(np.mean([p["coverage"] for p in self.per_image]))

    @property
    def pred_coverage_mean(self) -> float:
        return float(np.mean([p["pred_coverage"] for p in self.per_image]))


def evaluate_stereo_depth(
    frames: Iterable[Any],
    cfg: StereoPseudoGTConfig,
    *,
    estimator: Any = None,
    read_pred: Optional[Callable[[Any], Any]] = None,
    every: int = 1,
    upsample: str = "linear",
    save_gt: Optional[Path] = None,
    source_label: str = "",
) -> StereoDepthEvaluation:
    """Score the depth of ``estimator`` (streamed over every frame) or of ``read_pred(frame)`` (called for
    the scored frames only) against the stereo pseudo ground truth of every ``every``-th frame.

    ``frames`` are ``data.Frame``s with a stereo partner (``stereo_image``, ``stereo_baseline``);
    ``save_gt``: also write each scored pseudo GT (what was scored) as a 16-bit PNG in mm, named by frame.
    """
    if (estimator is None) == (read_pred is None):
        raise ValueError("pass either an estimator or read_pred")
    acc, const = (DepthMetricAccumulator(median_scale=True, min_depth=cfg.min_depth, max_depth=cfg.max_depth)
                  for _ in range(2))
    out = StereoDepthEvaluation()
    interp = cv2.INTER_NEAREST if upsample == "nearest" else cv2.INTER_LINEAR
    # registration: edge-aware (linear in inverse depth off edges) or, for "nearest", nearest everywhere
    edge_ratio = 1.0 + 1e-9 if upsample == "nearest" else EDGE_RATIO
    for i, frame in enumerate(frames):  # unreadable frames are skipped by the source (source.skipped)
        out.frames_streamed = i + 1
        scored = i % every == 0
        name = f"{frame.index:06d}"
        if estimator is not None:
            t0 = time.perf_counter()
            result = estimator.step(frame.image, frame.K, frame.stamp, frame.stereo_image, frame.stereo_baseline,
                                    distortion=frame.distortion)
            out.model_s += time.perf_counter() - t0
            pred = result.depth
        elif scored:
            assert read_pred is not None
            pred = read_pred(frame)
        if not scored:
            continue
        if frame.stereo_image is None or frame.stereo_baseline is None:
            raise ValueError(f"frame {frame.index} of {source_label} has no stereo image")
        t0 = time.perf_counter()
        gt = stereo_pseudo_gt(frame.image, frame.stereo_image, float(frame.K[0, 0]), float(frame.stereo_baseline),
                              cfg)
        out.pseudo_gt_s += time.perf_counter() - t0
        h, w = gt.depth.shape
        pred = np.asarray(pred, dtype=np.float32)
        if estimator is not None:  # registered to the camera image through the exact K maps (a crop included)
            pred = register_depth(pred, result.K, frame.K, (h, w), edge_ratio=edge_ratio)
        elif pred.shape[:2] != (h, w):
            pred = cv2.resize(pred, (w, h), interpolation=interp)
        has_gt = gt.depth > 0
        # the prediction's coverage: fraction of the pseudo-GT pixels where it has depth
        pred_coverage = float((pred > 0)[has_gt].mean()) if has_gt.any() else 0.0
        gt.depth[~(pred > 0)] = 0.0  # unknown predictions (0: e.g. outside the network's crop) are not scored
        if save_gt is not None:  # what was scored
            mm = np.clip(np.round(gt.depth * 1000.0), 0, 65535).astype(np.uint16)
            cv2.imwrite(str(Path(save_gt) / f"{name}.png"), mm)
        try:
            m = acc.add(pred, gt.depth)
        except ValueError as exc:
            raise ValueError(f"frame {frame.index}: {exc}") from None
        c = const.add(constant_depth_like(gt), gt.depth)
        out.per_image.append({"frame": frame.index, "coverage": gt.coverage, "pred_coverage": pred_coverage,
                              "rejected": gt.rejected, "size": [h, w], **m,
                              "constant": c})
    if out.per_image:
        out.summary, out.constant = acc.summary(), const.summary()
    return out
