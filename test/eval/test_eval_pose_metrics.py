"""Pose metrics against hand-computed trajectories (straight lines, known rotation / scale errors)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from depth_pose_ros.data.trajectory_io import read_kitti_poses
from depth_pose_ros.eval.align import Sim3
from depth_pose_ros.eval.pose_metrics import (
    ate_gt_scale,
    ate_sim3,
    ate_snippets,
    kitti_odometry_errors,
    kitti_segment_lengths,
    pose_summary,
    relative_rotation_errors_deg,
    rpe,
    translation_direction_errors_deg,
)


def _rot(axis: str, deg: float) -> np.ndarray:
    return Rotation.from_euler(axis, deg, degrees=True).as_matrix()


def straight_line(n: int, step: float = 1.0) -> np.ndarray:
    """Camera-to-world poses of a camera driving along its optical axis (z), identity rotations."""
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, 2, 3] = step * np.arange(n)
    return T


def wiggly_path(n: int, rng: np.random.Generator) -> np.ndarray:
    """A non-degenerate camera-to-world trajectory (turning, climbing) for invariance tests."""
    T = np.tile(np.eye(4), (n, 1, 1))
    for i in range(1, n):
        step = np.eye(4)
        step[:3, :3] = Rotation.from_rotvec(rng.normal(scale=0.05, size=3)).as_matrix()
        step[:3, 3] = [rng.normal(scale=0.1), rng.normal(scale=0.05), 1.0 + rng.normal(scale=0.1)]
        T[i] = T[i - 1] @ step
    return T


# ---------------------------------------------------------------------------------------------
def test_similarity_transformed_trajectory_has_zero_error(rng: np.random.Generator) -> None:
    gt = wiggly_path(40, rng)
    sim3 = Sim3(scale=0.3, R=_rot("y", 70) @ _rot("x", 20), t=np.array([5.0, -2.0, 1.0]))
    pred = sim3.apply_to_poses(gt)  # what a monocular method with perfect shape would output
    err, fitted = ate_sim3(pred, gt)
    assert err < 1e-9
    assert fitted.scale == pytest.approx(1 / 0.3)
    s = pose_summary(pred, gt)
    for key in ("ate_sim3_m", "ate_gt_scale_m", "ate_5frame_m", "ate_5frame_rmse_m", "rot_err_deg_per_frame",
                "tdir_err_deg_median", "rpe_trans_m", "rpe_rot_deg", "rpe_trans_m_at_delta", "t_err_pct",
                "r_err_deg_per_100m"):
        assert abs(s[key]) < 1e-6, key
    # without scale alignment the 0.3 scale shows up fully in the metric-scale errors: on a straight
    # 1 m/frame line every 0.3 m predicted step is 0.7 m short
    line = straight_line(20)
    s_none = pose_summary(sim3.apply_to_poses(line), line, scale_alignment="none")
    assert s_none["rpe_trans_m"] == pytest.approx(0.7)
    assert s_none["t_err_pct"] > 69.0
    assert s_none["ate_sim3_m"] < 1e-9  # ATE still aligns


def test_ate_5frame_hand_computed_lateral_drift() -> None:
    """GT drives 1 m/frame along z; pred also drifts d m sideways per metre. Relative to each
    snippet's first frame pred_k = (d k, 0, k): LSQ scale s = 1/(1+d^2), |e_k|^2 = k^2 d^2/(1+d^2)."""
    d = 0.1
    gt = straight_line(12)
    pred = gt.copy()
    pred[:, 0, 3] = d * np.arange(12)
    published, true_rmse = ate_snippets(pred, gt, 5)
    sum_sq = 30 * d**2 / (1 + d**2)  # sum_{k=0..4} k^2 = 30
    assert published.shape == (8,)  # 12 - 5 + 1 windows
    np.testing.assert_allclose(published, math.sqrt(sum_sq) / 5, rtol=1e-12)
    np.testing.assert_allclose(true_rmse, math.sqrt(sum_sq / 5), rtol=1e-12)
    s = pose_summary(pred, gt)
    assert s["ate_5frame_m"] == pytest.approx(math.sqrt(sum_sq) / 5)
    assert s["ate_5frame_std_m"] == pytest.approx(0.0, abs=1e-12)


def test_ate_gt_scale_ignores_step_length_errors_but_sim3_does_not(rng: np.random.Generator) -> None:
    gt = wiggly_path(30, rng)
    rel = np.linalg.inv(gt[:-1]) @ gt[1:]
    rel[:, :3, 3] *= rng.uniform(0.3, 3.0, size=(29, 1))  # wrong, varying step lengths
    pred = np.empty_like(gt)
    pred[0] = np.eye(4)
    for i in range(29):
        pred[i + 1] = pred[i] @ rel[i]
    assert ate_gt_scale(pred, gt) < 1e-9
    assert ate_sim3(pred, gt)[0] > 0.2


def test_rpe_constant_errors() -> None:
    gt = straight_line(20)
    # 10% too long steps, metric (no alignment): translation error 0.1 m per frame, 1.0 m per 10
    long_steps = straight_line(20, step=1.1)
    assert rpe(long_steps, gt, 1) == pytest.approx((0.1, 0.0))
    assert rpe(long_steps, gt, 10) == pytest.approx((1.0, 0.0))
    # camera rolls 1 deg per frame about its optical axis, positions exact: E = Rz(delta deg), t = 0
    rolling = gt.copy()
    for i in range(20):
        rolling[i, :3, :3] = _rot("z", i)
    t1, r1 = rpe(rolling, gt, 1)
    t2, r2 = rpe(rolling, gt, 2)
    assert (t1, t2) == pytest.approx((0.0, 0.0), abs=1e-12)
    assert (r1, r2) == pytest.approx((1.0, 2.0))
    np.testing.assert_allclose(relative_rotation_errors_deg(rolling, gt), 1.0)
    # rolling about the direction of travel keeps the translation direction exact
    np.testing.assert_allclose(translation_direction_errors_deg(rolling, gt), 0.0, atol=1e-12)


def test_translation_direction_error_known_angle() -> None:
    gt = straight_line(6)
    pred = gt.copy()
    pred[:, :3, 3] = (np.arange(6)[:, None] * (_rot("y", 5) @ np.array([0.0, 0.0, 2.0])))
    np.testing.assert_allclose(translation_direction_errors_deg(pred, gt), 5.0)
    np.testing.assert_allclose(relative_rotation_errors_deg(pred, gt), 0.0, atol=1e-12)


def test_kitti_errors_hand_computed_segment() -> None:
    """21 frames 1 m apart, one 10 m segment: it starts at frame 0 and ends at frame 11 (first
    frame *beyond* 10 m); starts at 10 and 20 have no frame beyond +10 m."""
    gt = straight_line(21)
    scaled = straight_line(21, step=1.01)  # 1% scale error
    t_err, r_err, n = kitti_odometry_errors(scaled, gt, lengths=[10.0])
    assert n == 1
    assert t_err == pytest.approx(100 * 0.01 * 11 / 10)
    assert r_err == pytest.approx(0.0, abs=1e-12)
    # camera yaws 0.1 deg per frame on the same positions: rotation error 11 * 0.1 deg over 10 m
    turning = gt.copy()
    for i in range(21):
        turning[i, :3, :3] = _rot("y", 0.1 * i)
    t_err, r_err, n = kitti_odometry_errors(turning, gt, lengths=[10.0])
    assert r_err == pytest.approx(11 * 0.1 / 10 * 100)
    assert t_err == pytest.approx(0.0, abs=1e-9)


def test_kitti_errors_official_segments_with_one_percent_scale_error() -> None:
    gt = straight_line(901)  # 900 m: every official segment length fits
    lengths, standard = kitti_segment_lengths(gt)
    assert standard and lengths == [100.0 * k for k in range(1, 9)]
    t_err, r_err, n = kitti_odometry_errors(straight_line(901, 1.01), gt)
    # each segment really spans L + 1 m (first frame beyond L), so the error is 1% * (L+1)/L
    assert 1.0 < t_err < 1.01
    assert n == sum(len(range(0, 900 - L, 10)) for L in range(100, 900, 100))


def test_short_path_uses_scaled_segments_and_says_so() -> None:
    gt = straight_line(51)  # 50 m
    lengths, standard = kitti_segment_lengths(gt)
    assert not standard
    np.testing.assert_allclose(lengths, [5.0 * k for k in range(1, 9)])
    s = pose_summary(gt, gt)
    assert s["kitti_segments_standard"] is False
    assert s["kitti_segments_m"] == pytest.approx(lengths)
    assert s["kitti_num_segments"] > 0 and s["t_err_pct"] == 0.0


def test_pose_summary_keys_and_real_kitti_path(kitti_odometry_dir: Path) -> None:
    gt = read_kitti_poses(kitti_odometry_dir / "poses" / "06.txt")
    s = pose_summary(list(gt), gt)  # a list of 4x4 is accepted too
    for key in ("rot_err_deg_per_frame", "rot_err_deg_median", "tdir_err_deg_median", "tdir_err_deg_mean",
                "ate_gt_scale_m", "ate_sim3_m", "ate_5frame_m", "ate_5frame_std_m", "rpe_trans_m",
                "rpe_rot_deg", "t_err_pct", "r_err_deg_per_100m", "kitti_segments_m", "path_length_m",
                "num_frames"):
        assert key in s
    assert s["num_frames"] == 51
    # the snippet of sequence 06 is ~60 m long (about 1.2 m per frame), too short for 100 m segments
    assert 55.0 < s["path_length_m"] < 65.0
    assert s["kitti_segments_standard"] is False


def test_bad_input_is_reported() -> None:
    gt = straight_line(10)
    with pytest.raises(ValueError, match="frame-aligned"):
        pose_summary(gt[:9], gt)
    with pytest.raises(ValueError, match="Nx4x4"):
        pose_summary(np.zeros((10, 3, 3)), gt)
    with pytest.raises(ValueError, match="scale_alignment"):
        pose_summary(gt, gt, scale_alignment="median")
    short = pose_summary(gt[:3], gt[:3])  # too short for 5-frame snippets: NaN, not a crash
    assert math.isnan(short["ate_5frame_m"]) and math.isnan(short["rpe_trans_m_at_delta"])
