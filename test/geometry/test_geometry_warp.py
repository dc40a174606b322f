"""Rigid flow and inverse warping: hand-computed flows, exact shifts, and a ray-cast scene."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_scenes import render_depth, texture

from depth_pose_ros.geometry.camera import pixel_grid
from depth_pose_ros.geometry.se3 import axis_angle_to_matrix_np, invert_np, make_pose_np
from depth_pose_ros.geometry.warp import pixels_to_grid, rigid_flow, sample_at, warp_by_flow, warp_rigid

K = np.array([[100.0, 0.0, 31.5], [0.0, 100.0, 23.5], [0.0, 0.0, 1.0]])


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


def test_rigid_flow_identity_is_zero():
    depth = torch.rand(2, 1, 8, 9, dtype=torch.float64) + 1
    flow, z = rigid_flow(depth, torch.eye(4, dtype=torch.float64).expand(2, 4, 4), _t(K))
    assert flow.abs().max() < 1e-12
    assert torch.allclose(z, depth)


def test_rigid_flow_pure_translation_hand_computed():
    """Plane at z = 10, T_s_t moves points by +1 m in x: every pixel moves fx * 1 / 10 = 10 px right."""
    depth = torch.full((1, 1, 48, 64), 10.0, dtype=torch.float64)
    T = make_pose_np(np.eye(3), [1.0, 0.0, 0.0])
    flow, z = rigid_flow(depth, _t(T)[None], _t(K)[None])
    assert torch.allclose(flow[:, 0], torch.full_like(flow[:, 0], 10.0))
    assert torch.allclose(flow[:, 1], torch.zeros_like(flow[:, 1]), atol=1e-12)
    # forward motion by 5 m toward the plane: pixel at offset (dx, dy) from the centre doubles its offset
    flow, z = rigid_flow(depth, _t(make_pose_np(np.eye(3), [0.0, 0.0, -5.0]))[None], _t(K)[None])
    assert torch.allclose(z, torch.full_like(z, 5.0))
    assert flow[0, 0, 23, 41].item() == pytest.approx(41 - 31.5)  # offset 9.5 -> 19, flow 9.5
    assert flow[0, 1, 3, 0].item() == pytest.approx(3 - 23.5)


def test_pixels_to_grid_maps_pixel_centres_to_minus_one_plus_one():
    grid = pixels_to_grid(pixel_grid(3, 5))
    assert grid.shape == (1, 3, 5, 2)
    assert grid[0, 0, 0].tolist() == [-1.0, -1.0]
    assert grid[0, 2, 4].tolist() == [1.0, 1.0]
    assert grid[0, 1, 2].tolist() == [0.0, 0.0]


def test_sample_at_reads_pixel_centres_of_another_size_with_either_padding():
    """Sparse points (a 1xN grid) into a larger image; outside points read the border or zero."""
    img = torch.arange(4 * 7, dtype=torch.float64).reshape(1, 1, 4, 7)  # value = 7 y + x
    pix = torch.tensor([[[[0.0, 6.0, 2.5, 9.0]], [[0.0, 3.0, 1.0, 1.0]]]], dtype=torch.float64)  # 1x2x1x4
    border = sample_at(img, pix)
    assert border.shape == (1, 1, 1, 4)
    assert border[0, 0, 0].tolist() == [0.0, 27.0, 9.5, 13.0]  # (9, 1) clamps to the right edge: 7 + 6
    zeros = sample_at(img, pix, padding="zeros")
    assert zeros[0, 0, 0, :3].tolist() == [0.0, 27.0, 9.5] and zeros[0, 0, 0, 3].item() == 0.0
    nan = sample_at(img, torch.full_like(pix, float("nan")))
    assert torch.isfinite(nan).all()  # a diverged (NaN) point reads the image, never NaN


def test_warp_by_flow_integer_and_half_pixel_shifts():
    img = torch.arange(5 * 6, dtype=torch.float64).reshape(1, 1, 5, 6)
    flow = torch.zeros(1, 2, 5, 6, dtype=torch.float64)
    flow[:, 0] = 2.0  # sample two pixels to the right
    warped, valid = warp_by_flow(img, flow)
    assert torch.allclose(warped[..., :4], img[..., 2:], atol=1e-9)
    assert valid[0, 0, 0].tolist() == [1, 1, 1, 1, 0, 0]
    flow[:, 0] = 0.0
    flow[:, 1] = 0.5  # half a pixel down: mean of rows y and y + 1
    warped, valid = warp_by_flow(img, flow)
    assert torch.allclose(warped[..., :4, :], 0.5 * (img[..., :4, :] + img[..., 1:, :]))
    assert valid[0, 0, 4].sum() == 0 and valid[0, 0, :4].all()
    assert torch.isfinite(warped).all()  # out-of-image samples clamp to the border, never NaN


def test_warp_by_flow_is_differentiable_in_flow():
    img = torch.linspace(0, 1, 8, dtype=torch.float64).repeat(1, 1, 6, 1)  # ramp in x
    flow = torch.full((1, 2, 6, 8), 0.3, dtype=torch.float64, requires_grad=True)
    warped, _ = warp_by_flow(img, flow)
    warped[..., 2:5].sum().backward()
    # d(ramp)/dx = 1/7 per pixel, zero in y
    assert flow.grad[0, 0, :, 2:5].mean().item() == pytest.approx(1 / 7)
    assert flow.grad[0, 1].abs().max().item() < 1e-12


def test_warp_rigid_reconstructs_a_ray_cast_view():
    """Render the street from two poses; warping view 2 into view 1 with depth 1 must reproduce view 1."""
    h, w = 96, 128
    Ks = np.array([[200.0, 0.0, 63.5], [0.0, 200.0, 47.5], [0.0, 0.0, 1.0]])
    T1 = np.eye(4)
    T2 = make_pose_np(axis_angle_to_matrix_np([0.0, np.deg2rad(1.5), 0.0]), [0.1, 0.0, 0.8])
    d1, pts1 = render_depth(Ks, T1, h, w)
    d2, pts2 = render_depth(Ks, T2, h, w)
    img1, img2 = texture(pts1), texture(pts2)
    T_2_1 = invert_np(T2) @ T1
    warped, valid = warp_rigid(_t(img2)[None, None], _t(d1)[None, None], _t(T_2_1)[None], _t(Ks)[None])
    # pixels whose reprojected depth matches view 2's depth are visible in both (no occlusion)
    flow, z2 = rigid_flow(_t(d1)[None, None], _t(T_2_1)[None], _t(Ks)[None])
    seen, _ = warp_by_flow(_t(d2)[None, None], flow)
    visible = (valid > 0) & ((seen - z2).abs() < 0.02 * z2) & (_t(d1)[None, None] > 0)
    assert visible.float().mean() > 0.6
    err = (warped - _t(img1)[None, None]).abs()[visible]
    no_warp = (_t(img2) - _t(img1)).abs()[visible[0, 0]]
    # only bilinear interpolation error of the texture is left (it shrinks with resolution; a
    # half-pixel convention slip would leave an error comparable to the unwarped difference)
    assert torch.median(err).item() < 0.004
    assert err.mean().item() < 0.15 * no_warp.mean().item()


def test_shape_errors():
    with pytest.raises(ValueError, match="warp_by_flow"):
        warp_by_flow(torch.zeros(1, 1, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="rigid_flow: T_s_t"):
        rigid_flow(torch.ones(1, 1, 4, 4), torch.eye(3)[None], torch.eye(3))


def test_non_finite_flow_gives_invalid_finite_samples_and_gradients():
    src = torch.rand(1, 3, 8, 10, requires_grad=True)
    flow = torch.zeros(1, 2, 8, 10)
    flow[0, 0, 2, 3] = float("nan")
    flow[0, 1, 4, 5] = float("inf")
    warped, valid = warp_by_flow(src, flow)
    assert torch.isfinite(warped).all()
    assert valid[0, 0, 2, 3] == 0 and valid[0, 0, 4, 5] == 0 and valid.sum() == 78
    warped.sum().backward()
    assert torch.isfinite(src.grad).all()
