"""The one object that carries a camera frame between layers (DESIGN.md: no ad-hoc dicts).

Conventions (shared by every reader and by the synthetic world):
* ``image`` is HxWx3 uint8 RGB or HxW uint8 gray, exactly as stored (no resizing).
* ``K`` is the 3x3 float64 pinhole matrix of ``image`` (pixel centres at integer coordinates).
* ``stamp`` is in seconds (sensor time when known, else index / nominal rate).
* ``T_world_cam`` is the 4x4 ground-truth camera-to-world pose (maps points of this camera's
  optical frame into the world frame; KITTI/TUM GT files give exactly this).
* ``depth`` is HxW float32 metres along the optical axis (z), 0 where unknown.
* ``flow_next`` / ``flow_prev``: HxWx2 float32 GT flow (dx, dy) from this frame to the next /
  previous frame, when the source knows it (synthetic world).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from depth_pose_ros.geometry.distortion import Distortion


@dataclass
class Frame:
    """One camera frame with optional ground truth."""

    image: np.ndarray
    K: np.ndarray
    stamp: float
    index: int = 0
    T_world_cam: Optional[np.ndarray] = None
    depth: Optional[np.ndarray] = None
    flow_next: Optional[np.ndarray] = None
    flow_prev: Optional[np.ndarray] = None
    occlusion_next: Optional[np.ndarray] = None  # HxW bool: pixel not visible in the next frame
    moving_mask: Optional[np.ndarray] = None  # HxW bool: pixel on an independently moving object
    stereo_image: Optional[np.ndarray] = None  # right image of a rectified stereo pair
    stereo_baseline: Optional[float] = None  # metres, right camera at +x of this one
    distortion: Optional[Distortion] = None  # lens distortion of ``image`` (None: pinhole / rectified)
    source: str = ""

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def is_gray(self) -> bool:
        return self.image.ndim == 2 or self.image.shape[2] == 1
