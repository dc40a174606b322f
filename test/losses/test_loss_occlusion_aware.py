"""Fang et al. eq. 2-3 (bidirectional softmax weights) and eq. 5-7 (cross-weighted loss) on hand examples."""
from __future__ import annotations

import math

import pytest
import torch

from depth_pose_ros.losses.occlusion_aware import (
    adaptive_cross_weighted_loss,
    bidirectional_softmax_weights,
    hard_softmax_weight,
    occlusion_aware_photometric_loss,
)


def _px(*values: float) -> torch.Tensor:
    """A 1x1x1xN map holding the given per-pixel values."""
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def test_softmax_weights_equal_errors_give_one():
    w_bo, w_fo = bidirectional_softmax_weights(_px(0.3, 0.0), _px(0.3, 0.0))
    assert torch.allclose(w_bo, torch.ones(1, 1, 1, 2)) and torch.allclose(w_fo, torch.ones(1, 1, 1, 2))


def test_softmax_weights_hand_example():
    # L_bo = 0.2, L_fo = 0.1: softmax_bo = e^0.2 / (e^0.2 + e^0.1) = 0.524979.
    s_bo = math.exp(0.2) / (math.exp(0.2) + math.exp(0.1))
    assert s_bo == pytest.approx(0.524979, abs=1e-6)
    w_bo, w_fo = bidirectional_softmax_weights(_px(0.2), _px(0.1))
    assert w_bo.item() == pytest.approx(math.exp(1 - s_bo - 0.5), abs=1e-6)  # 0.975328
    assert w_fo.item() == pytest.approx(math.exp(1 - (1 - s_bo) - 0.5), abs=1e-6)  # 1.025293
    assert w_bo.item() < 1.0 < w_fo.item()  # the worse direction is down-weighted


def test_softmax_weights_saturate_for_one_sided_occlusion():
    w_bo, w_fo = bidirectional_softmax_weights(_px(50.0), _px(0.0))
    assert w_bo.item() == pytest.approx(math.exp(-0.5), abs=1e-6)
    assert w_fo.item() == pytest.approx(math.exp(0.5), abs=1e-6)


def test_occlusion_aware_photometric_loss_eq2():
    l_bo, l_fo = _px(0.2, 0.4), _px(0.1, 0.4)
    m_bo, m_fo = _px(1.0, 0.5), _px(1.0, 0.0)
    s = math.exp(0.2) / (math.exp(0.2) + math.exp(0.1))
    pix0 = math.exp(0.5 - s) * 0.2 + math.exp(s - 0.5) * 0.1
    pix1 = 1.0 * 0.5 * 0.4 + 1.0 * 0.0 * 0.4
    loss, per_pixel = occlusion_aware_photometric_loss(l_bo, l_fo, m_bo, m_fo, return_map=True)
    assert per_pixel[0, 0, 0, 0].item() == pytest.approx(pix0, abs=1e-6)
    assert per_pixel[0, 0, 0, 1].item() == pytest.approx(pix1, abs=1e-6)
    assert loss.item() == pytest.approx((pix0 + pix1) / 2, abs=1e-6)


def test_occlusion_aware_weights_are_detached_by_default():
    l_bo = _px(0.2).requires_grad_(True)
    l_fo = _px(0.1).requires_grad_(True)
    occlusion_aware_photometric_loss(l_bo, l_fo).backward()
    s = math.exp(0.2) / (math.exp(0.2) + math.exp(0.1))
    assert l_bo.grad.item() == pytest.approx(math.exp(0.5 - s), abs=1e-6)  # d/dL_bo of w_bo * L_bo


def test_hard_softmax_weight_threshold():
    # Keep task a unless L_a - L_b > ln(0.72 / 0.28) = 0.9445.
    la = _px(1.5, 1.2, 0.3)
    lb = _px(0.3, 0.3, 1.5)
    w = hard_softmax_weight(la, lb)
    assert w.flatten().tolist() == [0.0, 1.0, 1.0]
    # A temperature of 0.1 tightens the margin to 0.094.
    assert hard_softmax_weight(_px(0.5), _px(0.3), temperature=0.1).item() == 0.0
    with pytest.raises(ValueError, match="threshold"):
        hard_softmax_weight(la, lb, threshold=1.5)


def test_cross_weighted_loss_eq7_hand_example():
    # Pixel 0: everything comparable -> all weights 1.
    # Pixel 1: flow photometric error far larger (moving-object miss of flow) -> w_o = 0.
    # Pixel 2: rigid epipolar error far larger than the flow's -> w_Ed = 0 (kills the flow term).
    l_o = _px(0.2, 2.0, 0.2)
    l_d = _px(0.3, 0.1, 0.3)
    e_o = _px(1.0, 1.0, 0.5)
    e_d = _px(1.5, 1.0, 5.0)
    lam_ed, lam_eo = 0.002, 0.02  # the paper's defaults: L_Ed joins the flow term, L_Eo the rigid term
    expected = [
        (0.2 + lam_ed * 1.5) + (0.3 + lam_eo * 1.0),
        0.0 + (0.1 + lam_eo * 1.0),
        0.0 + (0.3 + lam_eo * 0.5),
    ]
    loss, per_pixel = adaptive_cross_weighted_loss(l_o, l_d, e_o, e_d, return_map=True)
    assert per_pixel.flatten().tolist() == pytest.approx(expected, abs=1e-6)
    assert loss.item() == pytest.approx(sum(expected) / 3, abs=1e-6)
    valid = _px(1.0, 0.0, 0.0)
    assert adaptive_cross_weighted_loss(l_o, l_d, e_o, e_d, valid=valid).item() == pytest.approx(expected[0])


def test_cross_weighted_loss_rejects_mismatched_maps():
    with pytest.raises(ValueError, match="epi_d"):
        adaptive_cross_weighted_loss(_px(0.1), _px(0.1), _px(0.1), _px(0.1, 0.2))


def test_occlusion_aware_flow_loss_end_to_end():
    from loss_scenes import SHIFT, W, constant_flow, shifted_pair

    from depth_pose_ros.geometry.masks import range_map
    from depth_pose_ros.geometry.warp import warp_by_flow
    from depth_pose_ros.losses.occlusion_aware import occlusion_aware_flow_loss
    from depth_pose_ros.losses.photometric import photometric_error

    target, prev = shifted_pair(0)  # prev(x + 2) = target(x)
    g = torch.Generator().manual_seed(5)
    next_ = torch.rand(target.shape, generator=g)  # unrelated frame: large forward errors
    f_t_prev, f_prev_t = constant_flow(SHIFT, 0), constant_flow(-SHIFT, 0)
    f_t_next, f_next_t = constant_flow(-SHIFT, 0), constant_flow(SHIFT, 0)
    loss, per_pixel = occlusion_aware_flow_loss(
        target, prev, next_, f_t_prev, f_prev_t, f_t_next, f_next_t, alpha=0.0, return_map=True
    )
    # Backward term: exact flow -> 0 error; forward term: |target - next warped| weighted by w_fo M_fo.
    l_bo = photometric_error(warp_by_flow(prev, f_t_prev)[0], target, 0.0)
    assert l_bo[..., : W - SHIFT].abs().max() < 1e-6
    warped_next, valid_next = warp_by_flow(next_, f_t_next)
    l_fo = photometric_error(warped_next, target, 0.0)
    m_fo = range_map(f_next_t).clamp(max=1.0) * valid_next
    w_bo, w_fo = bidirectional_softmax_weights(l_bo, l_fo)
    m_bo = range_map(f_prev_t).clamp(max=1.0)
    expected = w_bo * m_bo * l_bo + w_fo * m_fo * l_fo
    assert torch.allclose(per_pixel, expected, atol=1e-6)
    assert loss.item() == pytest.approx(expected.mean().item(), abs=1e-6)
    # The first SHIFT columns have no correspondence in t+1 (range 0): no forward term there.
    assert torch.all(m_fo[..., :SHIFT] == 0)
