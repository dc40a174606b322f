"""Two-view pose from dense flow on exact ray-cast street scenes: accuracy, scale, masks, fallbacks."""
from __future__ import annotations

import numpy as np
import pytest
from geometry_scenes import exact_flows, street_pair

from depth_pose_ros.geometry.pose_error import relative_pose_errors, rotation_error_deg
from depth_pose_ros.geometry.se3 import axis_angle_to_matrix_np, make_pose_np
from depth_pose_ros.geometry.two_view import (
    TwoViewConfig,
    TwoViewEstimator,
    TwoViewResult,
    TwoViewStatus,
    estimate_two_view,
    rigid_mask_from_pose,
)

SEEDS = range(6)


@pytest.fixture(scope="module")
def pairs():
    return {seed: street_pair(seed) for seed in SEEDS}


def _assert_finite(r: TwoViewResult) -> None:
    assert np.isfinite(r.R).all() and np.isfinite(r.t).all() and np.isfinite(r.T_2_1).all()
    assert 0.0 <= r.confidence <= 1.0 and np.isfinite(r.mean_flow)
    assert r.baseline_in_depth_units is None or np.isfinite(r.baseline_in_depth_units)


def test_exact_flow_meets_the_accuracy_targets(pairs):
    """Brief target: rotation < 0.05 deg and translation direction < 0.5 deg (median over pairs)."""
    rot, tdir = [], []
    for K, fw, bw, _, _, T_2_1, *_ in pairs.values():
        r = TwoViewEstimator().estimate(fw, K, flow_bw=bw)
        assert r.status == TwoViewStatus.OK and r.status == "ok"
        _assert_finite(r)
        assert np.linalg.norm(r.t) == pytest.approx(1.0)
        e_rot, e_t = relative_pose_errors(r.T_2_1, T_2_1)
        rot.append(e_rot)
        tdir.append(e_t)
    assert np.median(rot) < 0.05 and np.median(tdir) < 0.5
    # with exact flow the solution is exact up to rounding, far inside the targets
    assert max(rot) < 1e-4 and max(tdir) < 1e-3


def test_noisy_flow_with_outliers_stays_accurate(pairs):
    """0.3 px Gaussian noise on both flows plus 10% gross outliers (up to 20 px) in the forward flow."""
    rng = np.random.default_rng(1)
    rot, tdir, rot_fw_only, tdir_fw_only = [], [], [], []
    for K, fw, bw, _, _, T_2_1, *_ in pairs.values():
        fwn = fw + rng.normal(scale=0.3, size=fw.shape).astype(np.float32)
        bwn = bw + rng.normal(scale=0.3, size=bw.shape).astype(np.float32)
        out = rng.random(fw.shape[:2]) < 0.1
        fwn[out] += rng.uniform(-20, 20, (int(out.sum()), 2)).astype(np.float32)
        r = TwoViewEstimator().estimate(fwn, K, flow_bw=bwn)
        e = relative_pose_errors(r.T_2_1, T_2_1)
        rot.append(e[0])
        tdir.append(e[1])
        r = TwoViewEstimator().estimate(fwn, K)  # no backward flow: every valid pixel scores alike
        e = relative_pose_errors(r.T_2_1, T_2_1)
        rot_fw_only.append(e[0])
        tdir_fw_only.append(e[1])
    assert np.median(rot) < 0.02 and np.median(tdir) < 0.2
    assert np.median(rot_fw_only) < 0.03 and np.median(tdir_fw_only) < 0.3
    # the forward-backward score makes a difference with outliers present
    assert np.mean(tdir) < np.mean(tdir_fw_only)


def test_scale_alignment_recovers_the_translation_length(pairs):
    K, fw, bw, d1, _, T_2_1, *_ = pairs[0]
    r = TwoViewEstimator().estimate(fw, K, flow_bw=bw, depth1=3.0 * d1)  # depth in "network units"
    true_length = 3.0 * np.linalg.norm(T_2_1[:3, 3])
    assert r.baseline_in_depth_units == pytest.approx(true_length, rel=1e-6)
    assert r.baseline_inlier_ratio > 0.99
    assert r.T_2_1_with_length()[:3, 3] == pytest.approx(3.0 * T_2_1[:3, 3], rel=1e-5, abs=1e-7)
    # the triangulated points are the scene in units of |t| = 1
    z = d1[r.points_pixels[:, 1].astype(int), r.points_pixels[:, 0].astype(int)]
    assert r.points[:, 2] * np.linalg.norm(T_2_1[:3, 3]) == pytest.approx(z, rel=1e-5)
    assert len(r.points) > 1000


def test_rigid_mask_finds_an_independently_moving_region(pairs):
    K, fw, bw, _, _, T_2_1, *_ = pairs[1]
    fw = fw.copy()
    # An object moving on its own, across the (here roughly horizontal) epipolar lines. (Motion along
    # the epipolar lines is invisible to any two-view test: it looks like a different depth.)
    fw[60:110, 40:120] += np.array([1.0, 4.0], dtype=np.float32)
    r = TwoViewEstimator().estimate(fw, K)  # without backward flow nothing else flags the object
    assert rotation_error_deg(r.R, T_2_1[:3, :3]) < 0.01  # RANSAC and the robust refinement ignore it
    moving = np.zeros(fw.shape[:2], bool)
    moving[60:110, 40:120] = True
    h, w = fw.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + fw[..., 0], ys + fw[..., 1]
    in_view = np.isfinite(fw).all(-1) & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    static_valid = ~moving & in_view
    assert r.rigid_mask.shape == fw.shape[:2] and r.rigid_mask.dtype == bool
    assert r.rigid_mask[moving].mean() < 0.1
    assert r.rigid_mask[static_valid].mean() > 0.9


def test_user_mask_restricts_the_sampled_pixels(pairs):
    K, fw, bw, _, _, T_2_1, *_ = pairs[2]
    mask = np.zeros(fw.shape[:2], bool)
    mask[:, : fw.shape[1] // 2] = True
    r = TwoViewEstimator(TwoViewConfig(num_samples=2000)).estimate(fw, K, flow_bw=bw, mask=mask)
    assert r.status == "ok" and len(r.pixels1) == 2000
    assert (r.pixels1[:, 0] < fw.shape[1] // 2).all()
    assert not r.rigid_mask[:, fw.shape[1] // 2 :].any()
    assert relative_pose_errors(r.T_2_1, T_2_1)[1] < 0.01


def test_same_inputs_give_the_same_pose(pairs):
    K, fw, bw, *_ = pairs[3]
    a = TwoViewEstimator().estimate(fw + 0.2, K, flow_bw=bw)
    b = TwoViewEstimator().estimate(fw + 0.2, K, flow_bw=bw)
    assert np.array_equal(a.R, b.R) and np.array_equal(a.t, b.t) and np.array_equal(a.pixels1, b.pixels1)


def _small_k(h: int = 160, w: int = 384) -> np.ndarray:
    return np.array([[0.8 * w, 0.0, (w - 1) / 2.0], [0.0, 0.8 * w, 0.45 * (h - 1)], [0.0, 0.0, 1.0]])


def test_tiny_motion_falls_back_to_pnp_with_its_length_in_depth_units():
    K = _small_k()
    T2 = make_pose_np(axis_angle_to_matrix_np(np.deg2rad([0.01, 0.05, 0.0])), [0.0, 0.0, 0.02])
    fw, bw, d1, _, T_2_1 = exact_flows(K, np.eye(4), T2, 160, 384)
    r = TwoViewEstimator().estimate(fw, K, flow_bw=bw, depth1=d1)
    assert r.mean_flow < 0.5
    assert r.status == TwoViewStatus.PNP_FALLBACK and "mean flow" in r.message
    _assert_finite(r)
    rot, tdir = relative_pose_errors(r.T_2_1, T_2_1)
    assert rot < 1e-3 and tdir < 0.01
    assert r.baseline_in_depth_units == pytest.approx(0.02, rel=1e-4)  # PnP gives the length in depth units


def test_pure_rotation_is_detected_as_degenerate():
    """No translation: E is undefined; with depth PnP recovers the rotation and ~zero translation."""
    K = _small_k()
    T2 = make_pose_np(axis_angle_to_matrix_np(np.deg2rad([0.3, 2.0, 0.1])), [0.0, 0.0, 0.0])
    fw, bw, d1, _, T_2_1 = exact_flows(K, np.eye(4), T2, 160, 384)
    r = TwoViewEstimator().estimate(fw, K, flow_bw=bw, depth1=d1)
    assert r.status == TwoViewStatus.PNP_FALLBACK
    assert rotation_error_deg(r.R, T_2_1[:3, :3]) < 1e-4
    assert r.baseline_in_depth_units < 1e-6
    r = TwoViewEstimator().estimate(fw, K, flow_bw=bw)  # no depth: nothing to fall back on
    assert r.status == TwoViewStatus.FAILED and r.confidence == 0.0 and r.message
    _assert_finite(r)
    # the rotation-only rigid mask accepts every valid pixel of a rotating camera
    valid = np.isfinite(fw).all(-1)
    assert rigid_mask_from_pose(fw, K, T_2_1[:3, :3], np.zeros(3), 0.5)[valid].mean() > 0.99


def test_a_failed_pair_is_reported_failed_without_a_pose_from_earlier_pairs(pairs):
    """The two-view module keeps no memory: a pair without a usable pose says so (the odometry policy,
    not the geometry, repeats the last step; test/pipeline/test_odometry_policy.py)."""
    K, fw, bw, d1, *_ = pairs[4]
    est = TwoViewEstimator()
    good = est.estimate(fw, K, flow_bw=bw, depth1=d1)
    assert good.status == "ok"
    still = np.zeros_like(fw)
    r = est.estimate(still, K, flow_bw=still)
    assert r.status == TwoViewStatus.FAILED and "mean flow" in r.message and r.confidence == 0.0
    assert np.array_equal(r.T_2_1, np.eye(4)) and r.baseline_in_depth_units is None and r.num_inliers == 0
    nan = np.full_like(fw, np.nan)
    r = est.estimate(nan, K, flow_bw=nan)
    assert r.status == TwoViewStatus.FAILED and np.array_equal(r.T_2_1, np.eye(4))
    _assert_finite(r)
    r = est.estimate(still, K)
    assert r.status == TwoViewStatus.FAILED
    assert np.array_equal(r.T_2_1, np.eye(4)) and r.baseline_in_depth_units is None
    first = TwoViewResult.identity()
    assert first.status == "first" and np.array_equal(first.T_2_1, np.eye(4))


def test_stateless_helper_and_bad_inputs(pairs):
    K, fw, bw, d1, *_ = pairs[5]
    assert estimate_two_view(fw, K, flow_bw=bw).status == "ok"
    with pytest.raises(ValueError, match="flow_fw must be HxWx2"):
        estimate_two_view(fw[..., 0], K)
    with pytest.raises(ValueError, match="flow_bw shape"):
        estimate_two_view(fw, K, flow_bw=bw[:-1])
    with pytest.raises(ValueError, match="K must be a 3x3"):
        estimate_two_view(fw, np.eye(2))
    with pytest.raises(ValueError, match="mask must be HxW"):
        estimate_two_view(fw, K, mask=np.ones((3, 3), bool))
    with pytest.raises(ValueError, match="depth1 must be HxW"):
        estimate_two_view(fw, K, depth1=d1[:-1])
    with pytest.raises(ValueError, match="ransac_method"):
        TwoViewConfig(ransac_method="magic")
    with pytest.raises(ValueError, match="unknown keys"):
        TwoViewConfig.from_dict({"top_ratio": 0.3, "num_sample": 10})
    assert TwoViewConfig.from_dict({"top_ratio": 0.3}).top_ratio == 0.3


@pytest.mark.parametrize("method", ["ransac", "lmeds", "usac_default", "usac_accurate"])
def test_every_robust_method_works(pairs, method):
    K, fw, bw, _, _, T_2_1, *_ = pairs[0]
    r = TwoViewEstimator(TwoViewConfig(ransac_method=method, num_samples=2000)).estimate(fw, K, flow_bw=bw)
    assert r.status == "ok"
    rot, tdir = relative_pose_errors(r.T_2_1, T_2_1)
    assert rot < 1e-3 and tdir < 1e-2


@pytest.mark.parametrize("occlusion", ["range", "both", "none"])
def test_every_occlusion_cue_works(pairs, occlusion):
    K, fw, bw, _, _, T_2_1, *_ = pairs[1]
    r = TwoViewEstimator(TwoViewConfig(occlusion=occlusion, num_samples=2000)).estimate(fw, K, flow_bw=bw)
    assert r.status == "ok"
    rot, tdir = relative_pose_errors(r.T_2_1, T_2_1)
    assert rot < 1e-3 and tdir < 1e-2
