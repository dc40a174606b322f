"""Absolute-scale sources on constructed scenes with a known answer."""
from __future__ import annotations

import numpy as np

from depth_pose_ros.estimator_types import EstimatorConfig, ScaleConfig
from depth_pose_ros.scale_sources import CameraHeightScale, fit_ground_plane


def _road_depth(h: int, w: int, K: np.ndarray, cam_height: float, wall: float = 30.0) -> np.ndarray:
    """z-depth of a flat road ``cam_height`` below the camera, a wall at ``wall`` metres above the horizon."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    ry = (ys - K[1, 2]) / K[1, 1]
    with np.errstate(divide="ignore"):
        z = np.where(ry > 1e-6, cam_height / np.maximum(ry, 1e-6), wall)
    return np.minimum(z, wall).astype(np.float32)


def test_ground_plane_fit_recovers_height():
    K = np.array([[200.0, 0, 160], [0, 200.0, 60], [0, 0, 1]])
    depth = _road_depth(120, 320, K, 1.65)
    ys, xs = np.mgrid[90:120, 40:280]
    z = depth[ys, xs].ravel()
    pts = np.stack([(xs.ravel() - 160) / 200 * z, (ys.ravel() - 60) / 200 * z, z], 1)
    n, d, ratio = fit_ground_plane(pts, max_tilt_deg=20)
    assert abs(d - 1.65) < 1e-3 and n[1] < -0.99 and ratio > 0.95


def test_camera_height_scale_makes_depth_metric():
    K = np.array([[200.0, 0, 160], [0, 200.0, 60], [0, 0, 1]])
    network_depth = 0.5 * _road_depth(120, 320, K, 1.65)  # network is off by a factor 2
    src = CameraHeightScale(ScaleConfig(source="camera_height", camera_height_m=1.65, smoothing=0.0))
    s = src.update(network_depth, K, np.zeros((120, 320), np.uint8), None, None, EstimatorConfig())
    assert abs(s - 2.0) < 0.01


def test_camera_height_scale_rejects_scene_without_ground():
    K = np.array([[200.0, 0, 160], [0, 200.0, 60], [0, 0, 1]])
    wall = np.full((120, 320), 10.0, np.float32)  # fronto-parallel wall: no ground plane
    src = CameraHeightScale(ScaleConfig(source="camera_height", smoothing=0.0))
    assert src.update(wall, K, np.zeros((120, 320), np.uint8), None, None, EstimatorConfig()) is None
