"""Eigen depth metrics against hand-computed values; scaling, clamping, crop and resizing rules."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from depth_pose_ros.eval.depth_metrics import DepthMetricAccumulator, depth_metrics, garg_crop_mask


def test_twice_the_depth_abs_rel_one_raw_zero_median_scaled(rng: np.random.Generator) -> None:
    gt = rng.uniform(2.0, 30.0, size=(20, 30))
    raw = depth_metrics(2 * gt, gt, median_scale=False)
    assert raw["abs_rel"] == pytest.approx(1.0)
    assert raw["rmse_log"] == pytest.approx(math.log(2))
    assert raw["delta1"] == 0.0 and raw["delta3"] == 0.0  # ratio 2 > 1.25^3 = 1.953
    scaled = depth_metrics(2 * gt, gt, median_scale=True)
    assert scaled["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert scaled["scale"] == pytest.approx(0.5)
    assert scaled["delta1"] == 1.0


def test_hand_computed_small_image() -> None:
    gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # 0 = no ground truth
    pred = np.array([[1.0, 1.0], [4.0, 4.0]])
    m = depth_metrics(pred, gt, median_scale=False)
    # valid gt (1, 2, 4), pred (1, 1, 4): one pixel off by 1 m at 2 m
    assert m["num_valid"] == 3
    assert m["abs_rel"] == pytest.approx((1 / 2) / 3)
    assert m["sq_rel"] == pytest.approx((1 / 2) / 3)
    assert m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["rmse_log"] == pytest.approx(math.sqrt(math.log(2) ** 2 / 3))
    assert m["delta1"] == m["delta2"] == m["delta3"] == pytest.approx(2 / 3)  # ratio 2 fails all three


def test_clamping_after_scaling_and_gt_range() -> None:
    gt = np.array([[10.0, 10.0, 100.0]])  # 100 m is beyond max_depth: not evaluated
    pred = np.array([[10.0, 200.0, 10.0]])
    m = depth_metrics(pred, gt, median_scale=False, max_depth=80.0)
    assert m["num_valid"] == 2
    # 200 m is clamped to 80 m: abs rel = (0 + 70/10) / 2
    assert m["abs_rel"] == pytest.approx(3.5)
    m_far = depth_metrics(pred, gt, median_scale=False, max_depth=300.0)
    assert m_far["num_valid"] == 3


def test_median_ratio_uses_valid_pixels_only() -> None:
    gt = np.array([[2.0, 4.0, 6.0, 0.0]])
    pred = np.array([[1.0, 2.0, 3.0, 1000.0]])
    m = depth_metrics(pred, gt)
    assert m["scale"] == pytest.approx(2.0)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)


def test_garg_crop_region_on_kitti_size() -> None:
    h, w = 375, 1242
    mask = garg_crop_mask(h, w)
    rows = np.nonzero(mask.any(axis=1))[0]
    cols = np.nonzero(mask.any(axis=0))[0]
    assert (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) == (153, 371, 44, 1197)
    gt = np.full((h, w), 10.0)
    pred = gt.copy()
    pred[:100] = 50.0  # sky rows: wrong, but outside the crop
    assert depth_metrics(pred, gt, median_scale=False, garg_crop=True)["abs_rel"] == 0.0
    assert depth_metrics(pred, gt, median_scale=False, garg_crop=False)["abs_rel"] > 0.5


def test_prediction_is_resized_to_gt(rng: np.random.Generator) -> None:
    gt = rng.uniform(5, 10, size=(40, 60))
    small = np.full((10, 15), 3.0)  # low-resolution network output
    m = depth_metrics(small, gt, median_scale=False)
    ref = depth_metrics(np.full_like(gt, 3.0), gt, median_scale=False)
    assert m == pytest.approx(ref)


def test_torch_input_and_shapes() -> None:
    gt = torch.full((1, 1, 4, 4), 5.0)
    m = depth_metrics(gt * 2, gt.numpy(), median_scale=True)
    assert m["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="pred: expected a single HxW"):
        depth_metrics(np.ones((2, 4, 4)), np.ones((4, 4)))


def test_bad_input_is_reported() -> None:
    with pytest.raises(ValueError, match="no valid depth"):
        depth_metrics(np.ones((3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        depth_metrics(np.full((3, 3), np.nan), np.ones((3, 3)))
    with pytest.raises(ValueError, match="min_depth"):
        depth_metrics(np.ones((3, 3)), np.ones((3, 3)), min_depth=10, max_depth=1)


def test_accumulator_means_and_scale_statistics() -> None:
    gt = np.array([[1.0, 2.0], [3.0, 4.0]])
    acc = DepthMetricAccumulator()
    acc.add(2 * gt, gt)
    acc.add(4 * gt, gt)
    s = acc.summary()
    assert s["num_images"] == 2 and len(acc) == 2
    assert s["scale_mean"] == pytest.approx(0.375)
    assert s["scale_std"] == pytest.approx(0.125)
    assert s["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    raw = DepthMetricAccumulator(median_scale=False)
    raw.add(2 * gt, gt)  # abs rel 1
    raw.add(gt, gt)  # abs rel 0
    assert raw.summary()["abs_rel"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no image"):
        DepthMetricAccumulator().summary()
