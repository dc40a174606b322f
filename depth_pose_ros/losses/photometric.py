"""Photometric (appearance) losses: SSIM + L1, per-pixel minimum reprojection and auto-masking.

These are the Monodepth2 terms (Godard et al., "Digging Into Self-Supervised Monocular Depth
Estimation", ICCV 2019; restated in han2021 / wang_idce eq. 2-5 in /work/shared/papers):

    pe(I_t, I') = alpha * (1 - SSIM(I_t, I')) / 2 + (1 - alpha) * |I_t - I'|_1,   alpha = 0.85
    L_p         = sum_p mu(p) * min_s pe(I_t, I'_{s->t})(p)
    mu(p)       = [min_s pe(I_t, I'_{s->t})(p) < min_s pe(I_t, I_s)(p)]            (auto-mask)

The per-pixel minimum over sources handles pixels that are occluded in one source but visible in the
other; the auto-mask drops pixels that the *unwarped* source already explains (static camera, objects
moving with the camera, textureless sky), where the warp gives no learning signal. Images are
expected in [0, 1] (the SSIM constants C1, C2 assume a dynamic range of 1).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Optional, overload

import torch
import torch.nn.functional as F

from depth_pose_ros.geometry.warp import warp_rigid
from depth_pose_ros.losses.reduction import LossOut, check_bchw, check_same_hw, finish

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2
DEFAULT_ALPHA = 0.85
# Error given to a source pixel whose warp left the image: larger than any real photometric error
# (pe <= 1 + max|I|), so the per-pixel minimum never picks it while another source is valid.
_INVALID_ERROR = 1.0e3


def box3(x: torch.Tensor) -> torch.Tensor:
    """3x3 box mean of a ...xHxW tensor without padding (-> ...x(H-2)x(W-2)), as separable shifted sums.

    The same values as ``F.avg_pool2d(x, 3, 1)`` (to float rounding), several times faster forward and backward
    on CPU for the small images of training (the pooling kernel's per-call overhead dominated SSIM there).
    """
    r = x[..., :-2] + x[..., 1:-1] + x[..., 2:]
    return (r[..., :-2, :] + r[..., 1:-1, :] + r[..., 2:, :]) * (1.0 / 9.0)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of two BxCxHxW images (3x3 box window, reflection padding), in [-1, 1].

    SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
    C1 = 0.01^2, C2 = 0.03^2 (Wang et al. 2004 with the 3x3 average window used by Monodepth2, which is
    cheaper than the Gaussian window and works as well for training). Identical images give exactly 1.
    """
    check_bchw("x", x)
    check_bchw("y", y)
    if x.shape != y.shape:
        raise ValueError(f"y: shape {tuple(y.shape)} does not match x {tuple(x.shape)}")
    if x.shape[-1] < 2 or x.shape[-2] < 2:
        raise ValueError(f"x: SSIM needs an image of at least 2x2 pixels, got shape {tuple(x.shape)}")
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    yp = F.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x = box3(xp)
    mu_y = box3(yp)
    sigma_x = box3(xp * xp) - mu_x * mu_x
    sigma_y = box3(yp * yp) - mu_y * mu_y
    sigma_xy = box3(xp * yp) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * sigma_xy + SSIM_C2)
    den = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return (num / den).clamp(-1.0, 1.0)


def photometric_error(pred: torch.Tensor, target: torch.Tensor, alpha: float = DEFAULT_ALPHA) -> torch.Tensor:
    """Per-pixel photometric error Bx1xHxW: alpha * (1 - SSIM) / 2 + (1 - alpha) * |pred - target|.

    Both terms are averaged over the colour channels. With alpha = 0 this is exactly the mean absolute
    difference, which makes the L1 part testable by hand.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: must lie in [0, 1], got {alpha}")
    check_bchw("pred", pred)
    check_bchw("target", target)
    if pred.shape != target.shape:
        raise ValueError(f"pred: shape {tuple(pred.shape)} does not match target {tuple(target.shape)}")
    l1 = (pred - target).abs().mean(dim=1, keepdim=True)
    if alpha == 0.0:
        return l1
    dssim = ((1.0 - ssim(pred, target)) * 0.5).clamp(0.0, 1.0).mean(dim=1, keepdim=True)
    return alpha * dssim + (1.0 - alpha) * l1


@overload
def photometric_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def photometric_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def photometric_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    return_map: bool = ...,
) -> LossOut: ...


def photometric_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    alpha: float = DEFAULT_ALPHA,
    return_map: bool = False,
) -> LossOut:
    """Masked mean of :func:`photometric_error` (mask Bx1xHxW in [0, 1], e.g. warp validity)."""
    err = photometric_error(pred, target, alpha)
    check_same_hw(("pred", pred), ("mask", mask))
    return finish(err, mask, return_map)


def min_reprojection(errors: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum over a list of Bx1xHxW error maps -> (min Bx1xHxW, argmin Bx1xHxW long).

    Monodepth2's answer to occlusion: a pixel hidden in one source is usually visible in another, and
    the smaller error is the one from the source where it is visible.
    """
    if len(errors) == 0:
        raise ValueError("errors: need at least one error map")
    for i, e in enumerate(errors):
        check_bchw(f"errors[{i}]", e, channels=1)
    stacked = torch.cat(list(errors), dim=1)
    value, index = stacked.min(dim=1, keepdim=True)
    return value, index


def identity_errors(
    target: torch.Tensor,
    sources: Sequence[torch.Tensor],
    alpha: float = DEFAULT_ALPHA,
    noise_std: float = 1e-5,
    generator: Optional[torch.Generator] = None,
) -> list[torch.Tensor]:
    """Photometric errors of the *unwarped* sources against the target, plus tiny Gaussian noise.

    The noise (Monodepth2) breaks exact ties in the auto-mask when a source equals the target (a static
    camera), so that such pixels are decided consistently instead of by comparison order.
    ``generator`` (optional, for reproducibility) must live on the images' device.
    """
    out = []
    for s in sources:
        err = photometric_error(s, target, alpha)
        if noise_std > 0:
            noise = torch.randn(err.shape, generator=generator, device=err.device, dtype=err.dtype)
            err = err + noise_std * noise
        out.append(err)
    return out


def automask(reprojection_errors: Sequence[torch.Tensor], identity: Sequence[torch.Tensor]) -> torch.Tensor:
    """Monodepth2 auto-mask Bx1xHxW float {0, 1}: 1 where the best warped source beats every unwarped one.

    mu = [min_s pe(I_t, I'_{s->t}) < min_s pe(I_t, I_s)]
    """
    best_warp, _ = min_reprojection(reprojection_errors)
    best_identity, _ = min_reprojection(identity)
    return (best_warp < best_identity).to(best_warp.dtype)


@overload
def min_reprojection_loss(
    target: torch.Tensor,
    warped: Sequence[torch.Tensor],
    valid: Optional[Sequence[Optional[torch.Tensor]]] = ...,
    sources: Optional[Sequence[torch.Tensor]] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    noise_std: float = ...,
    generator: Optional[torch.Generator] = ...,
    identity: Optional[Sequence[torch.Tensor]] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def min_reprojection_loss(
    target: torch.Tensor,
    warped: Sequence[torch.Tensor],
    valid: Optional[Sequence[Optional[torch.Tensor]]] = ...,
    sources: Optional[Sequence[torch.Tensor]] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    noise_std: float = ...,
    generator: Optional[torch.Generator] = ...,
    identity: Optional[Sequence[torch.Tensor]] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def min_reprojection_loss(
    target: torch.Tensor,
    warped: Sequence[torch.Tensor],
    valid: Optional[Sequence[Optional[torch.Tensor]]] = ...,
    sources: Optional[Sequence[torch.Tensor]] = ...,
    mask: Optional[torch.Tensor] = ...,
    alpha: float = ...,
    noise_std: float = ...,
    generator: Optional[torch.Generator] = ...,
    identity: Optional[Sequence[torch.Tensor]] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def min_reprojection_loss(
    target: torch.Tensor,
    warped: Sequence[torch.Tensor],
    valid: Optional[Sequence[Optional[torch.Tensor]]] = None,
    sources: Optional[Sequence[torch.Tensor]] = None,
    mask: Optional[torch.Tensor] = None,
    alpha: float = DEFAULT_ALPHA,
    noise_std: float = 1e-5,
    generator: Optional[torch.Generator] = None,
    identity: Optional[Sequence[torch.Tensor]] = None,
    return_map: bool = False,
) -> LossOut:
    """Monodepth2 photometric loss: per-pixel min over warped sources, auto-masked when ``sources`` given.

    L_p = mean_{p in M} min_s pe(I_t, I'_{s->t})(p),  M = mask * automask * [some source valid at p].

    Args:
        target: Bx3xHxW target image I_t in [0, 1].
        warped: list of Bx3xHxW sources warped into the target view (I'_{s->t}).
        valid: optional list (same length) of Bx1xHxW warp-validity masks; a source is ignored at pixels
            where its warp left the image (Monodepth2 instead samples the border; masking is cleaner).
        sources: optional list of the *unwarped* source images; enables the auto-mask.
        mask: optional extra Bx1xHxW mask (e.g. a known-static region).
        noise_std, generator: tie-breaking noise of the identity errors (see :func:`identity_errors`).
        identity: precomputed :func:`identity_errors` (instead of ``sources``), so that callers
            evaluating several scales against the same full-resolution images compute them once.
        return_map: also return the masked per-pixel minimum error.

    Unlike Monodepth2, pixels removed by the auto-mask are excluded from the mean rather than
    contributing their (gradient-free) identity error; the gradient is the same up to normalisation.
    """
    check_bchw("target", target)
    if len(warped) == 0:
        raise ValueError("warped: need at least one warped source")
    if valid is not None and len(valid) != len(warped):
        raise ValueError(f"valid: {len(valid)} masks for {len(warped)} warped sources")
    if sources is not None and len(sources) != len(warped):
        raise ValueError(f"sources: {len(sources)} images for {len(warped)} warped sources")
    if sources is not None and identity is not None:
        raise ValueError("identity: give either sources or precomputed identity errors, not both")
    check_same_hw(("target", target), ("mask", mask))

    errors = []
    any_valid = None
    for i, w in enumerate(warped):
        err = photometric_error(w, target, alpha)
        if valid is not None:
            v = valid[i]  # None inside the list: this source is valid everywhere
            if v is None:
                v = torch.ones_like(err)
            check_same_hw(("target", target), (f"valid[{i}]", v))
            v = v.to(err.dtype)
            err = torch.where(v > 0.5, err, torch.full_like(err, _INVALID_ERROR))
            any_valid = v if any_valid is None else torch.maximum(any_valid, v)
        errors.append(err)
    best, _ = min_reprojection(errors)

    total_mask = mask
    if any_valid is not None:
        total_mask = any_valid if total_mask is None else total_mask * any_valid
    if sources is not None:
        identity = identity_errors(target, sources, alpha, noise_std, generator)
    if identity is not None:
        auto = automask(errors, identity)
        total_mask = auto if total_mask is None else total_mask * auto
    return finish(best, total_mask, return_map)


def upsample_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a Bx1xhxw map to ``size`` (H, W) (align_corners=False, as images are resized)."""
    check_bchw("x", x)
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def multiscale_reprojection_loss(
    target: torch.Tensor,
    sources: Sequence[torch.Tensor],
    depths: Sequence[torch.Tensor],
    poses: Sequence[torch.Tensor],
    K: torch.Tensor,
    use_automask: bool = True,
    alpha: float = DEFAULT_ALPHA,
    noise_std: float = 1e-5,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Monodepth2 multi-scale photometric loss: every scale's depth is upsampled to full resolution first.

    For each scale k: D_k^up = upsample(D_k, H x W); I'_{s->t} = warp_rigid(I_s, D_k^up, T_s_t, K);
    L_k = :func:`min_reprojection_loss` (with the auto-mask). Returns (mean_k L_k, [L_k]).

    Warping the full-resolution images with an upsampled depth, instead of downsampled images with the
    coarse depth, avoids the "holes" low-resolution photometric losses create in textureless regions
    (Godard et al. 2019, sec. 3.3): every scale is asked to reconstruct the same full-resolution image.

    Args:
        target: Bx3xHxW full-resolution target image.
        sources: list of Bx3xHxW source images (e.g. t-1 and t+1).
        depths: list of Bx1xhxw depth maps, one per scale (metres). Monodepth2 upsamples the disparity
            and then converts; pass ``1 / upsample_to(disp, ...)``-style depths to reproduce that exactly.
        poses: list (one per source) of Bx4x4 ``T_source_target`` (maps points of camera t into camera s).
        K: Bx3x3 (or 3x3) full-resolution intrinsics.
        use_automask: apply the Monodepth2 auto-mask with the unwarped sources.
        alpha, noise_std, generator: see :func:`min_reprojection_loss`.
    """
    check_bchw("target", target)
    if len(sources) == 0 or len(sources) != len(poses):
        raise ValueError(f"sources/poses: need one pose per source, got {len(sources)} and {len(poses)}")
    if len(depths) == 0:
        raise ValueError("depths: need at least one scale")
    h, w = target.shape[-2:]
    identity = identity_errors(target, sources, alpha, noise_std, generator) if use_automask else None
    per_scale = []
    for k, depth in enumerate(depths):
        check_bchw(f"depths[{k}]", depth, channels=1)
        depth_up = upsample_to(depth, (h, w))
        warped, valid = [], []
        for src, T_s_t in zip(sources, poses):
            wimg, v = warp_rigid(src, depth_up, T_s_t, K)
            warped.append(wimg)
            valid.append(v)
        loss = min_reprojection_loss(target, warped, valid=valid, alpha=alpha, identity=identity)
        per_scale.append(loss)
    return torch.stack(per_scale).mean(), per_scale
