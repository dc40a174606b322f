"""vid2depth ICP loss: rigid step, nearest-neighbour ICP, projective ICP on depth maps, the loss."""
from __future__ import annotations

import pytest
import torch
from loss_scenes import H, W, Z, corridor_intrinsics, intrinsics, plane_depth, render_corridor, translation

from depth_pose_ros.geometry.se3 import matrix_to_axis_angle, pose_vec_to_mat
from depth_pose_ros.losses.icp import icp, icp_depth_maps, icp_loss, rigid_step, view_overlap_mask


def _cloud(n: int = 300, batch: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, n, 3, generator=g) * 2.0 + torch.tensor([-1.0, -1.0, 4.0])


def _apply(T: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    return (T[:, :3, :3] @ pts.transpose(1, 2) + T[:, :3, 3:]).transpose(1, 2)


def _bumpy_depth(batch: int = 1) -> torch.Tensor:
    ys = torch.linspace(-1, 1, H).view(1, 1, H, 1)
    xs = torch.linspace(-1, 1, W).view(1, 1, 1, W)
    return (Z + 0.8 * torch.sin(3 * xs) * torch.cos(2 * ys) + 0.5 * xs).expand(batch, 1, H, W).clone()


def test_rigid_step_recovers_a_translation_exactly():
    a = _cloud()
    T = rigid_step(a, a + torch.tensor([0.1, -0.2, 0.3]), torch.ones(2, 300))
    assert torch.allclose(T, translation(0.1, -0.2, 0.3, batch=2), atol=1e-5)


def test_icp_of_identical_clouds_is_identity_with_zero_residual():
    a = _cloud()
    res = icp(a, a)
    assert torch.allclose(res.transform, torch.eye(4).expand(2, 4, 4), atol=1e-6)
    assert res.residual.abs().max() < 1e-6
    assert res.valid.sum() == 600


def test_icp_recovers_a_known_translation_and_rotation():
    a = _cloud()
    shift = translation(0.03, -0.02, 0.05, batch=2)
    res = icp(a, _apply(shift, a))
    assert torch.allclose(res.transform, shift, atol=1e-5)
    rot, trans = torch.tensor([[0.02, -0.03, 0.01]]), torch.tensor([[0.04, 0.0, -0.03]])
    T = pose_vec_to_mat(rot.repeat(2, 1), trans.repeat(2, 1))
    res = icp(a, _apply(T, a), iterations=8)
    assert torch.allclose(res.transform, T, atol=1e-4)


def test_icp_ignores_invalid_points():
    a = _cloud()
    shift = translation(0.03, -0.02, 0.05, batch=2)
    b = _apply(shift, a)
    b[:, :50] = torch.rand(2, 50, 3) * 2.0 + torch.tensor([-1.0, -1.0, 4.0])  # garbage targets ...
    tv = torch.ones(2, 300)
    tv[:, :50] = 0.0  # ... flagged invalid
    sv = torch.ones(2, 300)
    sv[:, :50] = 0.0  # their sources have no partner any more
    res = icp(a, b, source_valid=sv, target_valid=tv)
    assert torch.allclose(res.transform, shift, atol=1e-5)
    assert res.valid[:, :50].sum() == 0 and res.valid[:, 50:].sum() == 500


def test_icp_max_distance_drops_outlier_pairs():
    a = _cloud()
    shift = translation(0.03, -0.02, 0.05, batch=2)
    b = _apply(shift, a)
    a[:, :20] += 20.0  # source points far from everything in the target
    res = icp(a, b, max_distance=0.5)
    assert torch.allclose(res.transform, shift, atol=1e-5)
    assert res.valid[:, :20].sum() == 0


def test_projective_icp_recovers_forward_motion_of_a_plane():
    # Camera moved 0.2 m forward; ego-motion predicted as identity. ICP must find the missing motion.
    res = icp_depth_maps(plane_depth(Z), plane_depth(Z - 0.2), translation(), intrinsics(), iterations=8)
    assert torch.allclose(res.transform, translation(tz=-0.2), atol=1e-4)


def test_view_overlap_mask():
    assert torch.all(view_overlap_mask(plane_depth(), translation(), intrinsics()) == 1)
    # Moving the points 0.5 m to +x shifts them 2 px (f=20, Z=5): the last two columns leave the image.
    mask = view_overlap_mask(plane_depth(), translation(tx=0.5), intrinsics())
    assert torch.all(mask[..., : W - 2] == 1) and torch.all(mask[..., W - 2:] == 0)


@pytest.mark.parametrize("association", ["projective", "nearest"])
def test_icp_loss_is_zero_for_consistent_depths_and_pose(association):
    depth_t = _bumpy_depth()
    loss = icp_loss(depth_t, depth_t, translation(), intrinsics(), association=association,
                    generator=torch.Generator().manual_seed(0))
    assert loss.item() < 1e-5


def test_icp_loss_measures_the_missing_motion_and_its_gradient_points_to_it():
    K = intrinsics()
    depth_t, depth_s = plane_depth(Z), plane_depth(Z - 0.2)
    tz = torch.zeros(1, requires_grad=True)
    T = translation().clone()
    T = T + torch.zeros(1, 4, 4).index_put((torch.tensor([0]), torch.tensor([2]), torch.tensor([3])), tz)
    loss, per_pixel = icp_loss(depth_t, depth_s, T, K, return_map=True)
    # |T' - I| holds |-0.2| in one of 12 entries; the residual after ICP is ~0.
    assert loss.item() == pytest.approx(0.2 / 12, abs=1e-3)
    assert per_pixel.shape == (1, 1, H, W)
    loss.backward()
    assert tz.grad.item() > 0  # moving the predicted tz towards -0.2 lowers the loss
    better = icp_loss(depth_t, depth_s, translation(tz=-0.1), K)
    assert better.item() < loss.item()


def test_icp_loss_gradients_reach_both_depths():
    depth_t = _bumpy_depth().requires_grad_(True)
    depth_s = (_bumpy_depth() + 0.1).requires_grad_(True)
    loss = icp_loss(depth_t, depth_s, translation(), intrinsics())
    loss.backward()
    assert torch.isfinite(depth_t.grad).all() and depth_t.grad.abs().sum() > 0
    assert torch.isfinite(depth_s.grad).all() and depth_s.grad.abs().sum() > 0


def test_icp_loss_rejects_bad_arguments():
    with pytest.raises(ValueError, match="association"):
        icp_loss(plane_depth(), plane_depth(), translation(), intrinsics(), association="kdtree")
    with pytest.raises(ValueError, match="K"):
        icp_loss(plane_depth(), plane_depth(), translation(), torch.eye(4)[None])


_TRUE_ROT = torch.tensor([[0.01, -0.02, 0.005]])
_TRUE_TRANS = torch.tensor([[0.1, -0.05, -0.4]])


def _corridor_pair(h: int = 32, w: int = 48):
    """Depths of the corridor from two cameras with T_s_t = (_TRUE_ROT, _TRUE_TRANS)."""
    K = corridor_intrinsics(h, w)
    T_s_t = pose_vec_to_mat(_TRUE_ROT, _TRUE_TRANS)
    return render_corridor(torch.eye(4)[None], K, h, w), render_corridor(T_s_t, K, h, w), K, T_s_t


def test_projective_icp_recovers_a_six_dof_motion_in_a_corridor():
    # From a zero-motion guess. The remaining error (~2e-4 rad, ~1 mm here) is the discretisation of
    # the depth maps (bilinear samples across plane corners) and shrinks with resolution.
    depth_t, depth_s, K, T_s_t = _corridor_pair(48, 64)
    res = icp_depth_maps(depth_t, depth_s, torch.eye(4)[None], K, iterations=6)
    assert matrix_to_axis_angle(res.transform[:, :3, :3]) == pytest.approx(_TRUE_ROT, abs=1e-3)
    assert res.transform[:, :3, 3] == pytest.approx(_TRUE_TRANS, abs=5e-3)
    # At the true motion ICP finds (almost) nothing left to correct.
    res = icp_depth_maps(depth_t, depth_s, T_s_t, K)
    assert (res.transform - torch.eye(4)).abs().max() < 2e-3


def test_icp_loss_gradient_descent_on_the_pose_converges_to_the_true_motion():
    depth_t, depth_s, K, _ = _corridor_pair()
    rot = (_TRUE_ROT + torch.tensor([[-0.02, 0.02, -0.02]])).requires_grad_(True)  # ~2 degrees off
    trans = (_TRUE_TRANS + torch.tensor([[-0.15, 0.15, -0.15]])).requires_grad_(True)
    opt = torch.optim.Adam([rot, trans], lr=0.005)
    for _ in range(60):
        loss = icp_loss(depth_t, depth_s, pose_vec_to_mat(rot, trans), K, iterations=2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert (rot.detach() - _TRUE_ROT).abs().max() < 3e-3
    assert (trans.detach() - _TRUE_TRANS).abs().max() < 0.02


def test_depth_normals_of_a_plane_point_along_the_axis():
    from depth_pose_ros.geometry.camera import backproject, invert_intrinsics
    from depth_pose_ros.losses.icp import depth_normals

    n = depth_normals(backproject(plane_depth(Z), invert_intrinsics(intrinsics())))
    assert torch.allclose(n[:, 2].abs(), torch.ones(1, H, W), atol=1e-5)
