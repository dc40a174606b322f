"""``eval.stereo_depth.evaluate_stereo_depth`` as a library call: the depth source is passed in (an
Estimator-like object streamed over every frame, or saved predictions read for the scored frames)."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from depth_pose_ros.data.source import open_source
from depth_pose_ros.eval.stereo_depth import evaluate_stereo_depth
from depth_pose_ros.eval.stereo_pseudo_gt import StereoPseudoGTConfig, stereo_pseudo_gt


class _ConstantEstimator:
    """Estimator stand-in: a constant depth at the camera size, counting its steps."""

    def __init__(self) -> None:
        self.steps = 0

    def step(self, image: Any, K: Any, stamp: Any, stereo_image: Any = None, stereo_baseline: Any = None,
             distortion: Any = None) -> SimpleNamespace:
        self.steps += 1
        return SimpleNamespace(depth=np.full(image.shape[:2], 7.0, np.float32), K=K)


def test_estimator_streams_every_frame_and_a_constant_scores_as_the_baseline(kitti_odometry_dir: Path) -> None:
    cfg = StereoPseudoGTConfig()
    source = open_source(kitti_odometry_dir / "sequences" / "06", frames="0:7", stereo=True)
    est = _ConstantEstimator()
    res = evaluate_stereo_depth(source, cfg, estimator=est, every=3, source_label="06")
    assert est.steps == res.frames_streamed == 7
    assert [p["frame"] for p in res.per_image] == [0, 3, 6]
    for k in ("abs_rel", "rmse", "delta1"):
        assert res.summary[k] == pytest.approx(res.constant[k])
    assert res.pred_coverage_mean == 1.0 and 0.0 < res.coverage_mean < 1.0


def test_saved_predictions_equal_to_the_pseudo_gt_score_zero(kitti_odometry_dir: Path, tmp_path: Path) -> None:
    cfg = StereoPseudoGTConfig()
    seq = kitti_odometry_dir / "sequences" / "06"
    read: list[int] = []

    def read_pred(frame: Any) -> Any:
        read.append(frame.index)
        return stereo_pseudo_gt(frame.image, frame.stereo_image, float(frame.K[0, 0]),
                                float(frame.stereo_baseline), cfg).depth

    res = evaluate_stereo_depth(open_source(seq, frames="0:5", stereo=True), cfg, read_pred=read_pred, every=2,
                                save_gt=tmp_path, source_label=str(seq))
    assert read == [0, 2, 4] and sorted(p.name for p in tmp_path.iterdir()) == [
        "000000.png", "000002.png", "000004.png"]
    assert res.summary["abs_rel"] == pytest.approx(0.0, abs=1e-6) and res.summary["delta1"] == 1.0
    with pytest.raises(ValueError, match="either an estimator or read_pred"):
        evaluate_stereo_depth([], cfg)
