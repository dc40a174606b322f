"""GLNet: epipolar loss, adaptive photometric loss, multi-view 3D structure consistency."""
from __future__ import annotations

import math

import pytest
import torch
from loss_scenes import SHIFT, TX, W, Z, constant_flow, intrinsics, plane_depth, shifted_pair, translation

from depth_pose_ros.geometry.camera import backproject, invert_intrinsics
from depth_pose_ros.geometry.se3 import pose_vec_to_mat, transform_points
from depth_pose_ros.geometry.warp import rigid_flow, warp_by_flow, warp_rigid
from depth_pose_ros.losses.glnet import (
    adaptive_photometric_loss,
    epipolar_error_map,
    epipolar_loss,
    multiview_structure_loss,
    robust_penalty,
)


def _random_scene(batch: int = 2):
    g = torch.Generator().manual_seed(0)
    depth = 3.0 + 5.0 * torch.rand(batch, 1, 12, 16, generator=g)
    T = pose_vec_to_mat(torch.tensor([[0.01, -0.02, 0.005]]).repeat(batch, 1),
                        torch.tensor([[0.2, 0.05, -0.4]]).repeat(batch, 1))
    return depth, T


def test_epipolar_loss_of_a_rigid_flow_is_zero():
    depth, T = _random_scene()
    K = intrinsics(2)
    flow, _ = rigid_flow(depth, T, K)
    assert epipolar_error_map(flow, T, K).max().item() < 1e-3
    assert epipolar_loss(flow, T, K).item() == pytest.approx(0.0, abs=1e-4)


def test_epipolar_loss_of_a_flow_off_the_epipolar_line():
    # Pure x translation: epipolar lines are the image rows, so a vertical flow error dy gives a
    # Sampson distance of dy / sqrt(2) (half of the error attributed to each image).
    K = intrinsics()
    T = translation(tx=TX)
    flow = constant_flow(SHIFT, 0.5)
    d = epipolar_error_map(flow, T, K)
    assert torch.allclose(d, torch.full_like(d, 0.5 / math.sqrt(2)), atol=1e-5)
    assert epipolar_loss(flow, T, K, robust="l2").item() == pytest.approx(0.125, abs=1e-5)
    assert epipolar_loss(flow, T, K).item() > 0.2
    # Flow along the rows is consistent whatever its length (depth is unknown to this loss).
    assert epipolar_loss(constant_flow(5.0, 0.0), T, K).item() == pytest.approx(0.0, abs=1e-6)


def test_epipolar_loss_gradients_reach_flow_and_pose():
    flow = constant_flow(SHIFT, 0.5).requires_grad_(True)
    vec = torch.tensor([[0.0, 0.0, 0.0]], requires_grad=True)
    T = pose_vec_to_mat(vec, torch.tensor([[TX, 0.0, 0.0]]))
    epipolar_loss(flow, T, intrinsics()).backward()
    assert flow.grad[:, 1].mean() > 0  # reducing dy reduces the loss
    assert vec.grad.abs().sum() > 0


def test_robust_penalty_values():
    d2 = torch.tensor([0.0, 9.0])
    assert robust_penalty(d2, "charbonnier", eps=0.1).tolist() == pytest.approx([0.0, math.sqrt(9.01) - 0.1])
    assert robust_penalty(d2, "cauchy", eps=1.0).tolist() == pytest.approx([0.0, math.log(10.0)])
    with pytest.raises(ValueError, match="robust"):
        robust_penalty(d2, "huber")


def test_adaptive_photometric_takes_the_better_warp_per_pixel():
    target, source = shifted_pair(0)
    K = intrinsics()
    rigid_good, rigid_valid = warp_rigid(source, plane_depth(Z), translation(tx=TX), K)
    flow_good, flow_valid = warp_by_flow(source, constant_flow(SHIFT, 0))
    half = W // 2
    rigid_warp = rigid_good.clone()
    rigid_warp[..., half:] += 0.5  # e.g. a moving object the rigid warp cannot explain
    flow_warp = flow_good.clone()
    flow_warp[..., :half] += 0.5  # e.g. a textureless area where the flow is wrong
    loss = adaptive_photometric_loss(target, rigid_warp, flow_warp, rigid_valid, flow_valid, alpha=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    rigid_only = adaptive_photometric_loss(
        target, rigid_warp, rigid_warp, rigid_valid, rigid_valid, alpha=0.0
    )
    assert rigid_only.item() > 0.2


def test_multiview_structure_consistent_is_zero_and_wrong_depth_is_exact():
    K = intrinsics()
    T = translation(tx=TX)
    flow = constant_flow(SHIFT, 0)
    zero = multiview_structure_loss(plane_depth(Z), plane_depth(Z), flow, T, K)
    assert zero.item() == pytest.approx(0.0, abs=1e-5)
    # Source depth 6 instead of 5: the matched point lies on the same ray, 6/5 as far -> residual 0.2 |X_s|_1.
    loss, per_pixel = multiview_structure_loss(plane_depth(Z), plane_depth(6.0), flow, T, K, return_map=True)
    moved = transform_points(T, backproject(plane_depth(Z), invert_intrinsics(K)))
    expected = 0.2 * moved.abs().sum(dim=1, keepdim=True)
    inside = torch.zeros_like(expected)
    inside[..., : W - SHIFT] = 1.0
    assert torch.allclose(per_pixel, expected * inside, atol=1e-5)
    assert loss.item() == pytest.approx((expected * inside).sum().item() / inside.sum().item(), rel=1e-5)
    rel = multiview_structure_loss(plane_depth(Z), plane_depth(6.0), flow, T, K, relative=True)
    assert 0 < rel.item() < loss.item()


def test_multiview_structure_gradients_reach_depths_and_pose():
    K = intrinsics()
    depth_t = plane_depth(Z).requires_grad_(True)
    depth_s = plane_depth(6.0).requires_grad_(True)
    vec = torch.zeros(1, 3, requires_grad=True)
    T = pose_vec_to_mat(vec, torch.tensor([[TX, 0.0, 0.0]]))
    multiview_structure_loss(depth_t, depth_s, constant_flow(SHIFT, 0), T, K).backward()
    assert depth_s.grad.sum() > 0 and depth_t.grad.sum() < 0 and vec.grad.abs().sum() > 0
