"""Colour coding of depth (inverse-depth colour map, the node's DepthColorizer) and flow (Middlebury wheel)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from depth_pose_ros.utils.viz import DepthColorizer, color_wheel, colorize_depth, flow_to_color


def test_colorize_depth_near_is_brighter_and_unknown_is_black() -> None:
    depth = np.tile(np.linspace(2.0, 50.0, 64), (8, 1)).astype(np.float32)
    depth[0, 0] = 0.0
    depth[0, 1] = np.nan
    rgb = colorize_depth(depth)
    assert rgb.shape == (8, 64, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [0, 0, 0]
    brightness = rgb[4].astype(int).sum(-1)
    assert brightness[2] > brightness[32] > brightness[63]
    # torch input with batch/channel axes and a fixed range give the same image as numpy HxW input
    fixed = colorize_depth(torch.from_numpy(depth)[None, None], vmin=2.0, vmax=50.0)
    assert fixed.shape == (8, 64, 3)
    np.testing.assert_array_equal(fixed, colorize_depth(depth, vmin=2.0, vmax=50.0))
    with pytest.raises(ValueError, match="depth"):
        colorize_depth(np.zeros((2, 3, 4)))


def _magma_rgb() -> np.ndarray:
    """OpenCV's 256 MAGMA colours as RGB ints, darkest (0) to brightest (255)."""
    return cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_MAGMA)[:, 0, ::-1].astype(int)


def test_depth_colorizer_range_and_colours_follow_magma_in_inverse_depth() -> None:
    """DepthColorizer (the node's per-frame colour map; colorize_depth is it at stride 1) against expectations
    computed here, not by the class: the range is the 5th / 95th percentile of the valid depths of every 4th
    pixel, and each known pixel is the MAGMA colour of its inverse depth's position in [1/far, 1/near]."""
    depth = np.random.default_rng(0).uniform(1, 80, (48, 64)).astype(np.float32)
    depth[:4] = 0.0
    depth[4:8] = np.nan
    colorizer = DepthColorizer()
    near, far = colorizer.depth_range(depth)
    valid = depth[8:][::4, ::4]
    assert near == pytest.approx(np.percentile(valid, 5)) and far == pytest.approx(np.percentile(valid, 95))
    magma = _magma_rgb()
    d = depth[8:].astype(np.float64)
    t = np.clip((1.0 / d - 1.0 / far) / (1.0 / near - 1.0 / far), 0.0, 1.0)  # 0 at far .. 1 at near
    expected = np.round(t * 255).astype(int)
    window = np.clip(expected[..., None] + np.arange(-2, 3), 0, 255)  # 256 colours on 255 levels: +-2 entries
    for rgb in (colorizer(depth), colorize_depth(depth, vmin=near, vmax=far)):
        assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and not rgb[:8].any()  # unknown = black
        got = rgb[8:].astype(int)
        assert (np.abs(magma[window] - got[..., None, :]).max(-1) == 0).any(-1).all()
        assert (got[d < 0.999 * near] == magma[255]).all()  # nearer than the range: the brightest colour
        assert (got[d > 1.001 * far] == magma[0]).all()  # farther: the darkest
        assert (d < 0.999 * near).any() and (d > 1.001 * far).any()  # both ends are present


def test_color_wheel_has_55_saturated_hues() -> None:
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    assert wheel[0].tolist() == [255, 0, 0]  # starts at red
    assert (wheel.max(axis=1) == 255).all()  # every hue fully saturated in one channel


def test_flow_to_color_directions_and_magnitudes() -> None:
    flow = np.zeros((3, 4, 2), np.float32)
    flow[0, 0] = (4.0, 0.0)  # +x, at max magnitude
    flow[0, 1] = (-4.0, 0.0)  # -x
    flow[0, 2] = (2.0, 0.0)  # half magnitude: paler
    flow[0, 3] = (8.0, 0.0)  # beyond max_flow: darkened
    flow[1, 0] = np.nan
    rgb = flow_to_color(flow, max_flow=4.0).astype(int)
    assert rgb[2, 2].tolist() == [255, 255, 255]  # zero flow is white
    assert rgb[1, 0].tolist() == [0, 0, 0]  # non-finite is black
    r, g, b = rgb[0, 0]
    assert r == 255 and g < 30  # +x: red end of the wheel
    r, g, b = rgb[0, 1]
    assert b == 255 and r < 30  # -x: cyan/blue, the opposite side
    assert rgb[0, 2].min() > rgb[0, 0].min()  # half magnitude is less saturated
    assert rgb[0, 3].max() < 255  # out of range is darkened
    chw = flow_to_color(torch.from_numpy(flow).permute(2, 0, 1)[None], max_flow=4.0)
    assert np.array_equal(chw, rgb.astype(np.uint8))
    with pytest.raises(ValueError, match="flow"):
        flow_to_color(np.zeros((4, 4, 3)))
