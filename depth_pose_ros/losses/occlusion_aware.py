"""Fang et al.: occlusion-aware bidirectional flow loss (eq. 1-3) and adaptive cross-weighted loss (eq. 5-7).

Paper: "Self-supervised Learning of Occlusion Aware Flow Guided 3D Geometry Perception with Adaptive
Cross Weighted Loss from Monocular Videos" (/work/shared/papers/fang_occlusion_aware_flow_cross_weighted.txt).
The equations are implemented as printed; where the extracted text is ambiguous the reading chosen is
stated in the function's docstring.

Bidirectional flow loss (target t, sources t-1 "b" and t+1 "f"):

    L_op  = w_bo M_{t->t-1} L_bo + w_fo M_{t->t+1} L_fo                                       (2)
    w_bo  = exp((1 - e^{L_bo} / (e^{L_bo} + e^{L_fo})) - 0.5),  w_fo symmetric                   (3)
    M_{t->s} = min(1, R_{t}) with R the range map of the backward flow F_{s->t}                (1)

A pixel seen well from both sides (L_bo ~ L_fo) gets weights ~1 in both directions; when one direction
is much worse (occluded there) its weight drops towards e^{-0.5} and the other rises towards e^{0.5}:
a soft version of Monodepth2's per-pixel minimum that still trains both directions.

Adaptive cross-weighted depth/flow loss (o = optical flow, d = rigid flow from depth-pose):

    w_a   = [(1 - e^{L_a} / (e^{L_a} + e^{L_b})) > 0.28]     for (a, b) in {(o, d), (d, o)}     (5)
    L_Ed  = epipolar error of the rigid flow, L_Eo of the optical flow, under F of the pose    (6)
    L_ap  = w_Ed w_o (L_o + lambda_ed L_Ed) + w_Eo w_d (L_d + lambda_eo L_Eo)                  (7)

Equation (5) keeps a task's pixel unless its error is much larger than the other task's ("throwing away
the bigger error"); the geometric weights w_Ed, w_Eo are the same rule applied to the epipolar errors.
"""
from __future__ import annotations

from typing import Literal, Optional, overload

import torch

from depth_pose_ros.geometry.masks import range_map
from depth_pose_ros.geometry.warp import warp_by_flow
from depth_pose_ros.losses.photometric import DEFAULT_ALPHA, photometric_error
from depth_pose_ros.losses.reduction import LossOut, check_bchw, check_same_hw, finish

# The paper's settings (sec. 4, "Parameters setting": lambda_eo = 0.02, lambda_ed = 0.002, and the 0.28
# of eq. 5); the one source of these defaults: training/config.py's CrossWeightedConfig reads them here.
FANG_THRESHOLD = 0.28
FANG_LAMBDA_ED = 0.002
FANG_LAMBDA_EO = 0.02


def _check_maps(**maps: Optional[torch.Tensor]) -> None:
    for name, m in maps.items():
        if m is not None:
            check_bchw(name, m, channels=1)
    check_same_hw(*maps.items())


def bidirectional_softmax_weights(
    loss_bo: torch.Tensor, loss_fo: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fang eq. 3: per-pixel weights (w_bo, w_fo) of the backward / forward photometric errors.

    w_bo = exp((1 - softmax(L_bo; L_bo, L_fo)) - 0.5) = exp(0.5 - sigmoid(L_bo - L_fo)), w_fo likewise.
    The exponent is read as everything in the braces of the printed formula (the only reading that
    gives weights of 1 for equal errors, as the text states). Note w_bo * w_fo = 1 at every pixel.
    Inputs are Bx1xHxW error maps; the weights have the same shape.
    """
    _check_maps(loss_bo=loss_bo, loss_fo=loss_fo)
    s_bo = torch.sigmoid(loss_bo - loss_fo)  # e^{L_bo} / (e^{L_bo} + e^{L_fo}), overflow-free
    return torch.exp(0.5 - s_bo), torch.exp(s_bo - 0.5)


@overload
def occlusion_aware_photometric_loss(
    loss_bo: torch.Tensor,
    loss_fo: torch.Tensor,
    mask_bo: Optional[torch.Tensor] = ...,
    mask_fo: Optional[torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    detach_weights: bool = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def occlusion_aware_photometric_loss(
    loss_bo: torch.Tensor,
    loss_fo: torch.Tensor,
    mask_bo: Optional[torch.Tensor] = ...,
    mask_fo: Optional[torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    detach_weights: bool = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def occlusion_aware_photometric_loss(
    loss_bo: torch.Tensor,
    loss_fo: torch.Tensor,
    mask_bo: Optional[torch.Tensor] = ...,
    mask_fo: Optional[torch.Tensor] = ...,
    valid: Optional[torch.Tensor] = ...,
    detach_weights: bool = ...,
    return_map: bool = ...,
) -> LossOut: ...


def occlusion_aware_photometric_loss(
    loss_bo: torch.Tensor,
    loss_fo: torch.Tensor,
    mask_bo: Optional[torch.Tensor] = None,
    mask_fo: Optional[torch.Tensor] = None,
    valid: Optional[torch.Tensor] = None,
    detach_weights: bool = True,
    return_map: bool = False,
) -> LossOut:
    """Fang eq. 2: L_op = mean_p (w_bo M_bo L_bo + w_fo M_fo L_fo).

    Args:
        loss_bo, loss_fo: Bx1xHxW photometric error maps of the target against the previous (t-1) and
            next (t+1) frame warped by the flow (see :func:`photometric.photometric_error`).
        mask_bo, mask_fo: Bx1xHxW non-occlusion maps M_{t->t-1}, M_{t->t+1} in [0, 1] (eq. 1:
            ``min(1, range_map(F_{s->t}))``; hard masks from fb-consistency also work). None = all 1.
        valid: optional Bx1xHxW mask of pixels to average over (e.g. image border exclusion).
        detach_weights: treat the softmax weights as constants (default). Letting gradients through
            them would reward the network for making one direction's error large to shrink its weight.
        return_map: also return the per-pixel weighted sum.
    """
    _check_maps(loss_bo=loss_bo, loss_fo=loss_fo, mask_bo=mask_bo, mask_fo=mask_fo, valid=valid)
    w_bo, w_fo = bidirectional_softmax_weights(loss_bo, loss_fo)
    if detach_weights:
        w_bo, w_fo = w_bo.detach(), w_fo.detach()
    term_bo = w_bo * loss_bo if mask_bo is None else w_bo * mask_bo * loss_bo
    term_fo = w_fo * loss_fo if mask_fo is None else w_fo * mask_fo * loss_fo
    return finish(term_bo + term_fo, valid, return_map)


def hard_softmax_weight(
    loss_a: torch.Tensor,
    loss_b: torch.Tensor,
    threshold: float = FANG_THRESHOLD,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Fang eq. 5: w_a = [(1 - e^{L_a} / (e^{L_a} + e^{L_b})) > threshold] as a float {0, 1} map.

    Equivalently w_a = [sigmoid((L_b - L_a) / T) > threshold]: the pixel is kept for task a unless
    L_a exceeds L_b by more than T * ln((1 - threshold) / threshold) (0.944 T for 0.28). ``temperature``
    T = 1 is the paper; a smaller T sharpens the rule for errors much smaller than 1 (an extension).
    The weight is a step function, so it carries no gradient.
    """
    _check_maps(loss_a=loss_a, loss_b=loss_b)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold: must lie in (0, 1), got {threshold}")
    if temperature <= 0:
        raise ValueError(f"temperature: must be positive, got {temperature}")
    other_share = torch.sigmoid((loss_b - loss_a).detach() / temperature)  # 1 - softmax_a
    return (other_share > threshold).to(loss_a.dtype)


@overload
def adaptive_cross_weighted_loss(
    loss_o: torch.Tensor,
    loss_d: torch.Tensor,
    epi_o: torch.Tensor,
    epi_d: torch.Tensor,
    lambda_ed: float = ...,
    lambda_eo: float = ...,
    threshold: float = ...,
    temperature: float = ...,
    valid: Optional[torch.Tensor] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def adaptive_cross_weighted_loss(
    loss_o: torch.Tensor,
    loss_d: torch.Tensor,
    epi_o: torch.Tensor,
    epi_d: torch.Tensor,
    lambda_ed: float = ...,
    lambda_eo: float = ...,
    threshold: float = ...,
    temperature: float = ...,
    valid: Optional[torch.Tensor] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def adaptive_cross_weighted_loss(
    loss_o: torch.Tensor,
    loss_d: torch.Tensor,
    epi_o: torch.Tensor,
    epi_d: torch.Tensor,
    lambda_ed: float = ...,
    lambda_eo: float = ...,
    threshold: float = ...,
    temperature: float = ...,
    valid: Optional[torch.Tensor] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def adaptive_cross_weighted_loss(
    loss_o: torch.Tensor,
    loss_d: torch.Tensor,
    epi_o: torch.Tensor,
    epi_d: torch.Tensor,
    lambda_ed: float = FANG_LAMBDA_ED,
    lambda_eo: float = FANG_LAMBDA_EO,
    threshold: float = FANG_THRESHOLD,
    temperature: float = 1.0,
    valid: Optional[torch.Tensor] = None,
    return_map: bool = False,
) -> LossOut:
    """Fang eq. 7: L_ap = mean_p [w_Ed w_o (L_o + l_ed L_Ed) + w_Eo w_d (L_d + l_eo L_Eo)].

    Args:
        loss_o: Bx1xHxW photometric error of the flow warp (L_o).
        loss_d: Bx1xHxW photometric error of the rigid (depth + pose) warp (L_d).
        epi_o: Bx1xHxW epipolar error of the optical flow under the pose's fundamental matrix (L_Eo,
            eq. 6; e.g. :func:`depth_pose_ros.losses.glnet.epipolar_error_map`).
        epi_d: the same for the rigid flow (L_Ed).
        lambda_ed, lambda_eo: weights of the epipolar terms; defaults are the paper's (lambda_ed =
            0.002 on the rigid flow's term, lambda_eo = 0.02 on the optical flow's).
        threshold, temperature: of :func:`hard_softmax_weight` (eq. 5).
        valid: optional Bx1xHxW mask to average over (warp validity, occlusion M_occ).
        return_map: also return the per-pixel loss.

    Weights, as printed: w_o = [softmax_o(L_o, L_d) rule], w_d likewise (photometric), w_Eo and w_Ed
    the same rule on (L_Eo, L_Ed) (the text says "computed by (4)", read as the rule of (5)). The epipolar
    term inside each bracket is the *other* flow's, as printed ("cross" weighting).
    """
    _check_maps(loss_o=loss_o, loss_d=loss_d, epi_o=epi_o, epi_d=epi_d, valid=valid)
    w_o = hard_softmax_weight(loss_o, loss_d, threshold, temperature)
    w_d = hard_softmax_weight(loss_d, loss_o, threshold, temperature)
    w_eo = hard_softmax_weight(epi_o, epi_d, threshold, temperature)
    w_ed = hard_softmax_weight(epi_d, epi_o, threshold, temperature)
    per_pixel = w_ed * w_o * (loss_o + lambda_ed * epi_d) + w_eo * w_d * (loss_d + lambda_eo * epi_o)
    return finish(per_pixel, valid, return_map)


@overload
def occlusion_aware_flow_loss(
    target: torch.Tensor,
    prev: torch.Tensor,
    next_: torch.Tensor,
    flow_t_prev: torch.Tensor,
    flow_prev_t: torch.Tensor,
    flow_t_next: torch.Tensor,
    flow_next_t: torch.Tensor,
    alpha: float = ...,
    detach_weights: bool = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def occlusion_aware_flow_loss(
    target: torch.Tensor,
    prev: torch.Tensor,
    next_: torch.Tensor,
    flow_t_prev: torch.Tensor,
    flow_prev_t: torch.Tensor,
    flow_t_next: torch.Tensor,
    flow_next_t: torch.Tensor,
    alpha: float = ...,
    detach_weights: bool = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def occlusion_aware_flow_loss(
    target: torch.Tensor,
    prev: torch.Tensor,
    next_: torch.Tensor,
    flow_t_prev: torch.Tensor,
    flow_prev_t: torch.Tensor,
    flow_t_next: torch.Tensor,
    flow_next_t: torch.Tensor,
    alpha: float = ...,
    detach_weights: bool = ...,
    return_map: bool = ...,
) -> LossOut: ...


def occlusion_aware_flow_loss(
    target: torch.Tensor,
    prev: torch.Tensor,
    next_: torch.Tensor,
    flow_t_prev: torch.Tensor,
    flow_prev_t: torch.Tensor,
    flow_t_next: torch.Tensor,
    flow_next_t: torch.Tensor,
    alpha: float = DEFAULT_ALPHA,
    detach_weights: bool = True,
    return_map: bool = False,
) -> LossOut:
    """Fang eq. 1-3 end to end: warp both neighbours by the flow, range-map occlusion, softmax weights.

    L_bo = pe(I_t, I_{t-1} warped by F_{t->t-1}), M_{t->t-1} = min(1, R(F_{t-1->t})) (eq. 1), the same
    for t+1, then :func:`occlusion_aware_photometric_loss`. Samples leaving the neighbour image get
    mask 0. The range-map masks are detached (they decide where to look, not what to learn).

    Args:
        target, prev, next_: Bx3xHxW frames t, t-1, t+1 (in [0, 1]).
        flow_t_prev / flow_prev_t: Bx2xHxW flows t -> t-1 (on t's grid) and t-1 -> t (on t-1's grid).
        flow_t_next / flow_next_t: the same for t+1.
    """
    check_same_hw(
        ("target", target), ("prev", prev), ("next_", next_), ("flow_t_prev", flow_t_prev),
        ("flow_prev_t", flow_prev_t), ("flow_t_next", flow_t_next), ("flow_next_t", flow_next_t),
    )
    warped_prev, valid_prev = warp_by_flow(prev, flow_t_prev)
    warped_next, valid_next = warp_by_flow(next_, flow_t_next)
    loss_bo = photometric_error(warped_prev, target, alpha)
    loss_fo = photometric_error(warped_next, target, alpha)
    with torch.no_grad():
        mask_bo = range_map(flow_prev_t).clamp(max=1.0) * valid_prev
        mask_fo = range_map(flow_next_t).clamp(max=1.0) * valid_next
    return occlusion_aware_photometric_loss(
        loss_bo, loss_fo, mask_bo, mask_fo, detach_weights=detach_weights, return_map=return_map
    )
