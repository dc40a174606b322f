"""Odometry policy of the streaming Estimator: how each step's pose status becomes a motion and its length.

The Estimator measures (flow, parallax, two-view geometry, PoseNet, metric observations); this module
decides what the odometry does with those measurements, in one place and without a network, torch or
OpenCV, so that every decision can be tested on hand-built inputs:

* **status -> motion**: a two-view pose (``ok``) takes its rotation and direction; ``pnp_fallback`` takes
  the PnP translation (in network-depth units); too little parallax keeps the rotation only; the model's
  PoseNet (methods without flow) takes its own translation; a pair the geometry ``failed`` on repeats
  the last step (status ``constant_velocity``) -- the one constant-velocity memory of the project (the
  two-view module keeps none; the classical VO uses this one too);
* **step length** of an ``ok`` pose: carried from the previous pair through the points both pairs
  triangulate (:class:`~depth_pose_ros.pipeline.scale_chain.ScaleChain`, ``scale_propagation:
  geometry``), else the network depth aligned to the triangulation (``depth``), else the last step's
  length (``constant_velocity``);
* **units**: the factor from the network depth to the odometry's units (the first pair after a restart
  defines the units: those of the network depth; geometry-carried lengths keep the depth in them), and
  the metric factor from the odometry's units to metres (the median of the metric source's observations);
* **restarts**: what a reset forgets (a time gap keeps the units, a restart of the data does not).
"""
from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import Optional, Protocol, TypeGuard

import numpy as np

from depth_pose_ros.geometry.se3_np import make_pose_np
from depth_pose_ros.geometry.two_view_config import TwoViewStatus
from depth_pose_ros.pipeline.scale_chain import ScaleChain, TriangulatedPair

__all__ = ["Motion", "OdometryPolicy", "RobustFactor", "STEP_STATUSES", "Step", "TwoViewLike"]

#: Statuses an odometry step reports: the two-view ``failed`` never, it becomes ``constant_velocity``.
STEP_STATUSES = tuple(s for s in TwoViewStatus if s != TwoViewStatus.FAILED)
#: What can set a step's translation length (``Result.step_length_source``); "" on a first frame.
STEP_LENGTH_SOURCES = ("geometry", "depth", "pnp", "posenet", "constant_velocity", "none")


class RobustFactor:
    """A positive factor observed once per frame: the median of the last ``window`` observations in the
    log domain (scale errors are multiplicative, and single-frame fits have outliers an average would
    follow). ``converged`` once ``warmup`` observations are in."""

    def __init__(self, window: int, warmup: int = 1) -> None:
        self.window = max(int(window), 1)
        self.warmup = warmup
        self._logs: deque[float] = deque(maxlen=self.window)
        self.count = 0

    def reset(self) -> None:
        self._logs.clear()
        self.count = 0

    @property
    def value(self) -> Optional[float]:
        return float(np.exp(np.median(self._logs))) if self._logs else None

    @property
    def converged(self) -> bool:
        return self.count >= self.warmup

    def push(self, s: Optional[float]) -> Optional[float]:
        """Add one observation (ignored when None / non-finite / non-positive); the filtered value."""
        if s is not None and np.isfinite(s) and s > 0:
            self._logs.append(float(np.log(s)))
            self.count += 1
        return self.value


class TwoViewLike(TriangulatedPair, Protocol):
    """What the policy reads of a two-view result (``geometry.two_view.TwoViewResult``; a protocol so
    that this module imports neither torch nor OpenCV and tests can hand-build one): the scale chain's
    ``R``, ``t``, ``points``, ``points_pixels`` and these."""

    status: TwoViewStatus
    confidence: float
    num_inliers: int
    baseline_in_depth_units: Optional[float]
    inliers: np.ndarray


@dataclass
class Motion:
    """One step: rotation, unit translation direction and length in the odometry's units."""

    R: np.ndarray
    t: np.ndarray
    length: float

    @property
    def T_cur_prev(self) -> np.ndarray:
        return make_pose_np(self.R, self.t * self.length)

    @classmethod
    def still(cls) -> Motion:
        """No motion at all (the identity): a first step without a velocity to repeat."""
        return cls(np.eye(3), np.zeros(3), 0.0)


@dataclass
class Step:
    """The policy's decision for one step: the motion and what the Estimator reports about it (the
    defaults are those of a ``Result`` the step says nothing about)."""

    motion: Motion
    status: str  # a TwoViewStatus value
    step_length_source: str = ""  # one of STEP_LENGTH_SOURCES ("" on a first frame)
    confidence: float = 0.0
    num_inliers: int = 0
    inlier_ratio: float = 0.0


def _positive(x: Optional[float]) -> TypeGuard[float]:
    return x is not None and bool(np.isfinite(x)) and x > 0


class OdometryPolicy:
    """The odometry's memory (last step, scale chain, unit factors) and the rules that turn one step's
    measurement into its motion. One per Estimator (or VO run); all lengths are in the odometry's units."""

    def __init__(self, scale_propagation: str = "geometry", min_shared_points: int = 30,
                 max_scale_jump: float = 3.0, metric_window: int = 30, metric_warmup: int = 1,
                 metric_source: str = "none") -> None:
        self.scale_propagation = scale_propagation
        self.metric_source = metric_source
        self.chain = ScaleChain(min_shared_points, max_scale_jump)
        self.depth_units = RobustFactor(window=10)  # network depth -> odometry units
        self.metric = RobustFactor(metric_window, warmup=max(metric_warmup, 1))  # odometry units -> metres
        self.velocity: Optional[Motion] = None  # the one constant-velocity memory

    # ----------------------------------------------------------------------------------- state
    def reset(self, keep_units: bool = False) -> None:
        """Forget the last step and the scale chain; ``keep_units=False`` also forgets both factors (a
        restart of the odometry), ``True`` keeps them (a time gap: the trajectory continues in its units)."""
        self.velocity = None
        self.chain.reset()
        if not keep_units:
            self.depth_units.reset()
            self.metric.reset()

    @property
    def depth_factor(self) -> float:
        """Network depth -> odometry units (1 until the first pair defined the units)."""
        return self.depth_units.value or 1.0

    @property
    def metric_factor(self) -> float:
        """Odometry units -> metres (1 before the metric source's first observation)."""
        return self.metric.value or 1.0

    @property
    def scale_converged(self) -> bool:
        """Whether the published units are final: always without a metric source."""
        return self.metric_source == "none" or self.metric.converged

    def observe_metric(self, factor: Optional[float]) -> None:
        """One observation of the metric factor (None / non-finite / non-positive: none this step)."""
        self.metric.push(factor)

    def T_cur_prev(self, motion: Motion) -> np.ndarray:
        """The step's ``T_cur_prev`` at the metric factor known now: each step enters the trajectory at
        the factor of its time and is never rescaled later, so the odometry stays continuous (REP 105)."""
        out = np.array(motion.T_cur_prev, dtype=np.float64, copy=True)
        out[:3, 3] *= self.metric_factor
        return out

    # -------------------------------------------------------------------------------- decisions
    def first(self) -> Step:
        """A first frame (sequence start or restart): no pair, no motion."""
        return Step(Motion.still(), TwoViewStatus.FIRST.value)

    def posenet(self, T_cur_prev: np.ndarray) -> Step:
        """The model's PoseNet (methods without flow): its translation is in network-depth units."""
        T = np.asarray(T_cur_prev)
        length = float(np.linalg.norm(T[:3, 3]))
        t = T[:3, 3] / length if length > 1e-12 else np.zeros(3)
        motion = self._remember(Motion(T[:3, :3], t, length * self.depth_factor))
        return Step(motion, TwoViewStatus.POSENET.value, "posenet", confidence=1.0)

    def low_parallax(self, R: np.ndarray) -> Step:
        """Too little parallax to triangulate: the rotation only; the chain breaks (nothing triangulated)."""
        self.chain.reset()
        return Step(self._remember(Motion(R, np.zeros(3), 0.0)), TwoViewStatus.LOW_PARALLAX.value, "none")

    def two_view(self, tv: TwoViewLike, K: np.ndarray) -> Step:
        """The motion of a two-view result (``K``: the intrinsics of its pixels, for the scale chain)."""
        f = self.depth_factor
        baseline = tv.baseline_in_depth_units
        confidence, num_inliers = float(tv.confidence), int(tv.num_inliers)
        inlier_ratio = float(tv.inliers.mean()) if tv.inliers.size else 0.0

        def step(motion: Motion, status: str, source: str) -> Step:
            return Step(motion, status, source, confidence=confidence, num_inliers=num_inliers,
                        inlier_ratio=inlier_ratio)

        if tv.status != TwoViewStatus.OK:
            self.chain.reset()
            if tv.status == TwoViewStatus.PNP_FALLBACK:  # translation measured in network units directly
                assert baseline is not None  # the PnP fallback always has its translation's length
                return step(self._remember(Motion(tv.R, tv.t, float(baseline) * f)), tv.status.value, "pnp")
            return step(self.constant_velocity(), TwoViewStatus.CONSTANT_VELOCITY.value, "constant_velocity")
        last = self.velocity.length if self.velocity is not None else None
        length: Optional[float] = None
        source = ""
        if self.scale_propagation == "geometry":
            length = self.chain.propagate(tv, last)
            source = "geometry" if length is not None else ""
        if length is None and _positive(baseline):
            length, source = float(baseline) * f, "depth"
        if length is None:
            length, source = (last if last is not None else 0.0), "constant_velocity"
        if source == "geometry" and _positive(baseline):
            self.depth_units.push(length / float(baseline))  # keep the depth in the odometry's units
        elif self.depth_units.value is None and source == "depth":
            self.depth_units.push(1.0)  # the first pair defines the units: those of the network depth
        self.chain.advance(tv, K, length)
        return step(self._remember(Motion(tv.R, tv.t, length)), tv.status.value, source)

    def constant_velocity(self) -> Motion:
        """The last step repeated (the identity when there is none); the memory itself is unchanged."""
        return self.velocity if self.velocity is not None else Motion.still()

    def remember(self, motion: Motion) -> Motion:
        """Keep ``motion`` as the step a later failed pair repeats (for callers that choose their own
        lengths, e.g. the classical VO's ground-truth scale)."""
        return self._remember(motion)

    def non_finite(self, step: Step) -> Step:
        """A step whose pose came out non-finite: the last pose is held (no motion), reported as a
        constant-velocity guess; the memory keeps what the step remembered."""
        return dataclasses.replace(step, motion=Motion.still(), status=TwoViewStatus.CONSTANT_VELOCITY.value)

    def _remember(self, motion: Motion) -> Motion:
        self.velocity = motion
        return motion
