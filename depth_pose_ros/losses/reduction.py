"""Shared plumbing of the losses: input checks, masked means and the optional per-pixel map.

Every loss of this package reduces a per-pixel (or per-point) error map to one scalar with an explicit
mask. Keeping the reduction in one place makes the convention identical everywhere: the mean is taken
over the *valid* entries only (so adding an all-masked region changes nothing), and a fully masked
input gives a zero loss with zero gradient instead of NaN (a batch whose only pair is degenerate must
not poison the optimiser).
"""
from __future__ import annotations

from typing import Optional, Union

import torch

LossOut = Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]
"""A scalar loss, or ``(scalar, per-pixel map)`` when the caller passed ``return_map=True``."""

_EPS = 1e-7


def check_bchw(name: str, x: torch.Tensor, channels: Optional[int] = None) -> None:
    """Raise a ValueError naming the argument when ``x`` is not a BxCxHxW tensor (with C=channels)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name}: expected a BxCxHxW tensor, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channel(s), got shape {tuple(x.shape)}")


def check_same_hw(*named: tuple[str, Optional[torch.Tensor]]) -> None:
    """Raise a ValueError when the given (name, BxCxHxW tensor) pairs disagree on B, H or W."""
    present = [(n, t) for n, t in named if t is not None]
    if not present:
        return
    ref_name, ref = present[0]
    for name, t in present[1:]:
        if t.shape[0] != ref.shape[0] or t.shape[-2:] != ref.shape[-2:]:
            raise ValueError(
                f"{name}: shape {tuple(t.shape)} does not match {ref_name} {tuple(ref.shape)} (B, H, W)"
            )


def check_pose(name: str, T: torch.Tensor, batch: int) -> None:
    """Raise a ValueError when ``T`` is not a Bx4x4 pose batch of the given batch size."""
    if T.dim() != 3 or T.shape[1:] != (4, 4) or T.shape[0] != batch:
        raise ValueError(f"{name}: expected a {batch}x4x4 pose tensor, got shape {tuple(T.shape)}")


def check_intrinsics(name: str, K: torch.Tensor, batch: int) -> torch.Tensor:
    """Return ``K`` as a Bx3x3 batch (a single 3x3 is broadcast) or raise a ValueError naming it."""
    if K.dim() == 2 and K.shape == (3, 3):
        K = K.unsqueeze(0).expand(batch, 3, 3)
    if K.dim() != 3 or K.shape[1:] != (3, 3) or K.shape[0] != batch:
        raise ValueError(f"{name}: expected a {batch}x3x3 (or 3x3) intrinsics tensor, got {tuple(K.shape)}")
    return K


def masked_mean(x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` (broadcastable to ``x``, values in [0, 1]) is set.

    Soft masks act as weights: ``sum(x * m) / sum(m)``. An all-zero mask gives 0 (not NaN), with a
    zero gradient, so degenerate batches are harmless.
    """
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype).expand_as(x)
    return (x * mask).sum() / mask.sum().clamp_min(_EPS)


def finish(per_pixel: torch.Tensor, mask: Optional[torch.Tensor], return_map: bool) -> LossOut:
    """Reduce ``per_pixel`` with :func:`masked_mean`; also hand back the masked map when asked."""
    loss = masked_mean(per_pixel, mask)
    if not return_map:
        return loss
    shown = per_pixel if mask is None else per_pixel * mask.to(per_pixel.dtype)
    return loss, shown
