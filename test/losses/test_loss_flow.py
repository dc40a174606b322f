"""Flow losses: occlusion-masked photometric warp loss, occlusion masks and fb-consistency."""
from __future__ import annotations

import pytest
import torch
from loss_scenes import SHIFT, W, constant_flow, shifted_pair

from depth_pose_ros.losses.flow_losses import fb_consistency_loss, flow_occlusion_mask, flow_photometric_loss


def test_exact_flow_gives_zero_photometric_loss():
    target, source = shifted_pair(0, batch=2)
    flow = constant_flow(SHIFT, 0, batch=2)
    assert flow_photometric_loss(target, source, flow, alpha=0.0).item() == pytest.approx(0.0, abs=1e-6)
    # With SSIM, the 3x3 window of the last valid column reaches the border-clamped (wrong) samples;
    # one column further in, the loss is exactly 0 too.
    interior = torch.zeros(2, 1, target.shape[-2], W)
    interior[..., : W - SHIFT - 1] = 1.0
    loss = flow_photometric_loss(target, source, flow, non_occluded=interior)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_zero_flow_gives_the_plain_l1_difference():
    target, source = shifted_pair(1)
    loss = flow_photometric_loss(target, source, constant_flow(0, 0), alpha=0.0)
    assert loss.item() == pytest.approx((target - source).abs().mean().item(), abs=1e-6)


def test_pixels_leaving_the_source_are_excluded():
    target, source = shifted_pair(2)
    _, per_pixel = flow_photometric_loss(target, source, constant_flow(SHIFT, 0), return_map=True)
    # Columns x >= W - SHIFT sample outside the source: masked to 0 whatever their error.
    assert torch.all(per_pixel[..., W - SHIFT:] == 0)


def test_occlusion_mask_marks_pixels_without_correspondence():
    fw, bw = constant_flow(SHIFT, 0), constant_flow(-SHIFT, 0)
    for method in ("fb", "range", "both"):
        mask = flow_occlusion_mask(fw, bw, method=method)
        assert torch.all(mask[..., : W - SHIFT] == 1), method
        assert torch.all(mask[..., W - SHIFT:] == 0), method  # would land outside image s
    soft = flow_occlusion_mask(fw, bw, method="range", range_threshold=None)
    assert torch.all((soft >= 0) & (soft <= 1))
    # An inconsistent backward flow fails the fb test (|residual|^2 = 9 > 0.01 * 13 + 0.5).
    bad = flow_occlusion_mask(fw, constant_flow(1, 0), method="fb")
    assert bad.sum() == 0
    with pytest.raises(ValueError, match="method"):
        flow_occlusion_mask(fw, bw, method="nope")


def test_occlusion_mask_is_applied_to_the_photometric_loss():
    target, source = shifted_pair(3)
    mask = torch.zeros_like(target[:, :1])
    assert flow_photometric_loss(target, source, constant_flow(0, 0), non_occluded=mask).item() == 0.0


def test_fb_consistency_of_exact_inverse_flows_is_zero():
    assert fb_consistency_loss(constant_flow(2, 1), constant_flow(-2, -1)).item() == pytest.approx(0.0)


def test_fb_consistency_of_a_known_mismatch():
    # Residual (2, 1) + (-1, -1) = (1, 0): L1 = 1 at every pixel that stays inside.
    loss, per_pixel = fb_consistency_loss(constant_flow(2, 1), constant_flow(-1, -1), return_map=True)
    assert loss.item() == pytest.approx(1.0, abs=1e-6)
    assert torch.all(per_pixel[..., -1, :] == 0)  # y + 1 leaves the image on the last row


def test_fb_consistency_gradients_reach_both_flows():
    fw = constant_flow(1.5, 0.5).requires_grad_(True)
    bw = constant_flow(-1.0, -0.25).requires_grad_(True)
    fb_consistency_loss(fw, bw).backward()
    assert fw.grad.abs().sum() > 0 and bw.grad.abs().sum() > 0


def test_flow_losses_reject_bad_shapes():
    with pytest.raises(ValueError, match="flow_t_s"):
        fb_consistency_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="source"):
        flow_photometric_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5), torch.zeros(1, 2, 4, 4))


def test_flow_distillation_is_zero_on_the_teacher_and_ignores_where_it_fails():
    import torch

    from depth_pose_ros.losses import flow_distillation_loss, teacher_confidence

    torch.manual_seed(0)
    b, h, w = 2, 24, 32
    teacher = torch.zeros(b, 2, h, w)
    teacher[:, 0] = 1.5  # a uniform shift: the backward flow is its exact inverse
    back = -teacher
    conf = teacher_confidence(teacher, back)
    assert conf.shape == (b, 1, h, w)
    assert conf[..., :, : w - 2].min() > 0.99  # consistent and inside image s
    assert conf[..., :, -1].max() == 0.0  # matches leaving the image carry no teaching signal
    student = teacher.clone().requires_grad_(True)
    at_teacher = flow_distillation_loss(student, teacher, conf)
    off = flow_distillation_loss(teacher + 1.0, teacher, conf)
    assert float(off) > float(at_teacher) + 0.5
    # a teacher that fails its own fb check on half the image teaches nothing there
    bad_back = back.clone()
    bad_back[..., : h // 2, :] = 5.0
    conf2 = teacher_confidence(teacher, bad_back)
    assert conf2[..., : h // 2 - 1, :].max() == 0.0
    student2 = teacher.clone()
    student2[..., : h // 2 - 1, :] += 10.0  # wrong only where the teacher failed
    assert float(flow_distillation_loss(student2, teacher, conf2)) == pytest.approx(float(at_teacher), abs=1e-6)
    loss = flow_distillation_loss(teacher + 0.3 + 0.0 * student, teacher, conf)
    (loss + flow_distillation_loss(student + 0.3, teacher, conf)).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
