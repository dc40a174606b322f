"""Rigid transforms and rotation conversions in numpy (scipy), importable without torch.

Same conventions as :mod:`depth_pose_ros.geometry.se3` (which re-exports everything here): a 4x4
``T_a_b`` maps points of frame ``b`` into frame ``a`` (``X_a = R X_b + t``); quaternions are
``(x, y, z, w)``. The rotation conversions delegate to ``scipy.spatial.transform.Rotation`` rather
than re-deriving the maths. Kept separate so the evaluation and the OpenCV-side code (trajectory
metrics, two-view pose) do not need torch.
"""
from __future__ import annotations

import math

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
    """Axis-angle ...x3 -> rotation matrices ...x3x3 (Rodrigues' formula).

    Written out rather than through scipy's ``Rotation``: the two-view refinement calls it for single
    vectors thousands of times per frame, where scipy's per-call overhead is most of the cost.
    Small angles use the series of ``sin(a)/a`` and ``(1 - cos(a))/a^2``, exact to double precision.
    """
    v = np.asarray(axis_angle, dtype=np.float64)
    if v.shape == (3,):  # one vector: plain floats, no array machinery
        x, y, z = float(v[0]), float(v[1]), float(v[2])
        a2 = x * x + y * y + z * z
        if a2 < 1e-8:
            s, c = 1.0 - a2 / 6.0, 0.5 - a2 / 24.0
        else:
            a = math.sqrt(a2)
            s, c = math.sin(a) / a, (1.0 - math.cos(a)) / a2
        return np.array([[1.0 - c * (y * y + z * z), c * x * y - s * z, c * x * z + s * y],
                         [c * x * y + s * z, 1.0 - c * (x * x + z * z), c * y * z - s * x],
                         [c * x * z - s * y, c * y * z + s * x, 1.0 - c * (x * x + y * y)]])
    return _axis_angle_to_matrix_batch(v)


def _axis_angle_to_matrix_batch(v: np.ndarray) -> np.ndarray:
    """:func:`axis_angle_to_matrix_np` of a float64 ...x3 array, vectorised."""
    w = v.reshape(-1, 3)
    a2 = np.einsum("ni,ni->n", w, w)
    a = np.sqrt(a2)
    small = a2 < 1e-8
    safe = np.where(small, 1.0, a)
    s = np.where(small, 1.0 - a2 / 6.0, np.sin(safe) / safe)
    c = np.where(small, 0.5 - a2 / 24.0, (1.0 - np.cos(safe)) / np.where(small, 1.0, a2))
    x, y, z = w[:, 0], w[:, 1], w[:, 2]
    out = np.empty((len(w), 3, 3))
    out[:, 0, 0] = 1.0 - c * (y * y + z * z)
    out[:, 1, 1] = 1.0 - c * (x * x + z * z)
    out[:, 2, 2] = 1.0 - c * (x * x + y * y)
    out[:, 0, 1] = c * x * y - s * z
    out[:, 1, 0] = c * x * y + s * z
    out[:, 0, 2] = c * x * z + s * y
    out[:, 2, 0] = c * x * z - s * y
    out[:, 1, 2] = c * y * z - s * x
    out[:, 2, 1] = c * y * z + s * x
    return out.reshape(*v.shape[:-1], 3, 3)


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
