"""Pinhole helpers: hand-computed projections, and intrinsics arithmetic checked against OpenCV resizing."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from depth_pose_ros.geometry.camera import (
    backproject,
    backproject_np,
    crop_intrinsics,
    invert_intrinsics,
    pixel_grid,
    project,
    scale_intrinsics,
    validate_intrinsics,
)

K_NP = np.array([[100.0, 0.0, 50.0], [0.0, 120.0, 40.0], [0.0, 0.0, 1.0]])


def test_pixel_grid_is_x_then_y_at_integer_centres():
    g = pixel_grid(2, 3)
    assert g.shape == (1, 2, 2, 3)
    assert g[0, 0].tolist() == [[0, 1, 2], [0, 1, 2]]
    assert g[0, 1].tolist() == [[0, 0, 0], [1, 1, 1]]
    with pytest.raises(ValueError, match="positive"):
        pixel_grid(0, 3)


def test_backproject_hand_computed():
    depth = torch.full((1, 1, 50, 80), 2.0, dtype=torch.float64)
    K_inv = torch.from_numpy(np.linalg.inv(K_NP))[None]
    pts = backproject(depth, K_inv)
    # pixel (x=60, y=40): X = (60 - 50) / 100 * 2 = 0.2, Y = 0, Z = 2
    assert torch.allclose(pts[0, :, 40, 60], torch.tensor([0.2, 0.0, 2.0], dtype=torch.float64))
    # pixel (x=50, y=100 is outside); use (x=50, y=10): Y = (10 - 40) / 120 * 2 = -0.5
    assert torch.allclose(pts[0, :, 10, 50], torch.tensor([0.0, -0.5, 2.0], dtype=torch.float64))


def test_project_inverts_backproject_and_accepts_point_lists():
    torch.manual_seed(0)
    depth = torch.rand(2, 1, 6, 7, dtype=torch.float64) * 10 + 0.5
    K = torch.from_numpy(K_NP)[None].expand(2, 3, 3)
    pix, z = project(backproject(depth, torch.linalg.inv(K)), K)
    assert torch.allclose(pix, pixel_grid(6, 7, dtype=torch.float64).expand(2, 2, 6, 7), atol=1e-9)
    assert torch.allclose(z, depth)
    pts = torch.tensor([[[0.2, -1.0], [0.0, 0.0], [2.0, -2.0]]], dtype=torch.float64)  # 1x3xN
    pix, z = project(pts, torch.from_numpy(K_NP))
    assert pix.shape == (1, 2, 2) and z.shape == (1, 1, 2)
    assert pix[0, :, 0].tolist() == pytest.approx([60.0, 40.0])
    assert z[0, 0, 1].item() == -2.0  # behind the camera: z is reported unclamped
    assert torch.isfinite(pix).all()


def test_project_rejects_bad_shapes():
    with pytest.raises(ValueError, match="points"):
        project(torch.zeros(1, 2, 5), torch.eye(3)[None])
    with pytest.raises(ValueError, match="K"):
        project(torch.zeros(2, 3, 5), torch.eye(3).expand(3, 3, 3))


def _blob(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w]
    return np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def _centroid(img: np.ndarray) -> tuple[float, float]:
    ys, xs = np.mgrid[0 : img.shape[0], 0 : img.shape[1]]
    return float((img * xs).sum() / img.sum()), float((img * ys).sum() / img.sum())


@pytest.mark.parametrize("interp", [cv2.INTER_AREA, cv2.INTER_LINEAR])
def test_scale_intrinsics_matches_cv2_resize(interp):
    """A blob at pixel (cx, cy) must land where the scaled K predicts after cv2.resize."""
    h, w, s = 120, 160, 0.5
    cx, cy = 71.3, 52.8
    small = cv2.resize(_blob(h, w, cx, cy, 6.0), (int(w * s), int(h * s)), interpolation=interp)
    K = np.array([[200.0, 0.0, cx], [0.0, 200.0, cy], [0.0, 0.0, 1.0]])  # principal point on the blob
    Ks = scale_intrinsics(K, s, s)
    mx, my = _centroid(small)
    assert mx == pytest.approx(Ks[0, 2], abs=0.02)
    assert my == pytest.approx(Ks[1, 2], abs=0.02)
    assert Ks[0, 0] == 100.0 and Ks[1, 1] == 100.0
    # the naive rule cx * s would be off by a quarter pixel here
    assert abs(mx - cx * s) > 0.2


def test_scale_and_crop_accept_torch_batches_and_do_not_modify_input():
    K = torch.from_numpy(K_NP).float()[None].repeat(2, 1, 1)
    Ks = scale_intrinsics(K, 2.0, 0.5)
    assert isinstance(Ks, torch.Tensor) and Ks.shape == (2, 3, 3)
    assert Ks[1, 0, 2].item() == pytest.approx((50 + 0.5) * 2 - 0.5)
    assert Ks[1, 1, 2].item() == pytest.approx((40 + 0.5) * 0.5 - 0.5)
    assert K[0, 0, 2].item() == 50.0
    Kc = crop_intrinsics(K_NP.astype(int), 10, 5)
    assert Kc.dtype == np.float64 and Kc[0, 2] == 40.0 and Kc[1, 2] == 35.0 and K_NP[0, 2] == 50.0


def test_crop_intrinsics_matches_cropped_projection():
    X = np.array([0.3, -0.2, 4.0])
    p = K_NP @ X / X[2]
    Kc = crop_intrinsics(K_NP, 7, 3)
    pc = Kc @ X / X[2]
    assert pc[:2] == pytest.approx(p[:2] - [7, 3])


def test_invert_intrinsics_with_skew_numpy_and_torch():
    K = np.array([[300.0, 2.0, 160.0], [0.0, 310.0, 90.0], [0.0, 0.0, 1.0]])
    assert invert_intrinsics(K) == pytest.approx(np.linalg.inv(K))
    Kt = torch.from_numpy(K)[None]
    assert torch.allclose(invert_intrinsics(Kt), torch.linalg.inv(Kt))


def test_validate_intrinsics_errors_name_the_argument():
    assert validate_intrinsics(K_NP.tolist()).dtype == np.float64
    with pytest.raises(ValueError, match="my_K must be a 3x3"):
        validate_intrinsics(np.eye(4), "my_K")
    with pytest.raises(ValueError, match="non-finite"):
        validate_intrinsics(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="positive focal"):
        validate_intrinsics(np.diag([-1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="last row"):
        validate_intrinsics(np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 2.0]]))


def test_backproject_np_matches_the_torch_backprojection_and_filters():
    """The numpy twin gives the torch points (skew included) and drops bad / far pixels."""
    K = np.array([[200.0, 3.0, 30.5], [0.0, 180.0, 20.25], [0.0, 0.0, 1.0]])
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.5, 20.0, (9, 13)).astype(np.float32)
    depth[0, 0], depth[1, 1], depth[2, 2] = np.nan, 0.0, -1.0
    ref = backproject(torch.from_numpy(depth)[None, None].double(),
                      invert_intrinsics(torch.from_numpy(K)[None])).numpy()[0]  # 3xHxW
    xyz, rgb = backproject_np(depth, K)
    ok = np.isfinite(depth) & (depth > 0)
    np.testing.assert_allclose(xyz, ref[:, ok].T, rtol=1e-6)
    assert rgb is None and len(xyz) == ok.sum()
    gray = rng.integers(0, 255, depth.shape, dtype=np.uint8)
    xyz, rgb = backproject_np(depth, K, stride=2, max_depth=10.0, image=gray)
    sub = depth[::2, ::2]
    keep = np.isfinite(sub) & (sub > 0) & (sub < 10.0)
    assert (xyz[:, 2] < 10.0).all() and len(xyz) == keep.sum()
    np.testing.assert_array_equal(rgb, np.repeat(gray[::2, ::2][keep][:, None], 3, axis=1))
    xyz, _ = backproject_np(depth, K, max_range=10.0)
    assert (np.linalg.norm(xyz, axis=1) <= 10.0 + 1e-5).all()
    with pytest.raises(ValueError, match="image"):
        backproject_np(depth, K, image=gray[:3])
