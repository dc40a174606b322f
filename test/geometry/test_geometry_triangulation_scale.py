"""Triangulation checks (parallax, cheirality, off-image) and robust scale alignment."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from depth_pose_ros.geometry.scale_align import align_depth_to_points, align_scale, sample_depth
from depth_pose_ros.geometry.triangulation import triangulate

K = np.array([[400.0, 0.0, 200.0], [0.0, 400.0, 100.0], [0.0, 0.0, 1.0]])
R = Rotation.from_rotvec([0.0, 0.03, 0.0]).as_matrix()
T = np.array([0.05, 0.0, -1.0])  # camera 2 is 1 m ahead: X2 = R X1 + t
T = T / np.linalg.norm(T)


def _project(X: np.ndarray, R_: np.ndarray = np.eye(3), t_: np.ndarray = np.zeros(3)) -> np.ndarray:
    Xc = X @ R_.T + t_
    return (Xc @ K.T)[:, :2] / Xc[:, 2:]


def test_triangulate_recovers_exact_points(rng):
    X = np.c_[rng.uniform(-4, 4, 100), rng.uniform(-1, 1.5, 100), rng.uniform(5, 30, 100)]
    tri = triangulate(_project(X), _project(X, R, T), K, R, T, min_parallax_deg=0.1)
    ok = tri.valid
    assert ok.mean() > 0.8
    assert tri.points[ok] == pytest.approx(X[ok], rel=1e-6)
    assert tri.depth1[ok] == pytest.approx(X[ok, 2], rel=1e-6)
    assert tri.reproj_err_px[ok].max() < 1e-6
    # rejected ones are exactly those with too little parallax
    assert (tri.parallax_deg[~ok] < 0.1).all()
    assert tri.num_valid == int(ok.sum())


def test_triangulate_rejects_behind_off_image_and_bad_matches():
    X = np.array([[1.0, 0.5, 10.0], [-2.0, 0.2, 8.0], [0.5, 0.0, 12.0]])
    p1, p2 = _project(X), _project(X, R, T)
    p2[1] += [0.0, 10.0]  # inconsistent match: large reprojection error
    tri = triangulate(p1, p2, K, R, T, max_reproj_px=1.0, image_size=(200, 400))
    assert tri.valid.tolist() == [True, False, True]
    tri = triangulate(p1, p2, K, R, T, image_size=(200, 100))  # image 2 only 100 px wide
    assert not tri.valid[0]
    # the same correspondences with the translation flipped triangulate behind the cameras
    tri = triangulate(p1[[0, 2]], p2[[0, 2]], K, R, -T)
    assert not tri.valid.any() and (tri.depth1 < 0).all()
    empty = triangulate(np.zeros((0, 2)), np.zeros((0, 2)), K, R, T)
    assert empty.points.shape == (0, 3) and empty.num_valid == 0
    with pytest.raises(ValueError, match="p1 must be Nx2"):
        triangulate(np.zeros((3, 3)), np.zeros((3, 2)), K, R, T)


def test_align_scale_exact_with_outliers(rng):
    src = rng.uniform(2, 50, 500)
    tgt = 2.5 * src
    tgt[:150] *= rng.uniform(1.5, 4.0, 150)  # 30% gross outliers, all on one side
    a = align_scale(src, tgt)
    assert a.scale == pytest.approx(2.5, rel=1e-9)
    assert a.inlier_ratio == pytest.approx(0.7, abs=0.01)
    assert a.num_points == 500


def test_align_scale_noisy_is_unbiased_and_beats_the_mean(rng):
    src = rng.uniform(2, 50, 2000)
    tgt = 0.8 * src * np.exp(rng.normal(scale=0.05, size=2000))
    tgt[:200] = rng.uniform(0.1, 100, 200)
    a = align_scale(src, tgt)
    assert a.scale == pytest.approx(0.8, rel=0.01)
    assert abs(np.mean(tgt / src) - 0.8) > 0.1  # a plain mean would be far off
    assert 0.8 < a.inlier_ratio < 0.95


def test_align_scale_ignores_invalid_and_needs_points():
    src = np.array([1.0, 2.0, np.nan, -1.0, 3.0, 4.0, 5.0])
    tgt = np.array([3.0, 6.0, 1.0, 1.0, 9.0, 0.0, 15.0])
    a = align_scale(src, tgt, min_points=4)
    assert a.scale == pytest.approx(3.0) and a.num_points == 4
    assert align_scale(src, tgt) is None  # default min_points = 5
    with pytest.raises(ValueError, match="sizes differ"):
        align_scale(np.ones(3), np.ones(4))


def test_align_depth_to_points_samples_the_map():
    depth = np.arange(20, dtype=np.float64).reshape(4, 5) + 1.0
    pix = np.array([[0.0, 0.0], [4.0, 3.0], [2.2, 1.8], [9.0, 0.0]])
    assert sample_depth(depth, pix)[:3].tolist() == [1.0, 20.0, 13.0]
    assert np.isnan(sample_depth(depth, pix)[3])
    a = align_depth_to_points(depth, pix[:3], np.array([0.5, 10.0, 6.5]), min_points=3)
    assert a.scale == pytest.approx(2.0)
