"""Classical dense optical flow (OpenCV DIS): the baseline every learned flow is compared with."""
from __future__ import annotations

import cv2
import numpy as np

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_gray_u8(image: np.ndarray) -> np.ndarray:
    """HxW uint8 gray from HxW / HxWx1 / HxWx3 (RGB) uint8 or float [0,1] input."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    elif img.ndim == 3:
        img = img[..., 0]
    return np.ascontiguousarray(img)


def dis_flow(image1: np.ndarray, image2: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow from ``image1`` to ``image2`` as HxWx2 float32 (dx, dy) in pixels."""
    if preset not in _PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(_PRESETS)}")
    dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    return dis.calc(to_gray_u8(image1), to_gray_u8(image2), None).astype(np.float32)
