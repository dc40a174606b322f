"""Depth-triangulation, depth-reprojection (SC-SfMLearner) and rigid-vs-optical flow consistency."""
from __future__ import annotations

import math

import pytest
import torch
from loss_scenes import H, W, Z, intrinsics, plane_depth, translation

from depth_pose_ros.losses.geometric import (
    depth_reprojection_loss,
    depth_triangulation_loss,
    rigid_flow_consistency_loss,
    sample_at_pixels,
)


def test_sample_at_pixels_is_bilinear_with_pixel_centres_at_integers():
    ramp = torch.arange(W, dtype=torch.float32).view(1, 1, 1, W).expand(2, 1, H, W)
    pix = torch.tensor([[[0.0, 0.0], [3.5, 2.0], [W - 1.0, H - 1.0], [W + 0.5, 1.0]]]).repeat(2, 1, 1)
    values, inside = sample_at_pixels(ramp, pix)
    assert values.shape == (2, 1, 4)
    assert values[0, 0, :3].tolist() == pytest.approx([0.0, 3.5, W - 1.0])
    assert inside[0].tolist() == [1.0, 1.0, 1.0, 0.0]


def _tri_points(batch: int = 1):
    pix = torch.tensor([[[2.0, 3.0], [5.0, 7.0], [10.0, 1.0], [40.0, 2.0]]]).repeat(batch, 1, 1)
    return pix


def test_triangulation_loss_is_zero_for_consistent_scaled_depths():
    depth = plane_depth(Z, batch=2)
    pix = _tri_points(2)
    tri = torch.full((2, 4), Z / 4.0)  # unit-translation depths, scale 4
    assert depth_triangulation_loss(depth, pix, tri, scale=4.0).item() == pytest.approx(0.0, abs=1e-6)
    per_item = torch.tensor([4.0, 4.0])
    rel = depth_triangulation_loss(depth, pix, tri, scale=per_item, kind="relative")
    assert rel.item() == pytest.approx(0.0, abs=1e-6)


def test_triangulation_loss_of_a_factor_two_error():
    depth = plane_depth(Z)
    pix = _tri_points()
    tri = torch.full((1, 4), 2.0 * Z)
    loss, per_point = depth_triangulation_loss(depth, pix, tri, return_map=True)
    assert loss.item() == pytest.approx(math.log(2.0), abs=1e-6)
    assert per_point[0, 3].item() == 0.0  # the off-image point is dropped
    assert depth_triangulation_loss(depth, pix, tri, kind="relative").item() == pytest.approx(1 / 3, abs=1e-6)


def test_triangulation_loss_respects_the_inlier_mask_and_gradients():
    depth = plane_depth(Z).requires_grad_(True)
    pix = _tri_points()
    tri = torch.tensor([[Z, 2 * Z, Z, Z]])
    valid = torch.tensor([[1.0, 0.0, 1.0, 1.0]])  # the outlier is not an inlier
    loss = depth_triangulation_loss(depth, pix, tri, valid=valid)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    depth_triangulation_loss(depth, pix, tri).backward()
    assert depth.grad[0, 0, 7, 5] < 0  # raising the depth at the outlier pixel reduces the loss
    with pytest.raises(ValueError, match="kind"):
        depth_triangulation_loss(depth, pix, tri, kind="huber")
    with pytest.raises(ValueError, match="tri_depth"):
        depth_triangulation_loss(depth, pix, tri[:, :2])


def test_depth_reprojection_consistent_depths_give_zero():
    # Camera moves forward 1 m: the plane at Z is at Z - 1 in the source camera.
    T = translation(tz=-1.0, batch=2)
    loss = depth_reprojection_loss(plane_depth(Z, 2), plane_depth(Z - 1.0, 2), T, intrinsics(2))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_depth_reprojection_wrong_source_depth_gives_normalised_difference():
    T = translation(tz=-1.0)
    loss, diff = depth_reprojection_loss(plane_depth(Z), plane_depth(Z), T, intrinsics(), return_map=True)
    assert loss.item() == pytest.approx(1.0 / (2 * Z - 1), abs=1e-6)  # |4 - 5| / (4 + 5)
    # The border pixels project outside image s (the view zooms in by 5/4) and are masked.
    assert diff[0, 0, 0, 0].item() == 0.0 and diff[0, 0, H // 2, W // 2].item() > 0


def test_depth_reprojection_rejects_bad_pose():
    with pytest.raises(ValueError, match="T_s_t"):
        depth_reprojection_loss(plane_depth(), plane_depth(), torch.eye(4), intrinsics())


def test_rigid_flow_consistency_hand_values():
    rigid = torch.zeros(1, 2, 3, 3)
    optical = torch.zeros(1, 2, 3, 3)
    optical[:, 0, 0, 0] = 2.0  # one pixel disagrees by (2, -1)
    optical[:, 1, 0, 0] = -1.0
    assert rigid_flow_consistency_loss(rigid, optical).item() == pytest.approx(3.0 / 9.0)
    mask = torch.ones(1, 1, 3, 3)
    mask[..., 0, 0] = 0.0  # e.g. a moving object excluded by the rigid mask
    assert rigid_flow_consistency_loss(rigid, optical, mask).item() == 0.0
