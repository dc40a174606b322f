"""Essential / fundamental matrices and epipolar distances: exact correspondences and a hand case."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from depth_pose_ros.geometry.epipolar import (
    epipolar_distance,
    epipolar_distance_dense,
    essential_from_pose,
    fundamental_from_essential,
    sampson_distance,
    sampson_distance_dense,
    sampson_distance_dense_np,
    sampson_residual_np,
)

K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 120.0], [0.0, 0.0, 1.0]])


def _F(R: np.ndarray, t: np.ndarray) -> torch.Tensor:
    E = essential_from_pose(torch.from_numpy(R)[None], torch.from_numpy(t)[None])
    Kt = torch.from_numpy(K)
    return fundamental_from_essential(E, Kt, Kt)


def _correspondences(rng, R, t, n=200):
    X1 = np.c_[rng.uniform(-5, 5, n), rng.uniform(-3, 3, n), rng.uniform(4, 40, n)]
    X2 = X1 @ R.T + t
    p1 = (X1 @ K.T)[:, :2] / X1[:, 2:]
    p2 = (X2 @ K.T)[:, :2] / X2[:, 2:]
    return p1, p2


def test_exact_correspondences_satisfy_the_epipolar_constraint(rng):
    R = Rotation.from_rotvec([0.02, -0.05, 0.01]).as_matrix()
    t = np.array([0.1, -0.05, 1.0])
    p1, p2 = _correspondences(rng, R, t)
    F = _F(R, t)
    P1, P2 = torch.from_numpy(p1)[None], torch.from_numpy(p2)[None]
    assert sampson_distance(P1, P2, F).max().item() < 1e-5
    assert epipolar_distance(P1, P2, F).max().item() < 1e-5
    assert np.abs(sampson_residual_np(p1, p2, F[0].numpy())).max() < 1e-8
    # a point pushed 3 px off its epipolar line (along the line normal) is not
    line = F[0].numpy() @ np.r_[p1[0], 1.0]
    P2_bad = P2.clone()
    P2_bad[0, 0] += torch.from_numpy(3.0 * line[:2] / np.linalg.norm(line[:2]))
    assert sampson_distance(P1, P2_bad, F)[0, 0].item() > 1.5


def test_pure_sideways_motion_hand_computed():
    """R = I, t = (1, 0, 0): epipolar lines are image rows. A vertical offset dy gives a symmetric
    epipolar distance of |dy| (each point is |dy| from the other's row) and a Sampson distance of
    |dy| / sqrt(2) (moving each point by dy / 2 fixes it)."""
    F = _F(np.eye(3), np.array([1.0, 0.0, 0.0]))
    p1 = torch.tensor([[[10.0, 20.0], [200.0, 50.0]]], dtype=torch.float64)
    p2 = p1 + torch.tensor([[[5.0, 2.0], [-7.0, -3.0]]], dtype=torch.float64)
    assert epipolar_distance(p1, p2, F)[0].tolist() == pytest.approx([2.0, 3.0])
    assert sampson_distance(p1, p2, F)[0].tolist() == pytest.approx([2.0 / np.sqrt(2), 3.0 / np.sqrt(2)])
    assert sampson_distance(p1, p2, F, squared=True)[0].tolist() == pytest.approx([2.0, 4.5])
    assert np.abs(sampson_residual_np(p1[0].numpy(), p2[0].numpy(), F[0].numpy())) == pytest.approx(
        [2.0 / np.sqrt(2), 3.0 / np.sqrt(2)])


def test_dense_versions_agree_with_the_point_versions(rng):
    R = Rotation.from_rotvec([0.01, 0.03, -0.02]).as_matrix()
    t = np.array([0.2, 0.1, 1.0])
    F = _F(R, t)
    flow = torch.from_numpy(rng.normal(scale=4.0, size=(1, 2, 12, 16)))
    ys, xs = np.mgrid[0:12, 0:16]
    p1 = torch.from_numpy(np.stack((xs, ys), -1).reshape(1, -1, 2).astype(np.float64))
    p2 = p1 + flow.permute(0, 2, 3, 1).reshape(1, -1, 2)
    dense = sampson_distance_dense(flow, F)
    assert dense.shape == (1, 1, 12, 16)
    assert dense.reshape(1, -1).numpy() == pytest.approx(sampson_distance(p1, p2, F).numpy())
    assert epipolar_distance_dense(flow, F).reshape(1, -1).numpy() == pytest.approx(
        epipolar_distance(p1, p2, F).numpy())
    dense_np = sampson_distance_dense_np(flow[0].permute(1, 2, 0).numpy(), F[0].numpy())
    assert dense_np.dtype == np.float32
    assert dense_np == pytest.approx(dense[0, 0].numpy(), abs=1e-3)


def test_squared_distance_has_gradients_for_losses():
    F = _F(np.eye(3), np.array([1.0, 0.0, 0.0]))
    flow = torch.zeros(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    sampson_distance_dense(flow, F, squared=True).sum().backward()
    assert torch.isfinite(flow.grad).all()


def test_shape_errors():
    with pytest.raises(ValueError, match="BxNx2"):
        sampson_distance(torch.zeros(1, 5, 2), torch.zeros(1, 4, 2), torch.eye(3))
    with pytest.raises(ValueError, match="HxWx2"):
        sampson_distance_dense_np(np.zeros((4, 4)), np.eye(3))
