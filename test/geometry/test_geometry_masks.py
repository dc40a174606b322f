"""Forward-backward consistency and the range map (Fang et al. eq. 1), on hand-made and ray-cast flows."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from geometry_scenes import street_pair

from depth_pose_ros.geometry.masks import fb_consistency, fb_consistency_np, occlusion_from_range, range_map


def _const_flow(h: int, w: int, dx: float, dy: float, dtype=torch.float64) -> torch.Tensor:
    f = torch.zeros(1, 2, h, w, dtype=dtype)
    f[:, 0], f[:, 1] = dx, dy
    return f


def test_fb_consistent_translation_and_pixels_leaving_the_image():
    fw, bw = _const_flow(6, 10, 3.0, 0.0), _const_flow(6, 10, -3.0, 0.0)
    inc, ok = fb_consistency(fw, bw)
    assert inc.shape == (1, 1, 6, 10) and ok.shape == (1, 1, 6, 10)
    assert inc.max().item() < 1e-5
    # columns 7..9 move outside image 2 (x + 3 > 9): no correspondence
    assert ok[0, 0, :, :7].all() and not ok[0, 0, :, 7:].any()


def test_fb_inconsistent_region_is_flagged_with_the_unflow_threshold():
    fw, bw = _const_flow(8, 12, 2.0, 0.0), _const_flow(8, 12, -2.0, 0.0)
    bw[:, :, 2:5, 4:8] = 0.0  # image-2 pixels that do not map back: their fw sources are occluded
    inc, ok = fb_consistency(fw, bw, alpha1=0.01, alpha2=0.5)
    # source pixel (y=3, x=3) lands at x=5 (inside the bad block): residual |2 + 0| = 2
    assert inc[0, 0, 3, 3].item() == pytest.approx(2.0)
    # threshold 0.01 * (4 + 0) + 0.5 = 0.54 < 4: occluded
    assert ok[0, 0, 3, 3].item() == 0.0
    assert ok[0, 0, 6, 3].item() == 1.0
    # a larger absolute tolerance accepts it again
    _, ok_loose = fb_consistency(fw, bw, alpha1=0.01, alpha2=5.0)
    assert ok_loose[0, 0, 3, 3].item() == 1.0


def _range_map_bruteforce(flow_bw: np.ndarray) -> np.ndarray:
    """Eq. 1 of Fang et al. literally: R(x, y) = sum_ij max(0, 1-|x-(i+Fx)|) max(0, 1-|y-(j+Fy)|)."""
    _, h, w = flow_bw.shape
    R = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            for j in range(h):
                for i in range(w):
                    R[y, x] += (max(0.0, 1 - abs(x - (i + flow_bw[0, j, i])))
                                * max(0.0, 1 - abs(y - (j + flow_bw[1, j, i]))))
    return R


def test_range_map_equals_equation_one(rng):
    flow = rng.normal(scale=1.5, size=(2, 5, 6))
    R = range_map(torch.from_numpy(flow)[None])[0, 0].numpy()
    assert R == pytest.approx(_range_map_bruteforce(flow), abs=1e-12)


def test_range_map_shift_marks_the_uncovered_columns():
    # every pixel of image 2 comes from 2 px to the right in image 1: columns 0, 1 of image 1 get nothing
    R = range_map(_const_flow(4, 7, 2.0, 0.0))
    assert R[0, 0, :, :2].abs().max().item() == 0.0
    assert R[0, 0, :, 2:].numpy() == pytest.approx(np.ones((4, 5)))
    ok = occlusion_from_range(R)
    assert ok[0, 0, :, :2].sum() == 0 and ok[0, 0, :, 2:].all()
    # half-pixel shift: the first column receives half a pixel of weight
    R = range_map(_const_flow(4, 7, 0.5, 0.0))
    assert R[0, 0, :, 0].tolist() == pytest.approx([0.5] * 4)
    assert occlusion_from_range(R, threshold=0.6)[0, 0, :, 0].sum() == 0


def test_range_map_is_differentiable_and_handles_nan():
    flow = _const_flow(5, 5, 0.3, -0.2).requires_grad_()
    R = range_map(flow)
    R[0, 0, 2, 2].backward()
    assert torch.isfinite(flow.grad).all() and flow.grad.abs().sum() > 0
    bad = _const_flow(3, 3, 0.0, 0.0)
    bad[0, 0, 1, 1] = float("nan")
    R = range_map(bad)
    assert torch.isfinite(R).all() and R[0, 0, 1, 1].item() == 0.0


def test_occlusions_of_a_ray_cast_scene_are_found_by_both_cues():
    """Pixels hidden behind a box in view 2 must be caught by fb check and range map, and few others."""
    K, fw, bw, d1, d2, T_2_1, *_ = street_pair(seed=3, h=96, w=192, forward=2.0)
    f = torch.from_numpy(np.nan_to_num(fw)).permute(2, 0, 1)[None].double()
    b = torch.from_numpy(np.nan_to_num(bw)).permute(2, 0, 1)[None].double()
    # ground truth visibility: the flow target's depth in view 2 matches the point's depth there
    h, w = d1.shape
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = np.rint(xs + fw[..., 0]), np.rint(ys + fw[..., 1])
    inside = np.isfinite(tx) & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1) & (d1 > 0)
    d2_at = np.zeros_like(d1)
    d2_at[inside] = d2[ty[inside].astype(int), tx[inside].astype(int)]
    pts = np.stack((xs, ys, np.ones_like(xs)), -1) @ np.linalg.inv(K).T * d1[..., None]
    z_in_2 = (pts @ T_2_1[:3, :3].T + T_2_1[:3, 3])[..., 2]
    occluded = inside & (d2_at < 0.9 * z_in_2)
    visible = inside & (np.abs(d2_at - z_in_2) < 0.02 * z_in_2)
    assert occluded.sum() > 50  # the scene really has occlusions
    _, ok_fb = fb_consistency(f, b)
    ok_range = occlusion_from_range(range_map(b))
    for ok in (ok_fb[0, 0].numpy() > 0, ok_range[0, 0].numpy() > 0):
        assert (~ok[occluded]).mean() > 0.6  # most occluded pixels flagged
        assert ok[visible].mean() > 0.95  # almost no visible pixel flagged


def test_numpy_twin_of_fb_consistency_agrees_with_torch():
    """fb_consistency_np (cv2.remap, fixed-point weights) must match the torch definition."""
    K, fw, bw, *_ = street_pair(seed=5, h=96, w=192, forward=1.5)
    fw, bw = np.nan_to_num(fw), np.nan_to_num(bw)
    rng = np.random.default_rng(0)
    fw = fw + rng.normal(scale=0.3, size=fw.shape).astype(np.float32)  # not exactly consistent
    inc_np, ok_np = fb_consistency_np(fw, bw)
    inc_t, ok_t = fb_consistency(torch.from_numpy(fw).permute(2, 0, 1)[None],
                                 torch.from_numpy(bw).permute(2, 0, 1)[None])
    assert inc_np.shape == fw.shape[:2] and ok_np.dtype == bool
    diff = np.abs(inc_np - inc_t[0, 0].numpy())
    assert np.median(diff) < 0.01 and np.mean(diff) < 0.05
    assert (ok_np == (ok_t[0, 0].numpy() > 0)).mean() > 0.99
    with pytest.raises(ValueError, match="HxWx2"):
        fb_consistency_np(fw, bw[:-1])
