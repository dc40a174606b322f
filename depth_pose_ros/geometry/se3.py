"""Rigid transforms and rotation parameterisations, torch (batched, differentiable) and numpy.

Pose convention (docs/architecture.md, "Pose naming"): a 4x4 ``T_a_b`` maps points expressed in frame
``b`` into frame ``a``: ``X_a = R_a_b X_b + t_a_b``. So ``compose(T_a_b, T_b_c) = T_a_c`` and ``invert(T_a_b) = T_b_a``.

The torch functions are used inside training losses (PoseNet outputs an axis-angle vector), so they
must stay finite and have finite gradients at zero rotation, where the textbook formulas divide by
zero; they switch to Taylor series there. The numpy functions (used by the OpenCV side and the
evaluation) are in :mod:`se3_np` (no torch import) and re-exported here.
Quaternions are ``(x, y, z, w)`` everywhere, the order ROS messages and scipy use.
"""
from __future__ import annotations

import torch

# numpy / scipy versions live in se3_np (importable without torch); re-exported here so that
# ``from depth_pose_ros.geometry.se3 import invert_np`` keeps working.
from depth_pose_ros.geometry.se3_np import (  # noqa: F401
    axis_angle_to_matrix_np,
    invert_np,
    make_pose_np,
    matrix_to_axis_angle_np,
    matrix_to_quat_np,
    project_to_rotation_np,
    quat_to_matrix_np,
)

# Below this squared angle the Taylor series are exact to float64 rounding (next term ~ theta^6/5040).
_SMALL_ANGLE_SQ = 1e-6


def _check_last(x: torch.Tensor, shape: tuple[int, ...], fn: str) -> None:
    if tuple(x.shape[-len(shape):]) != shape:
        raise ValueError(f"{fn}: expected a tensor of shape ...x{'x'.join(map(str, shape))}, "
                         f"got {tuple(x.shape)}")


def skew(v: torch.Tensor) -> torch.Tensor:
    """Cross-product matrices ``[v]_x`` (...x3x3) of vectors ...x3: ``skew(a) @ b = a x b``."""
    _check_last(v, (3,), "skew")
    zero = torch.zeros_like(v[..., 0])
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    rows = (
        torch.stack((zero, -z, y), dim=-1),
        torch.stack((z, zero, -x), dim=-1),
        torch.stack((-y, x, zero), dim=-1),
    )
    return torch.stack(rows, dim=-2)


def transform_points(T: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply ``T_a_b`` (Bx4x4) to points in frame b (Bx3x... e.g. Bx3xN or Bx3xHxW) -> frame a."""
    _check_last(T, (4, 4), "transform_points")
    if points.dim() < 2 or points.shape[1] != 3:
        raise ValueError(f"transform_points: points must be Bx3x..., got {tuple(points.shape)}")
    b = points.shape[0]
    flat = points.reshape(b, 3, -1)
    out = torch.matmul(T[:, :3, :3], flat) + T[:, :3, 3:4]
    return out.reshape(points.shape)


def invert(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms ...x4x4 using ``R^T`` (exact for rotations, unlike ``inverse``)."""
    _check_last(T, (4, 4), "invert")
    R_t = T[..., :3, :3].transpose(-1, -2)
    t = -torch.matmul(R_t, T[..., :3, 3:4])
    out = torch.zeros_like(T)
    out[..., :3, :3] = R_t
    out[..., :3, 3:4] = t
    out[..., 3, 3] = 1.0
    return out


def compose(T_a_b: torch.Tensor, T_b_c: torch.Tensor) -> torch.Tensor:
    """``T_a_c = T_a_b @ T_b_c`` (points of c -> b -> a)."""
    _check_last(T_a_b, (4, 4), "compose")
    _check_last(T_b_c, (4, 4), "compose")
    return torch.matmul(T_a_b, T_b_c)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula ...x3 -> ...x3x3, finite with finite gradients at zero rotation.

    ``R = I + A [w]_x + B [w]_x^2`` with ``A = sin(t)/t`` and ``B = (1 - cos t)/t^2``, ``t = |w|``.
    Near zero the series ``A = 1 - t^2/6 + t^4/120``, ``B = 1/2 - t^2/24 + t^4/720`` are used; the
    large-angle branch is evaluated on a safe angle so that ``torch.where`` never sees NaN gradients.
    """
    _check_last(axis_angle, (3,), "axis_angle_to_matrix")
    theta2 = (axis_angle * axis_angle).sum(-1)
    small = theta2 < _SMALL_ANGLE_SQ
    theta_safe = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a_big = torch.sin(theta_safe) / theta_safe
    b_big = (1.0 - torch.cos(theta_safe)) / (theta_safe * theta_safe)
    a_small = 1.0 - theta2 / 6.0 + theta2 * theta2 / 120.0
    b_small = 0.5 - theta2 / 24.0 + theta2 * theta2 / 720.0
    a = torch.where(small, a_small, a_big)[..., None, None]
    b = torch.where(small, b_small, b_big)[..., None, None]
    W = skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand(W.shape)
    return eye + a * W + b * torch.matmul(W, W)


def quat_to_matrix(quat: torch.Tensor) -> torch.Tensor:
    """Quaternions ...x4 ``(x, y, z, w)`` -> rotation matrices ...x3x3 (normalised first)."""
    _check_last(quat, (4,), "quat_to_matrix")
    q = quat / quat.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    x, y, z, w = q.unbind(-1)
    rows = (
        torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)), dim=-1),
        torch.stack((2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)), dim=-1),
        torch.stack((2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)), dim=-1),
    )
    return torch.stack(rows, dim=-2)


def matrix_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ...x3x3 -> unit quaternions ...x4 ``(x, y, z, w)`` with ``w >= 0``.

    Shepperd's method: of the four algebraically equivalent formulas (each dividing by one of
    ``4w, 4x, 4y, 4z``), use per item the one whose divisor is largest, so no item divides by a
    near-zero number (the single ``trace`` formula fails near 180 degrees).
    """
    _check_last(R, (3, 3), "matrix_to_quat")
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    m01, m02, m10 = R[..., 0, 1], R[..., 0, 2], R[..., 1, 0]
    m12, m20, m21 = R[..., 1, 2], R[..., 2, 0], R[..., 2, 1]
    # 4*q_i^2 for i = w, x, y, z (clamped: rounding can make them slightly negative).
    four_sq = torch.stack(
        (1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22), dim=-1
    ).clamp(min=1e-12)
    two_q = torch.sqrt(four_sq)  # 2*|q_i|
    # Candidate quaternions (x, y, z, w), each scaled so its "pivot" component is |q_i|.
    cand_w = torch.stack((m21 - m12, m02 - m20, m10 - m01, four_sq[..., 0]), dim=-1)
    cand_x = torch.stack((four_sq[..., 1], m01 + m10, m02 + m20, m21 - m12), dim=-1)
    cand_y = torch.stack((m01 + m10, four_sq[..., 2], m12 + m21, m02 - m20), dim=-1)
    cand_z = torch.stack((m02 + m20, m12 + m21, four_sq[..., 3], m10 - m01), dim=-1)
    cands = torch.stack((cand_w, cand_x, cand_y, cand_z), dim=-2) / (2 * two_q[..., :, None])
    best = four_sq.argmax(dim=-1)
    idx = best[..., None, None].expand(*best.shape, 1, 4)
    q = torch.gather(cands, -2, idx).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., 3:4] < 0, -q, q)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ...x3x3 -> axis-angle ...x3 with angle in [0, pi].

    Goes through the quaternion (stable at every angle, including 180 degrees):
    ``angle = 2 atan2(|q_xyz|, w)`` and ``w = q_xyz * angle / sin(angle / 2)``, with the series
    ``angle / sin(angle/2) ~ 2 + angle^2 / 12`` near zero.
    """
    q = matrix_to_quat(R)
    v = q[..., :3]
    w = q[..., 3]
    s2 = (v * v).sum(-1)
    small = s2 < _SMALL_ANGLE_SQ
    s_safe = torch.sqrt(torch.where(small, torch.ones_like(s2), s2))
    factor_big = 2.0 * torch.atan2(s_safe, w) / s_safe
    # For small |v| = sin(a/2) with w ~ 1: 2 atan(s/w)/s ~ (2/w) (1 - s^2/(3 w^2)).
    factor_small = (2.0 / w) * (1.0 - s2 / (3.0 * w * w))
    return v * torch.where(small, factor_small, factor_big)[..., None]


def pose_vec_to_mat(axis_angle: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
    """6-DoF vectors (axis-angle Bx3, translation Bx3) -> Bx4x4 ``T_target_source``.

    The returned transform maps source-camera points into the target camera:
    ``X_t = R(axis_angle) X_s + translation`` (PoseNet predicts exactly these two vectors).
    """
    _check_last(axis_angle, (3,), "pose_vec_to_mat")
    _check_last(translation, (3,), "pose_vec_to_mat")
    R = axis_angle_to_matrix(axis_angle)
    bottom = torch.zeros(*R.shape[:-2], 1, 4, dtype=R.dtype, device=R.device)
    bottom[..., 0, 3] = 1.0
    top = torch.cat((R, translation[..., :, None].to(R.dtype)), dim=-1)
    return torch.cat((top, bottom), dim=-2)
