"""Rigid transforms and rotation conversions in numpy (scipy), importable without torch.

Same conventions as :mod:`depth_pose_ros.geometry.se3` (which re-exports everything here): a 4x4
``T_a_b`` maps points of frame ``b`` into frame ``a`` (``X_a = R X_b + t``); quaternions are
``(x, y, z, w)``. The rotation conversions delegate to ``scipy.spatial.transform.Rotation`` rather
than re-deriving the maths. Kept separate so the evaluation and the OpenCV-side code (trajectory
metrics, two-view pose) do not need torch.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def make_pose_np(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 float64 ``T_a_b`` from a 3x3 rotation and a 3-vector translation (``X_a = R X_b + t``)."""
    T = np.eye(4)
    T[:3, :3] = np.asarray(R, dtype=np.float64).reshape(3, 3)
    T[:3, 3] = np.asarray(t, dtype=np.float64).reshape(3)
    return T


def invert_np(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ...x4x4 (numpy): ``T_a_b -> T_b_a``."""
    T = np.asarray(T, dtype=np.float64)
    out = np.zeros_like(T)
    R_t = np.swapaxes(T[..., :3, :3], -1, -2)
    out[..., :3, :3] = R_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", R_t, T[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def axis_angle_to_matrix_np(axis_angle: np.ndarray) -> np.ndarray:
    """Axis-angle ...x3 -> rotation matrices ...x3x3 (scipy)."""
    v = np.asarray(axis_angle, dtype=np.float64)
    return Rotation.from_rotvec(v.reshape(-1, 3)).as_matrix().reshape(*v.shape[:-1], 3, 3)


def matrix_to_axis_angle_np(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ...x3x3 -> axis-angle ...x3 (scipy)."""
    R = np.asarray(R, dtype=np.float64)
    return Rotation.from_matrix(R.reshape(-1, 3, 3)).as_rotvec().reshape(*R.shape[:-2], 3)


def quat_to_matrix_np(quat: np.ndarray) -> np.ndarray:
    """Quaternions ...x4 ``(x, y, z, w)`` -> rotation matrices ...x3x3 (scipy; normalises)."""
    q = np.asarray(quat, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4)).as_matrix().reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat_np(R: np.ndarray) -> np.ndarray:
    """Rotation matrices ...x3x3 -> quaternions ...x4 ``(x, y, z, w)`` with ``w >= 0`` (scipy)."""
    R = np.asarray(R, dtype=np.float64)
    q = Rotation.from_matrix(R.reshape(-1, 3, 3)).as_quat()
    q = np.where(q[:, 3:4] < 0, -q, q)
    return q.reshape(*R.shape[:-2], 4)


def project_to_rotation_np(M: np.ndarray) -> np.ndarray:
    """Nearest rotation matrix (Frobenius) to a 3x3 ``M`` via SVD, with ``det = +1``.

    Used after estimating or averaging rotations numerically, where rounding leaves ``M`` slightly
    non-orthogonal and downstream ``arccos(trace)`` formulas would otherwise drift.
    """
    U, _, Vt = np.linalg.svd(np.asarray(M, dtype=np.float64))
    D = np.eye(3)
    D[2, 2] = np.sign(np.linalg.det(U @ Vt))
    return U @ D @ Vt
