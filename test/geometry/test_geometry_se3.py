"""SE(3) / rotation helpers: against scipy, at the singular angles, and through autograd."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from depth_pose_ros.geometry.se3 import (
    axis_angle_to_matrix,
    axis_angle_to_matrix_np,
    compose,
    invert,
    invert_np,
    make_pose_np,
    matrix_to_axis_angle,
    matrix_to_axis_angle_np,
    matrix_to_quat,
    matrix_to_quat_np,
    pose_vec_to_mat,
    project_to_rotation_np,
    quat_to_matrix,
    quat_to_matrix_np,
    skew,
    transform_points,
)


def _rotvecs(rng: np.random.Generator) -> np.ndarray:
    """Random axis-angles plus the hard cases: zero, tiny, and close to / at pi."""
    axes = rng.normal(size=(6, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.array([0.0, 1e-9, 1e-4, 0.7, math.pi - 1e-7, math.pi])
    return np.concatenate([rng.normal(size=(20, 3)), axes * angles[:, None]])


def test_axis_angle_to_matrix_matches_scipy(rng):
    v = _rotvecs(rng)
    R = axis_angle_to_matrix(torch.from_numpy(v)).numpy()
    assert R == pytest.approx(Rotation.from_rotvec(v).as_matrix(), abs=1e-12)


def test_matrix_to_axis_angle_roundtrip_including_pi(rng):
    v = _rotvecs(rng)
    v = v[np.linalg.norm(v, axis=1) < math.pi - 1e-3]  # unique representation
    back = matrix_to_axis_angle(axis_angle_to_matrix(torch.from_numpy(v))).numpy()
    assert back == pytest.approx(v, abs=1e-9)
    # at exactly pi the axis sign is ambiguous: compare the rotation it represents
    Rpi = Rotation.from_rotvec([0.0, math.pi / math.sqrt(2), math.pi / math.sqrt(2)]).as_matrix()
    w = matrix_to_axis_angle(torch.from_numpy(Rpi)[None])[0].numpy()
    assert np.linalg.norm(w) == pytest.approx(math.pi, abs=1e-6)
    assert Rotation.from_rotvec(w).as_matrix() == pytest.approx(Rpi, abs=1e-6)


def test_rodrigues_gradient_is_finite_at_zero_and_correct_elsewhere():
    zero = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    R = axis_angle_to_matrix(zero)
    (g,) = torch.autograd.grad(R[0, 0, 1] - R[0, 1, 0], zero)
    # d/dw (R01 - R10) at zero: R ~ I + [w]x, R01 = -w_z, R10 = w_z -> gradient (0, 0, -2)
    assert torch.isfinite(g).all() and g[0].tolist() == pytest.approx([0.0, 0.0, -2.0])
    for v in ([1e-5, -2e-5, 3e-6], [0.3, -0.2, 0.9]):
        x = torch.tensor([v], dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(axis_angle_to_matrix, (x,))
        assert torch.autograd.gradcheck(matrix_to_axis_angle, (axis_angle_to_matrix(x).detach().requires_grad_(),))


def test_quaternions_match_scipy_xyzw(rng):
    v = _rotvecs(rng)
    R = Rotation.from_rotvec(v).as_matrix()
    q = matrix_to_quat(torch.from_numpy(R)).numpy()
    assert (q[:, 3] >= 0).all()
    assert np.linalg.norm(q, axis=1) == pytest.approx(np.ones(len(q)))
    ref = Rotation.from_matrix(R).as_quat()
    ref = np.where(ref[:, 3:4] < 0, -ref, ref)
    # at exactly pi (w = 0) q and -q are both valid: compare up to sign
    assert np.minimum(np.abs(q - ref).max(1), np.abs(q + ref).max(1)).max() < 1e-9
    assert quat_to_matrix(torch.from_numpy(q)).numpy() == pytest.approx(R, abs=1e-12)
    # unnormalised input is normalised
    assert quat_to_matrix(torch.from_numpy(3.0 * q)).numpy() == pytest.approx(R, abs=1e-12)


def test_numpy_versions_agree_with_torch(rng):
    v = rng.normal(size=(4, 2, 3))
    R = axis_angle_to_matrix_np(v)
    assert R.shape == (4, 2, 3, 3)
    assert R == pytest.approx(axis_angle_to_matrix(torch.from_numpy(v)).numpy(), abs=1e-12)
    assert matrix_to_axis_angle_np(R) == pytest.approx(matrix_to_axis_angle(torch.from_numpy(R)).numpy(), abs=1e-9)
    q = matrix_to_quat_np(R)
    assert q == pytest.approx(matrix_to_quat(torch.from_numpy(R)).numpy(), abs=1e-9)
    assert quat_to_matrix_np(q) == pytest.approx(R, abs=1e-12)


def test_pose_vec_to_mat_hand_computed():
    """90 deg about z then translate (1, 2, 3): source point (1, 0, 0) -> target (1, 3, 3)."""
    T = pose_vec_to_mat(torch.tensor([[0.0, 0.0, math.pi / 2]]), torch.tensor([[1.0, 2.0, 3.0]]))
    assert T.shape == (1, 4, 4)
    assert T[0, 3].tolist() == [0.0, 0.0, 0.0, 1.0]
    p = transform_points(T, torch.tensor([[[1.0], [0.0], [0.0]]]))
    assert p[0, :, 0].tolist() == pytest.approx([1.0, 3.0, 3.0], abs=1e-6)


def test_invert_compose_and_transform_points(rng):
    T_ab = torch.from_numpy(np.stack([make_pose_np(Rotation.random(random_state=i).as_matrix(), rng.normal(size=3))
                                      for i in range(3)]))
    T_bc = torch.from_numpy(np.stack([make_pose_np(Rotation.random(random_state=10 + i).as_matrix(),
                                                   rng.normal(size=3)) for i in range(3)]))
    eye = torch.eye(4, dtype=torch.float64).expand(3, 4, 4)
    assert torch.allclose(compose(T_ab, invert(T_ab)), eye, atol=1e-12)
    assert torch.allclose(invert(T_ab), torch.linalg.inv(T_ab), atol=1e-12)
    assert invert_np(T_ab.numpy()) == pytest.approx(torch.linalg.inv(T_ab).numpy(), abs=1e-12)
    pts_c = torch.from_numpy(rng.normal(size=(3, 3, 4, 5)))  # Bx3xHxW
    via_b = transform_points(T_ab, transform_points(T_bc, pts_c))
    direct = transform_points(compose(T_ab, T_bc), pts_c)
    assert torch.allclose(via_b, direct, atol=1e-12)
    manual = torch.einsum("bij,bjhw->bihw", T_ab[:, :3, :3], pts_c) + T_ab[:, :3, 3, None, None]
    assert torch.allclose(transform_points(T_ab, pts_c), manual)


def test_skew_is_the_cross_product(rng):
    a, b = rng.normal(size=(2, 3))
    assert (skew(torch.from_numpy(a)).numpy() @ b) == pytest.approx(np.cross(a, b))


def test_project_to_rotation_fixes_drift(rng):
    R = Rotation.random(random_state=3).as_matrix()
    noisy = R + 1e-4 * rng.normal(size=(3, 3))
    P = project_to_rotation_np(noisy)
    assert P @ P.T == pytest.approx(np.eye(3), abs=1e-12)
    assert np.linalg.det(P) == pytest.approx(1.0)
    assert P == pytest.approx(R, abs=1e-3)


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="axis_angle_to_matrix"):
        axis_angle_to_matrix(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="transform_points"):
        transform_points(torch.eye(4)[None], torch.zeros(1, 2, 5))
