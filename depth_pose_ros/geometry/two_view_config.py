"""Settings and status vocabulary of the two-view pose module (``two_view``), importable without
torch or OpenCV so that configuration types (pipeline settings, command-line parsers) stay light."""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any

#: Robust estimators of the essential matrix (names; ``two_view.RANSAC_METHODS`` maps them to OpenCV).
RANSAC_METHOD_NAMES = ("ransac", "lmeds", "usac_default", "usac_magsac", "usac_accurate")
OCCLUSION_METHODS = ("fb", "range", "both", "none")


class TwoViewStatus(str, Enum):
    """How a relative pose was obtained (a ``str`` enum: ``status == "ok"`` works)."""

    OK = "ok"  # essential matrix from flow
    PNP_FALLBACK = "pnp_fallback"  # degenerate for E; PnP-RANSAC from frame-1 depth + flow
    # odometry (Estimator, VO) only: no usable pose, the last step repeated (pipeline.odometry_policy)
    CONSTANT_VELOCITY = "constant_velocity"
    FIRST = "first"  # first frame of a sequence: identity by definition
    LOW_PARALLAX = "low_parallax"  # too little parallax to triangulate: rotation only, no translation
    POSENET = "posenet"  # the model's PoseNet (methods without a flow decoder), not geometry
    # two_view only: nothing usable (identity, ``message`` says why); what a step does then is the caller's
    # decision (the odometry repeats its last step and reports constant_velocity)
    FAILED = "failed"


@dataclass
class TwoViewConfig:
    """Parameters of the two-view pose module (defaults tuned on KITTI odometry 06 with DIS flow)."""

    top_ratio: float = 0.2  # fraction of all pixels kept after scoring
    num_samples: int = 6000  # correspondences drawn from the kept pixels for RANSAC
    ransac_method: str = "usac_magsac"  # one of RANSAC_METHODS
    ransac_threshold_px: float = 1.0  # epipolar inlier threshold (pixels)
    confidence: float = 0.999
    max_iters: int = 1000  # RANSAC iterations (USAC stops earlier once confident)
    min_mean_flow_px: float = 0.5  # below: no usable parallax -> fallback
    min_inliers: int = 100  # fewer E (or PnP) inliers -> fallback
    min_triangulation_angle_deg: float = 0.05  # rays closer to parallel carry no depth
    min_triangulated: int = 30  # fewer well-conditioned points -> translation unreliable -> fallback
    max_reprojection_px: float = 2.0  # triangulation reprojection gate
    score_eps: float = 0.1  # score = non_occluded / (score_eps + fb inconsistency in px)
    fb_alpha1: float = 0.01  # UnFlow occlusion test (relative part)
    fb_alpha2: float = 0.5  # UnFlow occlusion test (absolute part, px^2)
    occlusion: str = "fb"  # which occlusion cue gates the score: fb | range | both | none
    range_threshold: float = 0.5  # range-map value below which a pixel is occluded
    refine: bool = True  # LM refinement of (R, t) on many inliers after RANSAC
    refine_max_points: int = 10000  # correspondences used by the refinement
    refine_loss_scale_px: float = 0.25  # Huber scale of the refinement (pixels)
    rigid_threshold_px: float = 1.0  # Sampson distance below which a pixel is called rigid
    pnp_threshold_px: float = 2.0  # PnP-RANSAC reprojection threshold
    pnp_iterations: int = 200
    scale_inlier_rel: float = 0.15  # relative tolerance for the scale-alignment inlier ratio
    seed: int = 0  # sampling seed (the same inputs always give the same pose)
    restarts: int = 1  # essential-matrix fits from this many seeds; the lowest Sampson cost wins

    def __post_init__(self) -> None:
        if self.ransac_method not in RANSAC_METHOD_NAMES:
            raise ValueError(f"TwoViewConfig.ransac_method={self.ransac_method!r}; choose one of "
                             f"{sorted(RANSAC_METHOD_NAMES)}")
        if self.occlusion not in OCCLUSION_METHODS:
            raise ValueError(f"TwoViewConfig.occlusion={self.occlusion!r}; choose one of {OCCLUSION_METHODS}")
        if not 0.0 < self.top_ratio <= 1.0:
            raise ValueError(f"TwoViewConfig.top_ratio must be in (0, 1], got {self.top_ratio}")
        if self.restarts < 1:
            raise ValueError(f"TwoViewConfig.restarts must be >= 1, got {self.restarts}")
        if self.num_samples < 8:
            raise ValueError(f"TwoViewConfig.num_samples must be >= 8, got {self.num_samples}")
        for name in ("ransac_threshold_px", "score_eps", "rigid_threshold_px", "pnp_threshold_px",
                     "refine_loss_scale_px"):
            if getattr(self, name) <= 0:
                raise ValueError(f"TwoViewConfig.{name} must be positive, got {getattr(self, name)}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"TwoViewConfig.confidence must be in (0, 1), got {self.confidence}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TwoViewConfig:
        """Build from a (YAML) mapping; unknown keys raise, so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"TwoViewConfig: unknown keys {unknown}; known keys are {sorted(known)}")
        return cls(**values)


def loss_two_view() -> TwoViewConfig:
    """Cheap two-view settings for poses inside a loss: the training loop's and the online refinement's
    (few samples, plain RANSAC, no LM refinement).

    The pose only has to be good enough to supervise depth; thousands of samples and the refinement
    buy sub-0.1 degree accuracy that the photometric loss cannot use, at several times the cost. One
    preset here (the lowest layer both use), so what a model is trained with and what it is refined
    with online cannot drift apart.
    """
    return TwoViewConfig(top_ratio=0.25, num_samples=1000, ransac_method="ransac", max_iters=200,
                         refine=False, min_inliers=50, min_triangulated=20)
