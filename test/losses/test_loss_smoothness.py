"""Edge-aware smoothness of inverse depth and flow on hand-computable fields."""
from __future__ import annotations

import math

import pytest
import torch

from depth_pose_ros.losses.smoothness import edge_aware_smoothness, flow_smoothness


def _ramp_x(h: int, w: int) -> torch.Tensor:
    return torch.arange(w, dtype=torch.float32).view(1, 1, 1, w).expand(1, 1, h, w).clone()


def test_constant_disparity_has_zero_smoothness():
    disp = torch.full((2, 1, 6, 7), 0.3)
    image = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    assert edge_aware_smoothness(disp, image).item() == pytest.approx(0.0, abs=1e-7)


def test_disparity_ramp_on_flat_image_gives_slope_over_mean():
    # d = 1 + x on a 5-wide image: mean 3, normalised slope 1/3 in x, 0 in y.
    disp = 1.0 + _ramp_x(4, 5)
    image = torch.full((1, 3, 4, 5), 0.5)
    assert edge_aware_smoothness(disp, image).item() == pytest.approx(1.0 / 3.0, abs=1e-6)
    # Without normalisation the slope itself.
    assert edge_aware_smoothness(disp, image, normalise=False).item() == pytest.approx(1.0, abs=1e-6)
    # Scale invariance of the normalised loss.
    assert edge_aware_smoothness(7.0 * disp, image).item() == pytest.approx(1.0 / 3.0, abs=1e-6)


def test_image_edge_downweights_the_disparity_jump():
    # A disparity step at the same column as an image step of 0.5: weight exp(-0.5) on that column.
    disp = torch.ones(1, 1, 3, 4)
    disp[..., 2:] = 3.0
    image = torch.zeros(1, 3, 3, 4)
    image[..., 2:] = 0.5
    loss = edge_aware_smoothness(disp, image, normalise=False)
    # x-differences: 3 per row, one of them is 2 * exp(-0.5); mean over 3x3 entries.
    expected = (3 * 2.0 * math.exp(-0.5)) / 9.0
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss_map = edge_aware_smoothness(disp, image, normalise=False, return_map=True)[1]
    assert loss_map.shape == (1, 1, 3, 4)
    assert loss_map[0, 0, 0, 1].item() == pytest.approx(2.0 * math.exp(-0.5), abs=1e-6)


def test_smoothness_mask_restricts_the_region():
    disp = torch.ones(1, 1, 3, 4)
    disp[..., 2:] = 3.0
    image = torch.zeros(1, 3, 3, 4)
    mask = torch.ones(1, 1, 3, 4)
    mask[..., 2] = 0.0  # the jump's right pixel is outside the region
    assert edge_aware_smoothness(disp, image, normalise=False, mask=mask).item() == pytest.approx(0.0)


def test_flow_first_order_ramp_and_second_order_zero():
    a = 0.5
    flow = torch.cat([a * _ramp_x(5, 6), torch.zeros(1, 1, 5, 6)], dim=1)
    image = torch.full((1, 3, 5, 6), 0.2)
    # First order: |d_x u| = a, |d_x v| = 0, y terms 0 -> mean over components a / 2.
    assert flow_smoothness(flow, image, order=1).item() == pytest.approx(a / 2, abs=1e-6)
    # Second order: a linear field has no curvature.
    assert flow_smoothness(flow, image, order=2).item() == pytest.approx(0.0, abs=1e-6)


def test_flow_second_order_of_a_parabola():
    # u = x^2: second difference is 2 everywhere; v = 0 -> mean over components 1.
    x = _ramp_x(4, 6)
    flow = torch.cat([x * x, torch.zeros_like(x)], dim=1)
    image = torch.zeros(1, 1, 4, 6)
    assert flow_smoothness(flow, image, order=2).item() == pytest.approx(1.0, abs=1e-6)


def test_smoothness_rejects_bad_inputs():
    with pytest.raises(ValueError, match="disp"):
        edge_aware_smoothness(torch.ones(1, 2, 4, 4), torch.ones(1, 3, 4, 4))
    with pytest.raises(ValueError, match="image"):
        edge_aware_smoothness(torch.ones(1, 1, 4, 4), torch.ones(1, 3, 4, 5))
    with pytest.raises(ValueError, match="order"):
        flow_smoothness(torch.ones(1, 2, 4, 4), torch.ones(1, 3, 4, 4), order=3)
