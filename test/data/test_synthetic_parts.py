"""Building blocks of the synthetic world: packed mip-mapped textures, road curve, intrinsics."""
from __future__ import annotations

import numpy as np
import pytest

from depth_pose_ros.data.synthetic_render import scaled_intrinsics
from depth_pose_ros.data.synthetic_scene import RoadCurve, RoadFrameGrid, yaw_matrix
from depth_pose_ros.data.synthetic_textures import PackedTextures, mip_levels, periodic_noise


def _ramp_textures() -> PackedTextures:
    # texture 0: 4x8 gray with value = 10 * row + column; texture 1: 2x2 constant 7 (a single level)
    t0 = (10.0 * np.arange(4)[:, None] + np.arange(8)[None, :]).astype(np.float32)
    t1 = np.full((2, 2), 7.0, np.float32)
    return PackedTextures([(t0, 0.5), (t1, 1.0)])


def test_mip_levels_are_2x2_means() -> None:
    img = np.arange(16, dtype=np.float32).reshape(4, 4)
    levels = mip_levels(img)
    assert [lv.shape for lv in levels] == [(4, 4, 1), (2, 2, 1)]  # stops below 4 texels
    np.testing.assert_allclose(levels[1][..., 0], [[2.5, 4.5], [10.5, 12.5]])


def test_packed_sampling_hits_texel_centres_and_wraps() -> None:
    packed = _ramp_textures()
    # texel (row 2, col 5) has its centre at surface coords ((5 + 0.5) * 0.5, (2 + 0.5) * 0.5)
    u, v = np.array([2.75, 2.75 + 4.0, 2.75 - 8.0]), np.array([1.25, 1.25, 1.25 + 2.0])  # +-periods
    out = packed.sample(0, u, v)
    np.testing.assert_allclose(out[:, 0], 25.0, atol=0.05)
    # half way between two texels along u: bilinear mean
    np.testing.assert_allclose(packed.sample(0, np.array([3.0]), np.array([1.25]))[0, 0], 25.5, atol=0.05)
    # across the wrap seam: between the last column (7) and the first (0) of row 1
    np.testing.assert_allclose(packed.sample(0, np.array([4.0]), np.array([0.75]))[0, 0], 13.5, atol=0.05)
    # per-point texture index
    mixed = packed.sample(np.array([0, 1]), np.array([2.75, 0.3]), np.array([1.25, 0.9]))
    np.testing.assert_allclose(mixed[:, 0], [25.0, 7.0], atol=0.05)


def test_packed_sampling_blends_mip_levels() -> None:
    packed = _ramp_textures()
    # at the centre of level-1 texel (0, 0) (level-0 texels rows 0-1, cols 0-1): level 1 = 5.5
    u, v = np.array([0.5]), np.array([0.5])
    lvl0 = packed.sample(0, u, v, lod=np.array([0.0]))[0, 0]
    lvl1 = packed.sample(0, u, v, lod=np.array([1.0]))[0, 0]
    half = packed.sample(0, u, v, lod=np.array([0.5]))[0, 0]
    assert lvl1 == pytest.approx(5.5, abs=0.05)
    assert half == pytest.approx(0.5 * (lvl0 + lvl1), abs=1e-4)
    # lod beyond the pyramid clips to its top; a single-level texture ignores lod
    assert packed.sample(0, u, v, lod=np.array([9.0]))[0, 0] == pytest.approx(lvl1, abs=1e-5)
    assert packed.sample(1, u, v, lod=np.array([3.0]))[0, 0] == pytest.approx(7.0, abs=1e-5)


def test_periodic_noise_tiles_seamlessly() -> None:
    n = periodic_noise((64, 96), np.random.default_rng(0), 2, 32)
    assert n.shape == (64, 96) and abs(n.mean()) < 1e-5 and n.std() == pytest.approx(1.0, rel=1e-4)
    # the jump across the wrap seam is like any other neighbour difference
    seam = np.abs(n[:, 0] - n[:, -1]).mean()
    inner = np.abs(np.diff(n, axis=1)).mean()
    assert seam < 2.0 * inner


def test_road_curve_heading_and_positions() -> None:
    road = RoadCurve(np.array([[20.0, 60.0, np.pi / 4]]), -10.0, 200.0)
    assert road.heading(0.0) == 0.0 and road.heading(150.0) == pytest.approx(np.pi / 4)
    # heading is the integral of the curvature (trapezoid on a fine grid)
    s = np.linspace(-10, 200, 20001)
    k = road.curvature(s)
    integral = np.concatenate([[0], np.cumsum(0.5 * (k[1:] + k[:-1]) * np.diff(s))])
    np.testing.assert_allclose(road.heading(s), integral, atol=1e-6)
    assert k.max() == pytest.approx(2 * (np.pi / 4) / 60)  # raised cosine peak
    # positions: unit speed along the heading; straight before the turn
    p = road.position(s)
    step = np.linalg.norm(np.diff(p, axis=0), axis=1)
    np.testing.assert_allclose(step, np.diff(s), rtol=1e-6)
    np.testing.assert_allclose(road.position(np.array([10.0])), [[0.0, 10.0]], atol=1e-9)
    # point(s, d) goes to the right (+x at heading 0); project inverts it
    np.testing.assert_allclose(road.point(np.array([10.0]), np.array([2.0])), [[2.0, 10.0]], atol=1e-9)
    ss, dd = np.array([30.0, 55.0, 120.0]), np.array([-5.0, 3.0, 12.0])
    s_back, d_back = road.project(road.point(ss, dd))
    np.testing.assert_allclose(s_back, ss, atol=1e-6)
    np.testing.assert_allclose(d_back, dd, atol=1e-6)
    with pytest.raises(ValueError, match="arc length"):
        road.position(np.array([500.0]))


def test_road_frame_grid_interpolates_road_coordinates() -> None:
    road = RoadCurve(np.array([[20.0, 80.0, -np.pi / 3]]), -10.0, 250.0)
    grid = RoadFrameGrid(road, 0.0, 200.0)
    s, d = np.array([15.0, 60.0, 140.0]), np.array([1.75, -4.0, 7.0])
    xz = road.point(s, d)
    gx = (xz[:, 0] - grid.origin[0]) / grid.res
    gz = (xz[:, 1] - grid.origin[1]) / grid.res
    # bilinear interpolation by hand
    x0, z0 = np.floor(gx).astype(int), np.floor(gz).astype(int)
    fx, fz = gx - x0, gz - z0
    g = grid.grid
    val = ((1 - fx) * (1 - fz))[:, None] * g[z0, x0] + (fx * (1 - fz))[:, None] * g[z0, x0 + 1] \
        + ((1 - fx) * fz)[:, None] * g[z0 + 1, x0] + (fx * fz)[:, None] * g[z0 + 1, x0 + 1]
    np.testing.assert_allclose(val[:, 0], s, atol=0.01)
    np.testing.assert_allclose(val[:, 1], d, atol=0.01)


def test_yaw_matrix_turns_right_and_intrinsics_scale() -> None:
    R = yaw_matrix(np.pi / 2)
    np.testing.assert_allclose(R @ [0, 0, 1], [1, 0, 0], atol=1e-12)  # forward becomes +x (right)
    np.testing.assert_allclose(R @ [0, 1, 0], [0, 1, 0])  # down stays down
    K = scaled_intrinsics(370, 1226, 81.5)
    assert K[0, 0] == pytest.approx(1226 / (2 * np.tan(np.deg2rad(81.5) / 2)))
    assert K[0, 0] / 1226 == pytest.approx(707.09 / 1226, rel=0.01)  # KITTI's fx / W
    with pytest.raises(ValueError, match="hfov_deg"):
        scaled_intrinsics(10, 10, 5.0)
