"""The one object that carries a camera frame between layers (no dicts of ad-hoc keys crossing layers).

Conventions (shared by every reader and by the synthetic world):
* ``image`` is HxWx3 uint8 RGB or HxW uint8 gray, exactly as stored (no resizing).
* ``K`` is the 3x3 float64 pinhole matrix of ``image`` (pixel centres at integer coordinates).
* ``stamp`` is in seconds (sensor time when known, else index / nominal rate).
* ``T_world_cam`` is the 4x4 ground-truth camera-to-world pose (maps points of this camera's
  optical frame into the world frame; KITTI/TUM GT files give exactly this).
* ``depth`` is HxW float32 metres along the optical axis (z), 0 where unknown.
* ``flow_next`` / ``flow_prev``: HxWx2 float32 GT flow (dx, dy) from this frame to the next /
  previous frame, when the source knows it (synthetic world).
* ``distortion`` is the lens distortion of ``image`` as stored (None: pinhole / rectified). Readers never
  undistort; :func:`undistort_frame` gives the frame the node's Estimator sees (same K and size).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from depth_pose_ros.geometry.distortion import Distortion, Undistorter


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


#: The Undistorter of this process for :func:`undistort_frame` (maps cached per camera, as in the Estimator).
_UNDISTORTER = Undistorter()


def undistort_frame(frame: Frame, undistorter: Optional[Undistorter] = None) -> Frame:
    """``frame`` as the node's Estimator sees it: the image undistorted by
    :class:`~depth_pose_ros.geometry.distortion.Undistorter` (the code path of ``Estimator._prepare``: same K,
    same size, bilinear), ``distortion=None``. Per-pixel ground truth (depth, occlusion / moving masks) goes
    through the same maps with nearest-neighbour sampling, so it stays aligned with the image; 0 / False where
    the undistorted view sees beyond the recorded image. A frame without distortion is returned as is.

    Raises:
        ValueError: the frame has a stereo image or ground-truth flow, which the camera's maps alone cannot
            undistort (no reader gives either together with a distortion).
    """
    if frame.distortion is None:
        return frame
    if frame.stereo_image is not None or frame.flow_next is not None or frame.flow_prev is not None:
        raise ValueError(f"{frame.source}: frame {frame.index} has a lens distortion and a stereo image or "
                         "ground-truth flow; undistorting those is not supported")
    u = undistorter if undistorter is not None else _UNDISTORTER
    K, dist = frame.K, frame.distortion

    def nearest(x: Optional[np.ndarray]) -> Optional[np.ndarray]:
        if x is None:
            return None
        if x.dtype == bool:
            return u(x.astype(np.uint8), K, dist, cv2.INTER_NEAREST).astype(bool)
        return u(x, K, dist, cv2.INTER_NEAREST)

    return dataclasses.replace(frame, image=u(frame.image, K, dist), depth=nearest(frame.depth),
                               occlusion_next=nearest(frame.occlusion_next),
                               moving_mask=nearest(frame.moving_mask), distortion=None)
