"""Pinhole camera helpers in torch (batched, differentiable) plus intrinsics arithmetic.

Conventions (those of the original design sketch, shared/DESIGN.md, outside this repository): pixel
centres sit at integer coordinates, x right, y down; the camera optical frame has z forward. Depth is the
z coordinate (not the ray length) in metres. Tensors are BxCxHxW; intrinsics are Bx3x3 in torch (a
single 3x3 is accepted where noted).

Why these helpers exist in one place: every warping loss, the rigid flow, the PnP fallback and the
point-cloud output backproject and project pixels, and a half-pixel disagreement between two copies
of that arithmetic shows up directly as a biased pose. Keeping one implementation removes that risk.
"""
from __future__ import annotations

import math
from typing import Optional, TypeVar, Union, overload

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor]
# numpy in, numpy out; torch in, torch out (the intrinsics helpers return the type they are given)
ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


def pixel_grid(h: int, w: int, device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel coordinates as a 1x2xHxW tensor: channel 0 is x (column), channel 1 is y (row)."""
    if h <= 0 or w <= 0:
        raise ValueError(f"pixel_grid: h and w must be positive, got h={h}, w={w}")
    ys = torch.arange(h, device=device, dtype=dtype)
    xs = torch.arange(w, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), dim=0).unsqueeze(0)


def _as_batched_k(K: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    if K.dim() == 2:
        K = K.unsqueeze(0)
    if K.dim() != 3 or K.shape[-2:] != (3, 3):
        raise ValueError(f"{name} must be Bx3x3 (or 3x3), got shape {tuple(K.shape)}")
    if K.shape[0] not in (1, batch):
        raise ValueError(f"{name} batch {K.shape[0]} does not match the data batch {batch}")
    return K.expand(batch, 3, 3)


def backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Lift every pixel to a 3D point in the camera frame: ``X = depth * K^-1 [x, y, 1]^T``.

    Args:
        depth: Bx1xHxW depth (z) per pixel.
        K_inv: Bx3x3 (or 3x3) inverse intrinsics. Taking the inverse rather than K lets callers invert
            once per batch, which matters in training loops that backproject at several scales.

    Returns:
        Bx3xHxW points (x, y, z) in the camera optical frame.
    """
    if depth.dim() != 4 or depth.shape[1] != 1:
        raise ValueError(f"backproject: depth must be Bx1xHxW, got shape {tuple(depth.shape)}")
    b, _, h, w = depth.shape
    K_inv = _as_batched_k(K_inv, b, "backproject: K_inv").to(depth.dtype)
    grid = pixel_grid(h, w, device=depth.device, dtype=depth.dtype)
    homo = torch.cat((grid, torch.ones_like(grid[:, :1])), dim=1).reshape(1, 3, h * w)
    rays = torch.matmul(K_inv, homo.expand(b, 3, h * w))
    return rays.reshape(b, 3, h, w) * depth


def project(points: torch.Tensor, K: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Project camera-frame points to pixels.

    Args:
        points: Bx3xHxW or Bx3xN points in the camera optical frame.
        K: Bx3x3 (or 3x3) intrinsics.
        eps: lower clamp of z used in the division, so that points behind or on the camera plane give
            finite (meaningless) pixels instead of inf/NaN; callers mask them with ``z``.

    Returns:
        ``(pix, z)``: pix is Bx2x... (x, y) pixels, z is Bx1x... the depth in this camera (unclamped,
        so ``z <= 0`` identifies points behind the camera).
    """
    if points.dim() not in (3, 4) or points.shape[1] != 3:
        raise ValueError(f"project: points must be Bx3xHxW or Bx3xN, got shape {tuple(points.shape)}")
    b = points.shape[0]
    K = _as_batched_k(K, b, "project: K").to(points.dtype)
    flat = points.reshape(b, 3, -1)
    cam = torch.matmul(K, flat)
    z = flat[:, 2:3]
    pix = cam[:, :2] / z.clamp(min=eps)
    out_shape = points.shape[2:]
    return pix.reshape(b, 2, *out_shape), z.reshape(b, 1, *out_shape)


def _check_k(K: ArrayLike, fn: str) -> None:
    if tuple(K.shape[-2:]) != (3, 3):
        raise ValueError(f"{fn}: K must be ...x3x3, got shape {tuple(K.shape)}")


def _float_copy(K: ArrayT) -> ArrayT:
    """A floating-point copy (integer numpy K becomes float64) so edits never touch the input."""
    if isinstance(K, torch.Tensor):
        return K.clone() if K.is_floating_point() else K.double()
    K = np.asarray(K)
    return np.array(K, dtype=K.dtype if K.dtype.kind == "f" else np.float64, copy=True)


def scale_intrinsics(K: ArrayT, sx: float, sy: float) -> ArrayT:
    """Intrinsics after resizing the image by factors ``sx`` (width) and ``sy`` (height).

    With pixel centres at integer coordinates, a resize maps x to ``sx * (x + 0.5) - 0.5`` (the rule
    ``cv2.resize`` and ``F.interpolate(align_corners=False)`` follow), so ``fx' = sx fx`` and
    ``cx' = sx (cx + 0.5) - 0.5``. Using ``cx' = sx cx`` instead shifts the principal point by a
    fraction of a pixel, which is a rotation bias at low resolution.

    Accepts numpy or torch, a single 3x3 or a batch ...x3x3; returns the same type (a copy).
    """
    _check_k(K, "scale_intrinsics")
    out = _float_copy(K)
    out[..., 0, 0] = K[..., 0, 0] * sx
    out[..., 0, 1] = K[..., 0, 1] * sx
    out[..., 0, 2] = (K[..., 0, 2] + 0.5) * sx - 0.5
    out[..., 1, 1] = K[..., 1, 1] * sy
    out[..., 1, 2] = (K[..., 1, 2] + 0.5) * sy - 0.5
    return out


def crop_intrinsics(K: ArrayT, x0: float, y0: float) -> ArrayT:
    """Intrinsics after cropping the image so that pixel (x0, y0) becomes the new origin.

    Accepts numpy or torch, a single 3x3 or a batch ...x3x3; returns the same type (a copy).
    """
    _check_k(K, "crop_intrinsics")
    out = _float_copy(K)
    out[..., 0, 2] = K[..., 0, 2] - x0
    out[..., 1, 2] = K[..., 1, 2] - y0
    return out


def invert_intrinsics(K: ArrayT) -> ArrayT:
    """Closed-form inverse of pinhole intrinsics (with skew), batched, numpy or torch.

    Cheaper and better conditioned than a general matrix inverse, and differentiable in torch.
    """
    _check_k(K, "invert_intrinsics")
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    s, cx, cy = K[..., 0, 1], K[..., 0, 2], K[..., 1, 2]
    out = _float_copy(K)
    out[..., :, :] = 0
    out[..., 0, 0] = 1.0 / fx
    out[..., 0, 1] = -s / (fx * fy)
    out[..., 0, 2] = (s * cy - cx * fy) / (fx * fy)
    out[..., 1, 1] = 1.0 / fy
    out[..., 1, 2] = -cy / fy
    out[..., 2, 2] = 1.0
    return out


@overload
def backproject_np(depth: np.ndarray, K: np.ndarray, stride: int = ..., max_depth: float = ...,
                   max_range: float = ..., image: None = ...) -> tuple[np.ndarray, None]: ...


@overload
def backproject_np(depth: np.ndarray, K: np.ndarray, stride: int = ..., max_depth: float = ...,
                   max_range: float = ..., *, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def backproject_np(depth: np.ndarray, K: np.ndarray, stride: int = ..., max_depth: float = ...,
                   max_range: float = ...,
                   image: Optional[np.ndarray] = ...) -> tuple[np.ndarray, Optional[np.ndarray]]: ...


def backproject_np(depth: np.ndarray, K: np.ndarray, stride: int = 1, max_depth: float = math.inf,
                   max_range: float = math.inf,
                   image: Optional[np.ndarray] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Camera-frame points (and colours) of every ``stride``-th pixel of an HxW depth map, in numpy.

    The numpy twin of :func:`backproject` for the point clouds that leave the pipeline (``depth-pose
    run`` PLY files, the node's PointCloud2), where no batch or gradient is wanted. Pixel (u, v) with
    depth z becomes ``z K^-1 [u, v, 1]`` (skew included), in row-major pixel order. Left out: non-finite
    or non-positive depth, ``z >= max_depth`` (along the optical axis) and points farther than
    ``max_range`` (Euclidean). ``image`` (HxWx3 RGB or HxW gray uint8, the depth's size) gives the
    colours, gray replicated to RGB.

    Returns:
        (Nx3 float32 xyz, Nx3 uint8 RGB or None without ``image``).
    """
    d = np.asarray(depth, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth: expected an HxW array, got shape {d.shape}")
    if int(stride) < 1:
        raise ValueError(f"stride: must be >= 1, got {stride}")
    stride = int(stride)
    h, w = d.shape
    z = d[::stride, ::stride]
    ok = np.isfinite(z) & (z > 0)
    if math.isfinite(max_depth):
        ok &= z < max_depth
    rows, cols = np.nonzero(ok)  # row-major, like the pixels
    zs = z[rows, cols].astype(np.float64)
    u, v = cols * float(stride), rows * float(stride)
    Ki = invert_intrinsics(np.asarray(K, dtype=np.float64))
    xyz = np.empty((len(zs), 3), np.float32)
    xyz[:, 0] = (Ki[0, 0] * u + Ki[0, 1] * v + Ki[0, 2]) * zs
    xyz[:, 1] = (Ki[1, 1] * v + Ki[1, 2]) * zs
    xyz[:, 2] = zs
    if math.isfinite(max_range):
        near = np.flatnonzero(xyz[:, 0] ** 2 + xyz[:, 1] ** 2 + xyz[:, 2] ** 2 <= float(max_range) ** 2)
        if len(near) < len(xyz):  # (index arrays: cheaper than boolean masks of Nx3 rows)
            xyz, rows, cols = xyz[near], rows[near], cols[near]
    rgb = None
    if image is not None:
        img = np.asarray(image)
        if img.shape[:2] != (h, w) or img.dtype != np.uint8:
            raise ValueError(f"image: expected uint8 of size {h}x{w} like depth, got {img.shape} {img.dtype}")
        picked = img[rows * stride, cols * stride]
        rgb = np.repeat(picked[:, None], 3, axis=1) if picked.ndim == 1 else picked[:, :3]
    return xyz, rgb


def validate_intrinsics(K: np.ndarray, name: str = "K") -> np.ndarray:
    """Return ``K`` as a 3x3 float64 array or raise ``ValueError`` naming ``name``.

    Checks shape, finiteness, positive focal lengths and the last row ``[0, 0, 1]``; used at the
    numpy/OpenCV boundary so bad calibration fails loudly instead of producing a silent wrong pose.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"{name} must be a 3x3 intrinsics matrix, got shape {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name} contains non-finite values: {K.tolist()}")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{name} must have positive focal lengths, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"{name} last row must be [0, 0, 1], got {K[2].tolist()}")
    return K
