"""Flow EPE / Fl against hand-built cases with known outlier counts; pooling conventions."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.eval.flow_metrics import (
    FlowMetricAccumulator,
    flow_metrics,
    resize_flow,
    zero_flow_metrics,
)


def _case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4x4 GT of (10, 0) px; pred with 3 outliers (4 px off), 2 small errors (2 px, under the 3 px
    bar), and 1 pixel 4 px off a 100 px GT vector (under 5% of |gt|)."""
    gt = np.zeros((4, 4, 2))
    gt[..., 0] = 10.0
    gt[3, 3] = (100.0, 0.0)
    pred = gt.copy()
    for y, x in ((0, 0), (0, 1), (1, 0)):
        pred[y, x, 1] += 4.0  # EPE 4 > 3 and > 0.5: outlier
    for y, x in ((2, 0), (2, 1)):
        pred[y, x, 0] += 2.0  # EPE 2 < 3: fine
    pred[3, 3, 0] += 4.0  # EPE 4 > 3 but < 5 = 5% of 100: fine
    return pred, gt, np.ones((4, 4), dtype=bool)


def test_known_outlier_count_and_epe() -> None:
    pred, gt, valid = _case()
    m = flow_metrics(pred, gt, valid)
    assert m["num_outliers"] == 3 and m["num_valid"] == 16
    assert m["fl_all"] == pytest.approx(100 * 3 / 16)
    assert m["epe"] == pytest.approx((3 * 4 + 2 * 2 + 4) / 16)
    assert "epe_noc" not in m


def test_valid_and_noc_masks() -> None:
    pred, gt, valid = _case()
    valid[0, 0] = False  # drop one outlier from the evaluated set
    noc = np.zeros((4, 4), dtype=bool)
    noc[2:] = True  # rows 2-3: only the non-outlier errors
    m = flow_metrics(pred, gt, valid, noc)
    assert m["num_outliers"] == 2 and m["num_valid"] == 15
    assert m["fl_noc"] == 0.0 and m["num_valid_noc"] == 8
    assert m["epe_noc"] == pytest.approx((2 * 2 + 4) / 8)


def test_zero_flow_baseline_epe_is_mean_gt_magnitude() -> None:
    _, gt, valid = _case()
    z = zero_flow_metrics(gt, valid)
    assert z["epe"] == pytest.approx((15 * 10 + 100) / 16)
    assert z["fl_all"] == 100.0


def test_accumulator_pools_pixels_for_fl_and_averages_images_for_epe() -> None:
    gt = np.zeros((2, 2, 2))
    acc = FlowMetricAccumulator()
    # image A: one valid pixel, an outlier with EPE 10
    pred_a = np.zeros((2, 2, 2))
    pred_a[0, 0] = (10.0, 0.0)
    va = np.zeros((2, 2), dtype=bool)
    va[0, 0] = True
    acc.add(pred_a, gt, va)
    # image B: three valid pixels, all exact
    vb = np.ones((2, 2), dtype=bool)
    vb[1, 1] = False
    acc.add(np.zeros((2, 2, 2)), gt, vb)
    s = acc.summary()
    assert s["fl_all"] == pytest.approx(25.0)  # 1 outlier / 4 pixels (KITTI devkit)
    assert s["fl_all_per_image"] == pytest.approx(50.0)  # (100 + 0) / 2
    assert s["epe"] == pytest.approx(5.0)  # (10 + 0) / 2 images
    assert s["epe_pooled"] == pytest.approx(2.5)  # 10 / 4 pixels
    assert s["num_images"] == 2 and "fl_noc" not in s


def test_resize_flow_rescales_vectors() -> None:
    flow = np.zeros((2, 4, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 1.0, 2.0
    big = resize_flow(flow, (4, 8))
    assert big.shape == (4, 8, 2)
    np.testing.assert_allclose(big[..., 0], 2.0)
    np.testing.assert_allclose(big[..., 1], 4.0)


def test_torch_layout_and_errors() -> None:
    pred, gt, valid = _case()
    t = torch.from_numpy(pred).permute(2, 0, 1)[None]  # 1x2xHxW, the project's torch layout
    assert flow_metrics(t, gt, valid) == flow_metrics(pred, gt, valid)
    with pytest.raises(ValueError, match="shape mismatch"):
        flow_metrics(pred[:3], gt, valid)
    bad = pred.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        flow_metrics(bad, gt, valid)
    with pytest.raises(ValueError, match="no image pair"):
        FlowMetricAccumulator().summary()
