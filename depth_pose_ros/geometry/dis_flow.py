"""Classical dense optical flow (OpenCV DIS): the baseline every learned flow is compared with."""
from __future__ import annotations

import cv2
import numpy as np

from depth_pose_ros.utils.image import to_gray_u8

__all__ = ["dis_flow", "to_gray_u8"]

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def dis_flow(image1: np.ndarray, image2: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow from ``image1`` to ``image2`` as HxWx2 float32 (dx, dy) in pixels."""
    if preset not in _PRESETS:
        raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(_PRESETS)}")
    dis = cv2.DISOpticalFlow.create(_PRESETS[preset])
    # the stubs omit None (OpenCV allocates the output flow)
    return dis.calc(to_gray_u8(image1), to_gray_u8(image2), None).astype(np.float32)  # type: ignore[call-overload]
