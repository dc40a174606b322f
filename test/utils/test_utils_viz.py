"""Colour coding of depth (inverse-depth colour map) and flow (Middlebury wheel)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.utils.viz import color_wheel, colorize_depth, flow_to_color


def test_colorize_depth_near_is_brighter_and_unknown_is_black() -> None:
    depth = np.tile(np.linspace(2.0, 50.0, 64), (8, 1)).astype(np.float32)
    depth[0, 0] = 0.0
    depth[0, 1] = np.nan
    rgb = colorize_depth(depth)
    assert rgb.shape == (8, 64, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [0, 0, 0]
    brightness = rgb[4].astype(int).sum(-1)
    assert brightness[2] > brightness[32] > brightness[63]
    # torch input with batch/channel axes and a fixed range give the same image
    fixed = colorize_depth(torch.from_numpy(depth)[None, None], vmin=2.0, vmax=50.0)
    assert fixed.shape == (8, 64, 3)
    with pytest.raises(ValueError, match="depth"):
        colorize_depth(np.zeros((2, 3, 4)))


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
