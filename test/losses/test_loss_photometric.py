"""Photometric losses: SSIM, SSIM+L1, per-pixel minimum reprojection and the Monodepth2 auto-mask."""
from __future__ import annotations

import pytest
import torch

from depth_pose_ros.losses.photometric import (
    automask,
    box3,
    identity_errors,
    min_reprojection,
    min_reprojection_loss,
    photometric_error,
    photometric_loss,
    ssim,
)


def _rand_image(seed: int, shape=(2, 3, 8, 10)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g)


def test_ssim_of_identical_images_is_one():
    img = _rand_image(0)
    assert torch.allclose(ssim(img, img), torch.ones_like(img), atol=1e-6)


def test_box_mean_is_the_3x3_average_pool_with_its_gradient():
    """The separable box mean inside SSIM (a speed change) computes what the 3x3 average pool does."""
    x = _rand_image(5, (2, 3, 9, 13)).requires_grad_(True)
    y = x.detach().clone().requires_grad_(True)
    torch.testing.assert_close(box3(x), torch.nn.functional.avg_pool2d(y, 3, 1), atol=1e-6, rtol=1e-6)
    w = _rand_image(6, (2, 3, 7, 11))
    (box3(x) * w).sum().backward()
    (torch.nn.functional.avg_pool2d(y, 3, 1) * w).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, atol=1e-6, rtol=1e-6)


def test_ssim_of_two_constant_images_matches_formula():
    # Constant images a, b: variances are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1) * C2 / C2.
    a, b = 0.2, 0.5
    x = torch.full((1, 1, 5, 6), a)
    y = torch.full((1, 1, 5, 6), b)
    expected = (2 * a * b + 0.01**2) / (a * a + b * b + 0.01**2)
    assert expected == pytest.approx(0.689762, abs=1e-6)
    assert torch.allclose(ssim(x, y), torch.full_like(x, expected), atol=1e-6)


def test_ssim_is_symmetric_and_below_one_for_different_images():
    x, y = _rand_image(1), _rand_image(11)
    s = ssim(x, y)
    assert torch.allclose(s, ssim(y, x), atol=1e-6)
    assert torch.all(s < 0.999)


def test_photometric_error_l1_part_is_exact_for_a_shifted_image():
    img = _rand_image(2)
    err = photometric_error(img + 0.125, img, alpha=0.0)
    assert err.shape == (2, 1, 8, 10)
    assert torch.allclose(err, torch.full_like(err, 0.125), atol=1e-6)


def test_photometric_error_combines_ssim_and_l1_with_alpha():
    # Constant images: dssim = (1 - SSIM) / 2 is known in closed form, so the full pe is too.
    a, b = 0.2, 0.5
    x = torch.full((1, 3, 4, 4), a)
    y = torch.full((1, 3, 4, 4), b)
    s = (2 * a * b + 0.01**2) / (a * a + b * b + 0.01**2)
    expected = 0.85 * (1 - s) / 2 + 0.15 * abs(a - b)
    assert torch.allclose(photometric_error(x, y), torch.full((1, 1, 4, 4), expected), atol=1e-6)


def test_photometric_loss_of_identical_images_is_zero_and_mask_selects_region():
    img = _rand_image(3)
    assert photometric_loss(img, img).item() == pytest.approx(0.0, abs=1e-6)
    pred = img.clone()
    pred[..., :, 5:] += 0.3  # right half wrong
    mask = torch.zeros(2, 1, 8, 10)
    mask[..., :, :3] = 1.0  # left columns, away from the SSIM window of the edit
    assert photometric_loss(pred, img, mask=mask).item() == pytest.approx(0.0, abs=1e-6)
    loss, per_pixel = photometric_loss(pred, img, alpha=0.0, return_map=True)
    assert loss.item() == pytest.approx(0.3 * 5 / 10, abs=1e-6)
    assert per_pixel.shape == (2, 1, 8, 10)


def test_photometric_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="pred"):
        photometric_loss(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 5))
    with pytest.raises(ValueError, match="alpha"):
        photometric_error(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), alpha=1.5)
    with pytest.raises(ValueError, match="BxCxHxW"):
        ssim(torch.rand(3, 4, 4), torch.rand(3, 4, 4))


def test_min_reprojection_picks_the_per_pixel_minimum():
    e1 = torch.tensor([[[[0.1, 0.5], [0.3, 0.9]]]])
    e2 = torch.tensor([[[[0.2, 0.4], [0.3, 0.1]]]])
    value, index = min_reprojection([e1, e2])
    assert torch.allclose(value, torch.tensor([[[[0.1, 0.4], [0.3, 0.1]]]]))
    assert index[0, 0, 0, 0] == 0 and index[0, 0, 0, 1] == 1 and index[0, 0, 1, 1] == 1


def test_min_reprojection_loss_uses_the_better_source_per_pixel():
    target = _rand_image(4, (1, 3, 6, 8))
    good_left = target.clone()
    good_left[..., 4:] += 0.2  # source 1 is wrong on the right
    good_right = target.clone()
    good_right[..., :4] += 0.2  # source 2 is wrong on the left
    loss = min_reprojection_loss(target, [good_left, good_right], alpha=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    # A single wrong source gives its exact L1 (0.2 on half of the image).
    single = min_reprojection_loss(target, [good_left], alpha=0.0)
    assert single.item() == pytest.approx(0.1, abs=1e-6)


def test_min_reprojection_loss_ignores_invalid_warps():
    target = _rand_image(5, (1, 3, 4, 4))
    bad = target + 0.4
    valid_bad = torch.zeros(1, 1, 4, 4)
    valid_bad[..., :, :2] = 1.0  # the bad source is valid only on the left
    good = target.clone()
    valid_good = torch.zeros(1, 1, 4, 4)
    valid_good[..., :, 2:] = 1.0  # the good source only on the right
    loss, per_pixel = min_reprojection_loss(
        target, [bad, good], valid=[valid_bad, valid_good], alpha=0.0, return_map=True
    )
    # Left: only the bad source (0.4); right: the good one (0).
    assert loss.item() == pytest.approx(0.2, abs=1e-6)
    assert torch.allclose(per_pixel[..., :, :2], torch.full((1, 1, 4, 2), 0.4), atol=1e-6)
    # No valid source anywhere -> zero loss, no NaN.
    none_valid = min_reprojection_loss(target, [bad], valid=[torch.zeros(1, 1, 4, 4)])
    assert none_valid.item() == 0.0


def test_automask_excludes_pixels_where_the_unwarped_source_is_better():
    g = torch.Generator().manual_seed(0)
    target = _rand_image(6, (1, 3, 6, 8))
    source = target.clone()
    source[..., :, 4:] = _rand_image(7, (1, 3, 6, 4))  # right half changed between frames
    # The "warp" fixes the right half but damages the left half (e.g. a wrong depth there).
    warped = target.clone()
    warped[..., :, :4] += 0.3
    reproj = [photometric_error(warped, target)]
    ident = identity_errors(target, [source], generator=g)
    mask = automask(reproj, ident)
    # SSIM's 3x3 window mixes the two halves at the boundary columns 3 and 4; check away from it.
    assert torch.all(mask[..., :, :3] == 0)  # unwarped source is perfect there
    assert torch.all(mask[..., :, 5:] == 1)  # warp wins where the scene changed
    loss = min_reprojection_loss(target, [warped], sources=[source], generator=g, alpha=0.0)
    # With alpha = 0 the kept pixels (right half, warp exact) have zero error.
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


def test_automask_noise_breaks_ties_of_a_static_source():
    target = _rand_image(8, (1, 3, 5, 5))
    g = torch.Generator().manual_seed(1)
    ident = identity_errors(target, [target.clone()], generator=g)
    # Identity error of an identical frame is pure noise of std 1e-5, never exactly equal to a warp error.
    assert ident[0].abs().max() < 1e-4
    assert ident[0].std() > 1e-6


def test_min_reprojection_loss_has_gradients():
    target = _rand_image(9, (1, 3, 6, 6))
    warped = (target + 0.1).requires_grad_(True)
    loss = min_reprojection_loss(target, [warped])
    loss.backward()
    assert warped.grad is not None and warped.grad.abs().sum() > 0


def test_multiscale_loss_upsamples_each_scale_and_is_zero_for_the_true_depth():
    from loss_scenes import TX, Z, intrinsics, shifted_pair, translation

    from depth_pose_ros.losses.photometric import multiscale_reprojection_loss, upsample_to

    target, source = shifted_pair(0)
    K = intrinsics()
    T = translation(tx=TX)
    h, w = target.shape[-2:]
    # Constant depth at full, 1/2 and 1/4 resolution: upsampling a constant is exact.
    depths = [torch.full((1, 1, h // s, w // s), Z) for s in (1, 2, 4)]
    assert upsample_to(depths[2], (h, w)).shape == (1, 1, h, w)
    total, per_scale = multiscale_reprojection_loss(target, [source], depths, [T], K, alpha=0.0)
    assert len(per_scale) == 3
    assert total.item() == pytest.approx(0.0, abs=1e-5)
    # A wrong depth at the coarsest scale only raises that scale's loss.
    depths[2] = torch.full_like(depths[2], 2.5)
    total, per_scale = multiscale_reprojection_loss(target, [source], depths, [T], K, alpha=0.0)
    assert per_scale[0].item() == pytest.approx(0.0, abs=1e-5)
    assert per_scale[2].item() > 0.05
    assert total.item() == pytest.approx(sum(p.item() for p in per_scale) / 3, abs=1e-6)
    with pytest.raises(ValueError, match="poses"):
        multiscale_reprojection_loss(target, [source], depths, [], K)


def test_precomputed_identity_errors_equal_passing_the_sources():
    target, source = _rand_image(12, (1, 3, 6, 8)), _rand_image(13, (1, 3, 6, 8))
    warped = 0.5 * (target + source)
    a = min_reprojection_loss(target, [warped], sources=[source], generator=torch.Generator().manual_seed(3))
    ident = identity_errors(target, [source], generator=torch.Generator().manual_seed(3))
    b = min_reprojection_loss(target, [warped], identity=ident)
    assert a.item() == b.item()
    with pytest.raises(ValueError, match="identity"):
        min_reprojection_loss(target, [warped], sources=[source], identity=ident)


def test_a_source_without_validity_mask_counts_as_valid_everywhere():
    target = _rand_image(14, (1, 3, 4, 4))
    never_valid = torch.zeros(1, 1, 4, 4)
    loss = min_reprojection_loss(target, [target + 0.1, target + 0.3], valid=[None, never_valid], alpha=0.0)
    assert loss.item() == pytest.approx(0.1, abs=1e-6)
