"""Metric-scale sources on constructed scenes with a known answer."""
from __future__ import annotations

import cv2
import numpy as np

from depth_pose_ros.pipeline.config import ScaleConfig
from depth_pose_ros.pipeline.odometry_policy import RobustFactor
from depth_pose_ros.pipeline.scale_sources import (
    fit_ground_plane,
    ground_points,
    observe_camera_height,
    observe_stereo,
    stereo_metric_depth,
)

K = np.array([[200.0, 0, 160], [0, 200.0, 60], [0, 0, 1]])


def _road_depth(h: int, w: int, cam_height: float, wall: float = 30.0) -> np.ndarray:
    """z-depth of a flat road ``cam_height`` below the camera, a wall at ``wall`` metres above the horizon."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    ry = (ys - K[1, 2]) / K[1, 1]
    with np.errstate(divide="ignore"):
        z = np.where(ry > 1e-6, cam_height / np.maximum(ry, 1e-6), wall)
    return np.minimum(z, wall)


def _rigid_flow(depth: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    h, w = depth.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    X = np.stack([(xs - K[0, 2]) / K[0, 0] * depth, (ys - K[1, 2]) / K[1, 1] * depth, depth], -1)
    X2 = X @ R.T + t
    u = K[0, 0] * X2[..., 0] / X2[..., 2] + K[0, 2]
    v = K[1, 1] * X2[..., 1] / X2[..., 2] + K[1, 2]
    return np.stack([u - xs, v - ys], -1).astype(np.float32)


def test_ground_plane_fit_recovers_height():
    depth = _road_depth(120, 320, 1.65)
    ys, xs = np.mgrid[90:120, 40:280]
    z = depth[ys, xs].ravel()
    pts = np.stack([(xs.ravel() - 160) / 200 * z, (ys.ravel() - 60) / 200 * z, z], 1)
    n, d, ratio = fit_ground_plane(pts, max_tilt_deg=20)
    assert abs(d - 1.65) < 1e-3 and n[1] < -0.99 and ratio > 0.95


def test_camera_height_from_triangulated_road_gives_the_metric_factor():
    """A car moving 0.8 m forward over a road 1.65 m below the camera: points triangulated from the flow
    with a *unit* translation put the road 1.65 / 0.8 units below, so the metric factor is 0.8."""
    depth = _road_depth(120, 320, 1.65)
    t_true = np.array([0.0, 0.0, -0.8])  # T_2_1 of a camera moving forward by 0.8 m
    flow = _rigid_flow(depth, np.eye(3), t_true)
    cfg = ScaleConfig(source="camera_height", camera_height_m=1.65)
    pts = ground_points(flow, np.ones(depth.shape, bool), K, np.eye(3), t_true / 0.8, cfg.ground_region)
    plane = observe_camera_height(pts, cfg)
    assert plane is not None and plane.inlier_ratio > 0.9
    assert abs(cfg.camera_height_m / plane.height - 0.8) < 0.01


def test_camera_height_rejects_a_scene_without_ground():
    z = 10.0  # fronto-parallel wall
    ys, xs = np.mgrid[80:120:2, 40:280:2]
    pts = np.stack([(xs.ravel() - 160) / 200 * z, (ys.ravel() - 60) / 200 * z, np.full(xs.size, z)], 1)
    assert observe_camera_height(pts, ScaleConfig(source="camera_height")) is None


def test_stereo_gives_metric_depth_of_a_known_disparity_and_baseline():
    rng = np.random.default_rng(0)
    left = cv2.GaussianBlur(rng.integers(0, 256, (120, 320), dtype=np.uint8), (3, 3), 0)
    disparity, fx, baseline = 8, 200.0, 0.5
    right = np.roll(left, -disparity, axis=1)  # a right camera sees the scene shifted to the left
    metric = stereo_metric_depth(left, right, fx, baseline)
    ok = np.isfinite(metric[:, 80:300])
    assert ok.mean() > 0.8
    assert abs(float(np.median(metric[:, 80:300][ok])) - fx * baseline / disparity) < 0.05
    depth = np.full(left.shape, 2.5)  # relative depth off by 5 = (fx b / d) / 2.5
    assert abs(observe_stereo(depth, left, right, fx, baseline) - 12.5 / 2.5) < 0.05
    assert observe_stereo(depth, left, None, fx, baseline) is None


def test_robust_factor_is_a_log_median_that_ignores_outliers_and_counts_to_convergence():
    s = RobustFactor(window=3, warmup=2)
    assert s.value is None and not s.converged
    s.push(2.0)
    assert not s.converged and abs(s.value - 2.0) < 1e-12
    s.push(8.0)  # log-median of 2 and 8 = 4
    assert s.converged and abs(s.value - 4.0) < 1e-9
    s.push(float("nan"))
    assert abs(s.value - 4.0) < 1e-9 and s.count == 2
    s.push(1000.0)  # an outlier: median of (2, 8, 1000) = 8
    assert abs(s.value - 8.0) < 1e-9
    s.push(8.0)  # window 3: (8, 1000, 8) -> 8
    assert abs(s.value - 8.0) < 1e-9
