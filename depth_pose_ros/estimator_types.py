"""Configuration and result types of the streaming :class:`~depth_pose_ros.estimator.Estimator`.

Kept apart from the estimator itself so that consumers (ROS node, CLI writers, visualisation) can
type against ``Result`` and build an ``EstimatorConfig`` without constructing networks (importing it
still loads torch, through the two-view and refinement configs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

from depth_pose_ros.geometry.two_view import TwoViewConfig
from depth_pose_ros.refinement import RefinementConfig


@dataclass
class ScaleConfig:
    """Where the absolute (metric) scale comes from.

    ``none``: monocular scale of the network depth (consistent over a sequence, arbitrary in metres).
    ``camera_height``: a ground plane fitted to the depth of the lower image region is forced to lie
    ``camera_height_m`` below the camera (a car-mounted camera over a road).
    ``stereo``: the right image of a rectified pair (``step(..., stereo_image=...)``) with a known
    baseline gives metric disparity; the network depth is scaled to it.
    """

    source: Literal["none", "camera_height", "stereo"] = "none"
    camera_height_m: float = 1.65
    stereo_baseline_m: float = 0.0  # 0: take it from the frame
    smoothing: float = 0.9  # exponential smoothing of the scale factor over frames (0: none)
    ground_region: float = 0.3  # bottom fraction of the image searched for the road plane
    max_plane_tilt_deg: float = 25.0  # plane normal must be within this of the camera's -y axis


def estimator_two_view() -> TwoViewConfig:
    """Two-view settings for streaming at network resolution (~0.1 MPixel).

    Fewer RANSAC samples and refinement points than the full-resolution VO defaults: on KITTI 06
    at 192x640 with DIS flow, 2000 / 2000 give the same accuracy (0.045 deg/frame rotation, 0.43 deg
    translation direction) as 6000 / 30000 in 19 ms instead of 34 ms per frame (docs/benchmarks.md).
    """
    return TwoViewConfig(num_samples=2000, refine_max_points=2000)


@dataclass
class EstimatorConfig:
    """Everything the streaming estimator needs besides the network weights."""

    height: int = 192  # network input size; frames are resized to it and K scaled
    width: int = 640
    device: str = "cpu"
    # fast path: BatchNorm folded into the convolutions, channels_last, reduced-precision autocast
    fast_path: bool = False
    # auto: bf16 (CPU with native bf16) / fp16 (CUDA) when fast_path is on, else fp32
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False  # torch.compile with weight freezing (falls back to eager when unavailable)
    flow_source: Literal["network", "dis"] = "network"  # dis: classical flow (baseline / debugging)
    backward_flow: bool = True  # needed for fb-consistency scores and occlusion masks
    max_gap_s: float = 0.5  # a larger timestamp gap resets the recurrent state and the tracking
    max_depth_m: float = 80.0  # clamp of published depth
    num_threads: int = 0  # torch intra-op threads (0: leave torch's default)
    two_view: TwoViewConfig = field(default_factory=lambda: estimator_two_view())
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)  # GLNet online refinement


@dataclass
class Result:
    """Output of one :meth:`Estimator.step`, at the network resolution.

    Poses: ``T_cur_prev`` maps points of the previous camera into the current camera;
    ``T_world_cam`` is the current camera-to-world pose, world = the first camera after the last reset.
    Translations are in the units of ``depth`` (metres when an absolute scale source is configured).
    """

    stamp: float
    index: int
    image: np.ndarray  # HxWx3 uint8 RGB (or HxW gray) network-resolution input, for visualisation
    K: np.ndarray  # 3x3 intrinsics at the network resolution
    depth: np.ndarray  # HxW float32, finite, in (0, max_depth]
    T_world_cam: np.ndarray  # 4x4
    T_cur_prev: Optional[np.ndarray] = None  # 4x4, None on the first frame after a reset
    flow: Optional[np.ndarray] = None  # HxWx2 float32 forward flow previous -> current
    flow_backward: Optional[np.ndarray] = None  # HxWx2 current -> previous
    rigid_mask: Optional[np.ndarray] = None  # HxW bool, in the previous frame
    inlier_ratio: float = 0.0
    confidence: float = 0.0
    num_inliers: int = 0
    scale: float = 1.0  # absolute scale factor applied to the network depth
    status: str = "first"  # "first", "ok", "pnp_fallback", "constant_velocity"
    reset_reason: str = ""  # why the state was reset before this frame ("" if not)
    dt: float = 0.0  # seconds since the previous frame (0 on the first)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def pose_valid(self) -> bool:
        """True when the relative pose came from geometry (not first frame or a fallback guess)."""
        return self.status in ("ok", "pnp_fallback")

    @property
    def velocity(self) -> tuple[np.ndarray, np.ndarray]:
        """(linear m/s, angular rad/s) of the current camera, from ``T_cur_prev`` and ``dt``."""
        if self.T_cur_prev is None or self.dt <= 0:
            return np.zeros(3), np.zeros(3)
        from scipy.spatial.transform import Rotation

        T_prev_cur = np.linalg.inv(self.T_cur_prev)
        v = T_prev_cur[:3, 3] / self.dt
        w = Rotation.from_matrix(T_prev_cur[:3, :3]).as_rotvec() / self.dt
        return v, w
