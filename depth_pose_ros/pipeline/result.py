"""What one :meth:`Estimator.step` hands out (no torch, no ROS: consumers type against it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:  # a type only: importing geometry.two_view imports torch and OpenCV
    from depth_pose_ros.geometry.two_view import TwoViewResult

#: Statuses whose relative pose was measured (geometry, PnP or the model's PoseNet), not guessed.
MEASURED_STATUSES = ("ok", "pnp_fallback", "low_parallax", "posenet")
#: Sizes the published depth can have (the node's ``output.size``, ``depth-pose run --output-size``):
#: ``camera`` -- registered to the camera image (its size and K); ``network`` -- the network's size and K.
OUTPUT_SIZES = ("camera", "network")


def output_depth(result: Result, K_cam: np.ndarray, size: tuple[int, int],
                 output_size: str = "camera") -> tuple[np.ndarray, np.ndarray]:
    """(depth, its K) of ``result`` as published at ``output_size`` (``OUTPUT_SIZES``).

    The one place the node and ``depth-pose run`` turn the network depth into what they hand out, so
    both write the same pixels: ``camera`` registers it to the (undistorted) camera image of intrinsics
    ``K_cam`` and ``size`` (height, width) through ``geometry.registration.register_depth``.
    """
    if output_size == "network":
        return result.depth, result.K
    if output_size != "camera":
        raise ValueError(f"output size {output_size!r} is not one of {list(OUTPUT_SIZES)}")
    from depth_pose_ros.geometry.registration import register_depth

    K_cam = np.asarray(K_cam, dtype=np.float64)
    return register_depth(result.depth, result.K, K_cam, (int(size[0]), int(size[1]))), K_cam


def triangulated_points(result: Result, max_range: float = np.inf) -> np.ndarray:
    """Nx3 float32: the points the two-view geometry triangulated this step, in the *current* camera's optical
    frame and in the units of ``result.depth`` (metres once a metric scale source has converged).

    Why publish them: they are measured (two rays meeting, checked for cheirality, parallax and inlier
    support), not predicted, so a robot can treat them as sparse but reliable obstacles beside the dense
    network depth. Only a step whose pose the geometry measured (status ``ok``) has them; otherwise (first
    frame, low parallax, PnP, constant velocity) the array is empty. The two-view points are in the previous
    camera with a unit baseline; the step's translation length puts them in the published units and
    ``T_cur_prev`` moves them into the current camera. Points farther than ``max_range`` (Euclidean, as
    the dense cloud's ``cloud.max_range_m``) or behind the camera are left out.
    """
    empty = np.zeros((0, 3), np.float32)
    points = getattr(result.two_view, "points", None)
    if result.status != "ok" or result.T_cur_prev is None or points is None or len(points) == 0:
        return empty
    T = np.asarray(result.T_cur_prev, dtype=np.float64)
    baseline = float(np.linalg.norm(T[:3, 3]))
    if not np.isfinite(baseline) or baseline <= 0:
        return empty
    xyz = (np.asarray(points, dtype=np.float64) * baseline) @ T[:3, :3].T + T[:3, 3]
    keep = np.all(np.isfinite(xyz), axis=1) & (xyz[:, 2] > 0) & (np.linalg.norm(xyz, axis=1) <= max_range)
    return xyz[keep].astype(np.float32)


@dataclass
class Result:
    """Output of one :meth:`Estimator.step`.

    Images and depth are at the network resolution (``K`` is their intrinsics; :func:`output_depth`
    registers the depth to the camera image); flows are at the
    geometry resolution (``K_pose``). Poses follow ``docs/architecture.md``: ``T_cur_prev`` maps points
    of the previous camera into the current camera; ``T_world_cam`` is the current camera-to-world
    pose, world = the first camera after the last odometry restart. Translations are in the units of
    ``depth`` (metres when an absolute scale source has converged, see ``scale_converged``).
    """

    stamp: float
    index: int
    image: np.ndarray  # HxWx3 uint8 RGB (or HxW gray) network-resolution input, for visualisation
    K: np.ndarray  # 3x3 intrinsics at the network resolution
    depth: np.ndarray  # HxW float32, finite, in (0, max_depth]
    T_world_cam: np.ndarray  # 4x4
    T_cur_prev: Optional[np.ndarray] = None  # 4x4, None on the first frame after a reset
    flow: Optional[np.ndarray] = None  # HxWx2 float32 forward flow previous -> current (geometry size)
    flow_backward: Optional[np.ndarray] = None  # HxWx2 current -> previous
    K_pose: Optional[np.ndarray] = None  # 3x3 intrinsics of the flow / geometry resolution
    inlier_ratio: float = 0.0
    confidence: float = 0.0
    num_inliers: int = 0
    depth_factor: float = 1.0  # factor applied to the network depth (monocular units -> published units)
    metres_per_unit: float = 1.0  # factor from the geometry's units to metres (1 without a metric source)
    scale_converged: bool = True  # False while a metric scale source is still warming up
    plane_inlier_ratio: float = 0.0  # camera_height source: share of the road points on the last plane fit
    step_length_source: str = ""  # what set this step's translation length (see Estimator docs)
    status: str = "first"  # a TwoViewStatus value
    reset_reason: str = ""  # why the state was reset before this frame ("" if not)
    dt: float = 0.0  # seconds since the previous frame (0 on the first)
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: the step's two-view result (None without a two-view fit: first frame, low parallax, PoseNet)
    two_view: Optional[TwoViewResult] = field(default=None, repr=False)

    @property
    def rigid_mask(self) -> Optional[np.ndarray]:
        """HxW bool at the geometry size, in the previous frame: pixels whose flow the camera motion
        explains (None without a two-view pose). Computed on first use."""
        return getattr(self.two_view, "rigid_mask", None)

    @property
    def pose_valid(self) -> bool:
        """True when the relative pose was measured (not a first frame or a constant-velocity guess)."""
        return self.status in MEASURED_STATUSES
