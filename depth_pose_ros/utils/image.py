"""Camera images as arrays and tensors: the one conversion path of the project.

Every consumer (readers, the Estimator, DIS flow, online refinement, clips for training, stereo scale)
turns an incoming image into 8-bit gray / RGB and into a float tensor through these functions, so a
mono16 or float frame means the same thing everywhere.
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """8-bit copy of an image: uint8 passes through, uint16 is scaled full range (65535 -> 255), float
    images are taken as [0, 1] when their maximum is <= 1, else as [0, 255]. Raises ValueError otherwise."""
    img = np.asarray(image)
    if img.dtype == np.uint8:
        return img
    if img.dtype == np.uint16:
        return ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype in (np.float32, np.float64):
        if not np.all(np.isfinite(img)):
            raise ValueError("image contains NaN or inf")
        return np.clip(img * (255.0 if img.size and img.max() <= 1.0 else 1.0) + 0.5, 0, 255).astype(np.uint8)
    raise ValueError(f"image dtype must be uint8, uint16 or float, got {img.dtype}")


def to_rgb_or_gray(image: np.ndarray) -> np.ndarray:
    """HxW gray or HxWx3 RGB uint8 from HxW / HxWx1 / HxWx3 / HxWx4 (alpha dropped) input."""
    img = np.asarray(image)
    if img.size == 0 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
        raise ValueError(f"image must be HxW or HxWx(1|3|4), got shape {img.shape}")
    img = to_uint8(img)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    return np.ascontiguousarray(img)


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """HxW uint8 gray of any image :func:`to_rgb_or_gray` accepts (RGB weights of OpenCV)."""
    img = to_rgb_or_gray(image)
    return img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``image`` (HxW or HxWx3 uint8) with ``channels`` (1: gray, 3: RGB) channels."""
    if channels == 1 and image.ndim == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if channels == 3 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return image


def image_to_tensor(image: Any, channels: Optional[int] = None, device: Any = None):
    """CxHxW float32 tensor in [0, 1] from an image array (any :func:`to_rgb_or_gray` input), or a CxHxW
    float tensor passed through; ``channels`` (1 or 3) converts gray <-> RGB when given."""
    import torch

    if isinstance(image, torch.Tensor):
        x = image.float()
        if channels is not None and x.shape[0] != channels:
            if channels == 3 and x.shape[0] == 1:
                x = x.expand(3, -1, -1).contiguous()
            elif channels == 1 and x.shape[0] == 3:
                x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(3, 1, 1)).sum(0, keepdim=True)
            else:
                raise ValueError(f"image has {x.shape[0]} channels, the model expects {channels}")
        return x if device is None else x.to(device)
    img = to_rgb_or_gray(image)
    if channels is not None:
        img = match_channels(img, channels)
    arr = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(arr))
    return (x if device is None else x.to(device)).to(torch.float32).div_(255.0)
