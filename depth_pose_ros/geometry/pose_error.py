"""Per-frame relative-pose errors (numpy): the one place these formulas live.

Used by the two-view tests, the VO runner and the evaluation library, so that "rotation error per
frame" means the same thing in every number the project reports:

* rotation error = angle of ``R_est^T R_gt`` (degrees);
* translation-direction error = angle between ``t_est`` and ``t_gt`` (degrees), scale-free, because
  monocular two-view translation is only known up to scale.

Both are computed on relative poses ``T_2_1`` (maps frame-1 camera points into frame 2), which from
ground-truth camera-to-world poses is ``T_2_1 = inv(T_world_2) @ T_world_1``.
"""
from __future__ import annotations

import numpy as np

from depth_pose_ros.geometry.se3_np import invert_np


def relative_pose(T_world_1: np.ndarray, T_world_2: np.ndarray) -> np.ndarray:
    """``T_2_1 = inv(T_world_2) @ T_world_1`` (...x4x4): maps frame-1 camera points into frame 2."""
    return np.matmul(invert_np(T_world_2), np.asarray(T_world_1, dtype=np.float64))


def relative_poses(T_world_cam: np.ndarray) -> np.ndarray:
    """Consecutive relative poses ``T_{i+1}_i`` of a trajectory Nx4x4 (camera-to-world) -> (N-1)x4x4."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] != (4, 4):
        raise ValueError(f"relative_poses: expected Nx4x4 poses, got shape {T.shape}")
    return relative_pose(T[:-1], T[1:])


def rotation_error_deg(R_est: np.ndarray, R_gt: np.ndarray) -> np.ndarray:
    """Angle (degrees) of ``R_est^T R_gt`` for ...x3x3 rotations; accurate also for tiny angles.

    Uses ``atan2(|vee(A - A^T)| / 2, (trace(A) - 1) / 2)`` instead of ``arccos``, whose slope is
    infinite at 1 and would quantise sub-0.01-degree errors to zero.
    """
    A = np.matmul(np.swapaxes(np.asarray(R_est, dtype=np.float64), -1, -2), np.asarray(R_gt, np.float64))
    s = 0.5 * np.sqrt((A[..., 2, 1] - A[..., 1, 2]) ** 2 + (A[..., 0, 2] - A[..., 2, 0]) ** 2
                      + (A[..., 1, 0] - A[..., 0, 1]) ** 2)
    c = 0.5 * (np.trace(A, axis1=-2, axis2=-1) - 1.0)
    return np.degrees(np.arctan2(s, c))


def translation_direction_error_deg(t_est: np.ndarray, t_gt: np.ndarray, min_norm: float = 1e-9) -> np.ndarray:
    """Angle (degrees) between translation vectors ...x3; NaN where either has norm < ``min_norm``.

    NaN (not 0 or 180) because the direction of a zero translation is undefined; aggregate with
    ``np.nanmedian`` / ``np.nanmean``.
    """
    a = np.asarray(t_est, dtype=np.float64)
    b = np.asarray(t_gt, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = (a * b).sum(-1)
    ang = np.degrees(np.arctan2(cross, dot))
    return np.where((na < min_norm) | (nb < min_norm), np.nan, ang)


def relative_pose_errors(T_est_2_1: np.ndarray, T_gt_2_1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rotation error deg, translation-direction error deg) of relative poses ...x4x4 ``T_2_1``."""
    T_est = np.asarray(T_est_2_1, dtype=np.float64)
    T_gt = np.asarray(T_gt_2_1, dtype=np.float64)
    return (rotation_error_deg(T_est[..., :3, :3], T_gt[..., :3, :3]),
            translation_direction_error_deg(T_est[..., :3, 3], T_gt[..., :3, 3]))


def trajectory_relative_errors(pred_T_world_cam: np.ndarray,
                               gt_T_world_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per consecutive pair of two Nx4x4 camera-to-world trajectories: (rot err deg, tdir err deg)."""
    pred = np.asarray(pred_T_world_cam, dtype=np.float64)
    gt = np.asarray(gt_T_world_cam, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"trajectory_relative_errors: pred {pred.shape} and gt {gt.shape} differ in shape")
    return relative_pose_errors(relative_poses(pred), relative_poses(gt))
