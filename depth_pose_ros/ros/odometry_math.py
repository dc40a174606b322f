"""Camera poses -> robot odometry: extrinsic, frame change, twist and covariance. Plain numpy.

The estimator tracks the *camera* in its optical frame (z forward, x right, y down) with the first
camera as world. ROS odometry (REP 105) wants ``T_odom_base``: the pose of ``base_link`` (x forward,
y left, z up) in ``odom``. With the fixed extrinsic ``T_base_cam`` (maps camera-frame points into
base_link) and ``odom`` defined as the base_link pose at the first frame,

    T_odom_base = T_base_cam @ T_world_cam @ inv(T_base_cam)

(odom -> first base -> first camera = world -> current camera -> current base). The same conjugation
turns the camera's frame-to-frame motion into base_link's, from which the twist follows.

Covariance: the estimator gives no covariance, only inlier statistics. :func:`motion_covariance` maps
them to a diagonal per-frame covariance (a few per cent of the motion plus a floor, inflated when the
confidence is low and much more for fallback poses), and :class:`PoseCovariance` sums those as a
random walk, because visual odometry drift grows with travelled frames. It is a heuristic that ranks
frames sensibly (good geometry < PnP fallback < constant-velocity guess), for filters such as
robot_localization that weight sources by covariance; it is not a calibrated uncertainty.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
from scipy.spatial.transform import Rotation

from depth_pose_ros.geometry.camera import backproject_np
from depth_pose_ros.geometry.se3_np import invert_np

#: roll, pitch, yaw of a forward-looking camera's optical frame in a REP 103 body frame: optical z
#: (forward) -> body x, optical x (right) -> body -y, optical y (down) -> body -z.
OPTICAL_IN_BODY_RPY: tuple[float, float, float] = (-math.pi / 2, 0.0, -math.pi / 2)

#: Per-frame standard deviations of the motion model (see :func:`motion_covariance`).
TRANSLATION_REL = 0.05  # fraction of the frame's translation
TRANSLATION_FLOOR_M = 0.01
ROTATION_REL = 0.05  # fraction of the frame's rotation angle
ROTATION_FLOOR_RAD = 0.002
MIN_QUALITY = 0.05  # confidence below this counts as this (caps the inflation at 20x)
#: Inflation of the standard deviations by the origin of the pose.
STATUS_FACTOR: dict[str, float] = {"ok": 1.0, "pnp_fallback": 3.0, "constant_velocity": 10.0}
#: Variance published for quantities that are unknown (first frame's twist): large, not infinite.
UNKNOWN_VARIANCE = 1e3


def rpy_to_matrix(rpy: Sequence[float]) -> np.ndarray:
    """(roll, pitch, yaw) in rad -> 3x3 rotation ``Rz(yaw) @ Ry(pitch) @ Rx(roll)``.

    Fixed-axis x-y-z angles, the convention of URDF, tf2 and ``static_transform_publisher``.
    """
    values = np.asarray(rpy, dtype=np.float64).reshape(-1)
    if values.size != 3 or not np.isfinite(values).all():
        raise ValueError(f"rpy: expected three finite angles (rad), got {list(np.ravel(rpy))}")
    return Rotation.from_euler("xyz", values).as_matrix()


def make_transform(xyz: Sequence[float], rpy: Sequence[float]) -> np.ndarray:
    """4x4 ``T_parent_child`` from the child's origin (``xyz`` in the parent) and its ``rpy``."""
    t = np.asarray(xyz, dtype=np.float64).reshape(-1)
    if t.size != 3 or not np.isfinite(t).all():
        raise ValueError(f"xyz: expected three finite numbers (m), got {list(np.ravel(xyz))}")
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(rpy)
    T[:3, 3] = t
    return T


def base_pose(T_world_cam: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """``T_odom_base`` from the camera pose.

    Args:
        T_world_cam: maps points of the current camera into the world (= first camera) frame.
        T_base_cam: the extrinsic, maps camera-frame points into base_link.
    Returns:
        4x4 ``T_odom_base`` (maps base_link points into odom; odom = base_link at the first frame).
    """
    return T_base_cam @ np.asarray(T_world_cam, dtype=np.float64) @ invert_np(T_base_cam)


def base_motion(T_cur_prev: np.ndarray, T_base_cam: np.ndarray) -> np.ndarray:
    """``T_prevbase_curbase`` (pose of the current base_link in the previous one).

    Args:
        T_cur_prev: camera motion, maps points of the previous camera into the current camera.
        T_base_cam: the extrinsic, maps camera-frame points into base_link.
    """
    return T_base_cam @ invert_np(np.asarray(T_cur_prev, dtype=np.float64)) @ invert_np(T_base_cam)


def base_twist(T_cur_prev: Optional[np.ndarray], dt: float,
               T_base_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(linear m/s, angular rad/s) of base_link, expressed in base_link (what nav_msgs/Odometry wants).

    First-order: the frame's displacement and rotation vector divided by ``dt``. Zero without a
    motion (first frame after a reset) or a positive ``dt``.

    Args:
        T_cur_prev: camera motion, maps points of the previous camera into the current camera.
    """
    if T_cur_prev is None or not dt > 0:
        return np.zeros(3), np.zeros(3)
    M = base_motion(T_cur_prev, T_base_cam)
    return M[:3, 3] / dt, Rotation.from_matrix(M[:3, :3]).as_rotvec() / dt


def motion_covariance(status: str, confidence: float, translation_m: float, rotation_rad: float) -> np.ndarray:
    """Diagonal 6x6 covariance (x y z, rot x y z) of one frame's motion, from the inlier statistics.

    Standard deviations: ``TRANSLATION_REL * |t| + TRANSLATION_FLOOR_M`` and
    ``ROTATION_REL * angle + ROTATION_FLOOR_RAD``, divided by ``max(confidence, MIN_QUALITY)`` and
    multiplied by ``STATUS_FACTOR[status]``. The first frame after a reset (no motion measured)
    gets :data:`UNKNOWN_VARIANCE`.
    """
    if status not in STATUS_FACTOR:
        return np.eye(6) * UNKNOWN_VARIANCE
    quality = max(float(confidence) if np.isfinite(confidence) else 0.0, MIN_QUALITY)
    factor = STATUS_FACTOR[status] / quality
    sigma_t = (TRANSLATION_REL * abs(translation_m) + TRANSLATION_FLOOR_M) * factor
    sigma_r = (ROTATION_REL * abs(rotation_rad) + ROTATION_FLOOR_RAD) * factor
    return np.diag([sigma_t**2] * 3 + [sigma_r**2] * 3)


class PoseCovariance:
    """Accumulated (random-walk) covariance of ``T_odom_base``: the sum of per-frame covariances."""

    def __init__(self) -> None:
        self.cov = np.zeros((6, 6))

    def reset(self) -> None:
        self.cov = np.zeros((6, 6))

    def add(self, frame_cov: np.ndarray) -> np.ndarray:
        """Add one frame's covariance (unknown first frames add nothing: the pose there is the origin)."""
        if float(np.max(frame_cov)) < UNKNOWN_VARIANCE:
            self.cov = self.cov + frame_cov
        return self.cov.copy()


def twist_covariance(frame_cov: np.ndarray, dt: float) -> np.ndarray:
    """Covariance of the twist: the frame's motion covariance divided by ``dt**2``."""
    if not dt > 0 or float(np.max(frame_cov)) >= UNKNOWN_VARIANCE:
        return np.eye(6) * UNKNOWN_VARIANCE
    return frame_cov / (dt * dt)


def depth_to_points(depth: np.ndarray, K: np.ndarray, stride: int = 1, max_range_m: float = math.inf,
                    image: Optional[np.ndarray] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Back-project every ``stride``-th pixel of a depth map into the camera optical frame.

    Pixel (u, v) with depth z (metres along the optical axis) -> ``z * K^-1 [u, v, 1]``. Pixels with
    non-finite, non-positive or farther than ``max_range_m`` depth (Euclidean range) are left out.
    ``image`` (HxWx3 RGB or HxW gray uint8 of the same size) gives the colours; returns
    (Nx3 float32 xyz, Nx3 uint8 RGB or None).
    """
    return backproject_np(depth, K, stride, max_range=max_range_m, image=image)
