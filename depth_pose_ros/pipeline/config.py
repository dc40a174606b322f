"""Settings of the streaming :class:`~depth_pose_ros.pipeline.estimator.Estimator`: the one source of truth.

Every default of the pipeline is declared here, once. The node's parameter table, the model folder's
``estimator.yaml``, ``--set key=value`` overrides and training configs all *override* these
dataclasses; they never restate a default (see ``docs/architecture.md``, "Settings"). This module
imports neither torch nor OpenCV, so parsers and the ROS layer can build a config cheaply.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from depth_pose_ros.geometry.two_view_config import TwoViewConfig, loss_two_view

#: Where the optical flow of the pose comes from, in every part of the project (Estimator, node, VO,
#: training geometry): ``network`` -- the model's own flow decoder (a model without one, e.g.
#: monodepth2, gives its PoseNet's pose instead); ``dis`` -- classical OpenCV DIS flow. The classical VO
#: also knows ``gt`` (the synthetic world's exact flow).
FLOW_SOURCES = ("network", "dis")
FlowSource = Literal["network", "dis"]


#: How a camera image becomes the network input (K follows exactly in every mode):
#: ``aspect`` -- the whole image, resized to a network size chosen per camera size: the camera's aspect
#: ratio at about the trained pixel count (``height * width``), each side a multiple the network needs;
#: the small aspect residue of that rounding is a per-axis resize. Every camera pixel gets a depth.
#: ``crop`` -- resize until the image covers ``height x width``, centre crop: the border outside the crop
#: has no depth. ``stretch`` -- the whole image resized to ``height x width``, each axis alone (the
#: world is stretched for cameras of another aspect ratio).
INPUT_FITS = ("aspect", "crop", "stretch")
InputFit = Literal["aspect", "crop", "stretch"]


@dataclass
class ScaleConfig:
    """Where the absolute (metric) scale comes from.

    ``none``: the monocular scale (consistent over a sequence, arbitrary in metres).
    ``camera_height``: a road plane fitted (RANSAC, tilt limit) to the *triangulated* points of the
    lower image region must lie ``camera_height_m`` below the camera (a car-mounted camera over a road).
    ``stereo``: the right image of a rectified pair (``step(..., stereo_image=...)``) with a known
    baseline gives metric disparity.
    """

    source: Literal["none", "camera_height", "stereo"] = "none"
    camera_height_m: float = 1.65
    stereo_baseline_m: float = 0.0  # 0: take it from the frame
    window: int = 30  # metric observations combined (median in the log domain) into the factor
    ground_region: float = 0.3  # bottom fraction of the image searched for the road plane
    max_plane_tilt_deg: float = 25.0  # plane normal must be within this of the camera's -y axis
    min_plane_inliers: float = 0.4  # fraction of the region's points on the plane for a usable fit
    warmup_frames: int = 5  # metric observations needed before the scale counts as converged


@dataclass
class PoseConfig:
    """Resolution of the two-view geometry and how consecutive steps get their translation length.

    The geometry runs on its own image size, independent of the network's: the flow (DIS, or the
    network's flow upsampled with its values scaled) is computed at ``image_fraction`` x the camera image,
    kept between ``min_width`` (never above the camera's width) and ``max_width`` pixels wide, with K
    scaled to match. A 64x192 network therefore no longer
    limits the pose accuracy (measured curve in ``docs/benchmarks.md``).
    """

    image_fraction: float = 0.75  # geometry image size as a fraction of the input (camera) image
    max_width: int = 640  # ... but at most this wide (cost bound for large cameras)
    min_width: int = 320  # ... and at least this wide, or the camera's own width if smaller (small cameras)
    # Translation length of each step: ``geometry`` carries the scale of the previous pair forward
    # through the points both pairs triangulate in their shared frame (classical monocular VO), falling
    # back to the network depth, then to constant velocity; ``depth`` aligns the network depth every step.
    scale_propagation: Literal["geometry", "depth"] = "geometry"
    min_shared_points: int = 30  # points seen by both pairs needed to propagate the scale
    max_scale_jump: float = 3.0  # a propagated length that differs more than this factor is rejected
    # Low parallax: median flow left after removing the rotation below this (px at the geometry size):
    # nothing to triangulate; the step gets the rotation only (status "low_parallax").
    min_parallax_px: float = 0.5
    # Below this parallax (px at the geometry size) the two-view module runs its RANSAC restarts
    # (two_view.restarts): with little parallax a rotation / translation trade-off explains the flow almost
    # as well as the true motion. inf (default): always; a finite value saves time on well-conditioned
    # pairs, but no single value was right for every data set measured (docs/benchmarks.md).
    restart_below_parallax_px: float = math.inf
    dis_preset: Literal["ultrafast", "fast", "medium"] = "medium"


@dataclass
class RefinementConfig:
    """Online refinement settings (GLNet; the ``refinement:`` block of the estimator / eval config)."""

    enabled: bool = False
    iterations: int = 20  # optimisation steps per refinement
    lr: float = 1e-5
    window: int = 3  # frames of the clip refined on (>= 3: a target needs t-1 and t+1)
    every: int = 1  # estimator: refine every N frames once the window is full
    param_weight: float = 100.0  # relative L2 of the parameters to the trained weights
    output_weight: float = 0.1  # L2 of log-depth to the pre-refinement prediction
    photometric_weight: float = 1.0
    smoothness_weight: float = 1e-3
    flow_weight: float = 0.5  # flow photometric loss (only with a flow decoder)
    two_view: TwoViewConfig = field(default_factory=loss_two_view)  # the training loop's preset

    def __post_init__(self) -> None:
        if self.window < 3:
            raise ValueError(f"refinement.window must be >= 3 (a target needs t-1 and t+1), got {self.window}")
        if self.iterations < 0:
            raise ValueError(f"refinement.iterations must be >= 0, got {self.iterations}")
        if self.every < 1:
            raise ValueError(f"refinement.every must be >= 1, got {self.every}")


def estimator_two_view() -> TwoViewConfig:
    """Two-view settings for streaming: fewer RANSAC samples and refinement points than the offline VO
    defaults, which cost more and gain nothing measurable at the geometry size, and two RANSAC starts
    (small motions are ambiguous for a single one; docs/benchmarks.md)."""
    return TwoViewConfig(num_samples=4000, refine_max_points=3000, restarts=2)


@dataclass
class EstimatorConfig:
    """Everything the streaming estimator needs besides the network weights."""

    # The trained network input size: the pixel count (and, for input_fit crop / stretch, the exact size)
    # of the network input; frames are resized (crop: then centre-cropped) to the network input, K following.
    height: int = 192
    width: int = 640
    input_fit: InputFit = "aspect"  # see INPUT_FITS
    device: str = "cpu"
    # fast path: BatchNorm folded into the convolutions, channels_last, reduced-precision autocast
    fast_path: bool = False
    # auto: bf16 (CPU with native bf16) / fp16 (CUDA) when fast_path is on, else fp32
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    compile: bool = False  # torch.compile with weight freezing (falls back to eager when unavailable)
    flow_source: FlowSource = "network"  # see FLOW_SOURCES
    backward_flow: bool = True  # needed for fb-consistency scores and occlusion masks
    max_gap_s: float = 0.5  # a larger timestamp gap resets the recurrent state and the tracking
    max_depth_m: float = 80.0  # clamp of published depth
    num_threads: int = 0  # torch intra-op threads (0: leave torch's default)
    pose: PoseConfig = field(default_factory=PoseConfig)
    # pixel thresholds are for the camera image; the Estimator scales them to the geometry image
    two_view: TwoViewConfig = field(default_factory=estimator_two_view)
    scale: ScaleConfig = field(default_factory=ScaleConfig)
    refinement: RefinementConfig = field(default_factory=RefinementConfig)  # GLNet online refinement

    def __post_init__(self) -> None:
        if self.input_fit not in INPUT_FITS:
            raise ValueError(f"input_fit: {self.input_fit!r} is not one of {list(INPUT_FITS)}")
        if self.flow_source not in FLOW_SOURCES:
            raise ValueError(f"flow_source: {self.flow_source!r} is not one of {list(FLOW_SOURCES)}")
        if self.height <= 0 or self.width <= 0 or self.height % 32 or self.width % 32:
            raise ValueError(f"network input size must be positive multiples of 32, got {self.height}x{self.width}")
        if not 0.0 < self.pose.image_fraction <= 1.0:
            raise ValueError(f"pose.image_fraction must be in (0, 1], got {self.pose.image_fraction}")
        if not 32 <= self.pose.min_width <= self.pose.max_width:
            raise ValueError(f"pose.min_width / max_width must satisfy 32 <= min <= max, got "
                             f"{self.pose.min_width} / {self.pose.max_width}")
        if self.max_gap_s <= 0 or self.max_depth_m <= 0:
            raise ValueError("max_gap_s and max_depth_m must be > 0")
