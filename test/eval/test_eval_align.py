"""Umeyama alignment: exact recovery of known transforms, optimality, and degenerate inputs."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from depth_pose_ros.eval.align import Sim3, least_squares_scale, umeyama


def _random_sim3(rng: np.random.Generator, scale: float = 2.5) -> Sim3:
    return Sim3(scale=scale, R=Rotation.random(random_state=rng.integers(1 << 31)).as_matrix(),
                t=rng.normal(size=3) * 5)


def test_umeyama_recovers_known_sim3_exactly(rng: np.random.Generator) -> None:
    truth = _random_sim3(rng, scale=2.5)
    src = rng.normal(size=(30, 3))
    est = umeyama(src, truth.apply(src), with_scale=True)
    assert est.scale == pytest.approx(2.5, abs=1e-12)
    np.testing.assert_allclose(est.R, truth.R, atol=1e-12)
    np.testing.assert_allclose(est.t, truth.t, atol=1e-10)
    np.testing.assert_allclose(est.matrix(), truth.matrix(), atol=1e-10)


def test_umeyama_rigid_keeps_unit_scale_and_recovers_rotation(rng: np.random.Generator) -> None:
    truth = _random_sim3(rng, scale=1.0)
    src = rng.normal(size=(10, 3))
    est = umeyama(src, truth.apply(src), with_scale=False)
    assert est.scale == 1.0
    np.testing.assert_allclose(est.R, truth.R, atol=1e-12)
    # with a true scale of 3 the rigid fit cannot absorb it: residual stays large
    scaled = umeyama(src, 3.0 * src, with_scale=False)
    assert np.abs(scaled.apply(src) - 3.0 * src).max() > 0.5


def test_umeyama_never_returns_a_reflection() -> None:
    src = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [-1, 0.5, 0.2]])
    mirrored = src * np.array([1.0, 1.0, -1.0])  # best orthogonal map is a reflection
    est = umeyama(src, mirrored)
    assert np.linalg.det(est.R) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(est.R @ est.R.T, np.eye(3), atol=1e-12)


def test_umeyama_is_the_least_squares_optimum(rng: np.random.Generator) -> None:
    """Cross-check against a generic optimiser on noisy data: Umeyama's residual cannot be beaten."""
    src = rng.normal(size=(20, 3))
    dst = _random_sim3(rng, 0.7).apply(src) + rng.normal(scale=0.1, size=src.shape)
    est = umeyama(src, dst)
    cost_umeyama = np.sum((est.apply(src) - dst) ** 2)

    def residual(x: np.ndarray) -> np.ndarray:
        R = Rotation.from_rotvec(x[:3]).as_matrix()
        return (np.exp(x[3]) * src @ R.T + x[4:] - dst).ravel()

    x0 = np.zeros(7)
    cost_generic = 2 * least_squares(residual, x0).cost
    assert cost_umeyama <= cost_generic + 1e-9


def test_apply_to_poses_moves_positions_and_rotates_orientation(rng: np.random.Generator) -> None:
    sim3 = _random_sim3(rng, 0.5)
    T = np.tile(np.eye(4), (3, 1, 1))
    T[:, :3, 3] = rng.normal(size=(3, 3))
    out = sim3.apply_to_poses(T)
    np.testing.assert_allclose(out[:, :3, 3], sim3.apply(T[:, :3, 3]))
    np.testing.assert_allclose(out[0, :3, :3], sim3.R)


def test_umeyama_bad_input() -> None:
    with pytest.raises(ValueError, match="Nx3"):
        umeyama(np.zeros((4, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        umeyama(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="scale is undefined"):
        umeyama(np.ones((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        umeyama(np.full((3, 3), np.nan), np.zeros((3, 3)))


def test_least_squares_scale_hand_cases() -> None:
    assert least_squares_scale([1.0, 2.0], [2.0, 4.0]) == pytest.approx(2.0)
    # <g,p>/<p,p> = (1*1 + 0*1) / 1 = 1
    assert least_squares_scale([1.0, 0.0], [1.0, 1.0]) == pytest.approx(1.0)
    assert least_squares_scale([0.0, 0.0], [1.0, 1.0]) == 1.0
