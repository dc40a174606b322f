"""Classical visual odometry: dense flow + two-view geometry over a sequence of frames.

It is the network-free baseline of the project (and the test bed of ``geometry.two_view``): for
every consecutive pair it computes forward and backward flow (OpenCV DIS, the ground-truth flow of
the synthetic world, or any flow function such as a trained network's, see ``learned_flow``),
recovers ``T_{i+1}_i`` with :class:`TwoViewEstimator` and chains the camera-to-world trajectory
``T_world_cam[i+1] = T_world_cam[i] @ inv(T_{i+1}_i)``. A pair the geometry fails on repeats the last
measured rotation and direction (status ``constant_velocity``), from the Estimator's own
constant-velocity memory (:class:`~depth_pose_ros.pipeline.odometry_policy.OdometryPolicy`).

Monocular two-view translation has no scale; each step gets its length from ``scale``:
``"gt"`` (length of the ground-truth step: isolates rotation / direction accuracy, the usual
"GT scale" protocol), ``"geometry"`` (no ground truth: the first step has length 1 and every later step
gets its length through the points consecutive pairs triangulate in their shared frame, the
Estimator's :class:`~depth_pose_ros.pipeline.scale_chain.ScaleChain`), ``"depth"`` (two-view scale
alignment against the frame's depth map, e.g. the synthetic world's depth), ``"unit"`` (1 per step), or
``"auto"`` (gt when GT poses exist, else unit).
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.geometry.dis_flow import dis_flow, to_gray_u8
from depth_pose_ros.geometry.pose_error import relative_pose
from depth_pose_ros.geometry.se3_np import invert_np, make_pose_np
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewEstimator, TwoViewResult, TwoViewStatus
from depth_pose_ros.pipeline.odometry_policy import STEP_STATUSES, Motion, OdometryPolicy
from depth_pose_ros.pipeline.scale_chain import ScaleChain

FLOW_METHODS = ("dis", "gt", "network")  # the FLOW_SOURCES of pipeline.config, plus the synthetic GT
FlowFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image1, image2) -> HxWx2 flow at the image size
SCALE_MODES = ("auto", "gt", "geometry", "depth", "unit")


@dataclass
class VoConfig:
    """What the VO runner computes flow with and how it scales translation."""

    flow: str = "dis"  # "dis" (OpenCV DIS), "gt" (Frame.flow_next / flow_prev, synthetic world), "network"
    flow_fn: Optional[FlowFn] = None  # flow="network": e.g. learned_flow(estimator)
    dis_preset: str = "medium"
    backward_flow: bool = True  # also compute 2 -> 1 flow for fb scoring (better, ~2x flow time)
    scale: str = "auto"  # auto | gt | depth | unit
    two_view: TwoViewConfig = field(default_factory=TwoViewConfig)

    def __post_init__(self) -> None:
        if self.scale not in SCALE_MODES:
            raise ValueError(f"VoConfig.scale={self.scale!r}; choose one of {SCALE_MODES}")
        if self.flow not in FLOW_METHODS:
            raise ValueError(f"VoConfig.flow={self.flow!r}; choose one of {FLOW_METHODS}")
        if self.flow == "network" and self.flow_fn is None:
            raise ValueError("VoConfig.flow='network' needs flow_fn (e.g. vo.learned_flow(estimator))")


def learned_flow(estimator: Any) -> FlowFn:
    """A trained network's flow for VO: ``Estimator.flow_between`` at the network size, resized (values
    scaled) to the image size so that the two-view module works with the camera's own K."""
    from depth_pose_ros.eval.flow_metrics import resize_flow

    def flow(image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        return resize_flow(estimator.flow_between(image1, image2), image1.shape[:2]).astype(np.float32)

    return flow


@dataclass
class VoResult:
    """Trajectory and per-pair diagnostics of one VO run (pair i is frames i -> i+1)."""

    T_world_cam: np.ndarray  # Nx4x4 estimated camera-to-world poses
    stamps: np.ndarray  # N
    gt_T_world_cam: Optional[np.ndarray]  # Nx4x4 or None when a frame lacks GT
    T_rel: np.ndarray  # (N-1)x4x4 estimated T_{i+1}_i with unit (or zero) translation
    statuses: list[str]
    confidences: np.ndarray  # N-1
    num_inliers: np.ndarray  # N-1
    step_lengths: np.ndarray  # N-1 translation length used for each step
    flow_ms: np.ndarray  # N-1 flow time per pair (forward + backward)
    geometry_ms: np.ndarray  # N-1 two-view time per pair
    scale_mode: str = "unit"

    @property
    def num_frames(self) -> int:
        return int(self.T_world_cam.shape[0])

    @property
    def ms_per_frame(self) -> float:
        """Mean flow + geometry time per processed pair (image decoding excluded)."""
        if not len(self.flow_ms):
            return float("nan")
        return float(np.mean(self.flow_ms + self.geometry_ms))

    def status_counts(self) -> dict[str, int]:
        """How many frames got each status; frame 0 is the one "first" (``statuses`` is per pair)."""
        counts = {s.value: int(sum(1 for x in self.statuses if x == s.value)) for s in STEP_STATUSES}
        counts[TwoViewStatus.FIRST.value] += 1
        return counts

    def metrics(self) -> dict[str, Any]:
        """Timing and status counts, plus the pose metrics of ``eval.pose_metrics`` when GT exists."""
        out: dict[str, Any] = {
            "num_frames": self.num_frames,
            "ms_per_frame": self.ms_per_frame,
            "flow_ms_per_frame": float(np.mean(self.flow_ms)) if len(self.flow_ms) else float("nan"),
            "geometry_ms_per_frame": float(np.mean(self.geometry_ms)) if len(self.geometry_ms) else float("nan"),
            "scale_mode": self.scale_mode,
            "status_counts": self.status_counts(),
            "mean_confidence": float(np.mean(self.confidences)) if len(self.confidences) else float("nan"),
        }
        if self.gt_T_world_cam is not None and self.num_frames >= 2:
            from depth_pose_ros.eval.pose_metrics import pose_summary

            out.update(pose_summary(self.T_world_cam, self.gt_T_world_cam))
        return out


def _gray(frame: Frame) -> np.ndarray:
    return to_gray_u8(frame.image)


def run_vo(frames: Iterable[Frame], config: Optional[VoConfig] = None,
           progress: Optional[Callable[[int, TwoViewResult], None]] = None) -> VoResult:
    """Run flow + two-view VO over ``frames`` (any iterable of :class:`Frame`, e.g. a FrameSource).

    Args:
        frames: consecutive frames of one camera (all with the same size and intrinsics shape).
        config: :class:`VoConfig`; defaults to DIS-medium flow with fb scoring and "auto" scale.
        progress: optional callback ``(pair_index, two_view_result)`` after each pair.

    Returns:
        :class:`VoResult`. Raises ``ValueError`` when the frames do not allow the requested mode
        (e.g. ``scale="gt"`` without GT poses, ``flow="gt"`` without GT flow, size changes).
    """
    cfg = config if config is not None else VoConfig()
    estimator = TwoViewEstimator(cfg.two_view)
    memory = OdometryPolicy()  # the constant-velocity memory (the lengths are chosen here, per scale mode)
    poses: list[np.ndarray] = []
    gts: list[Optional[np.ndarray]] = []
    stamps: list[float] = []
    T_rel: list[np.ndarray] = []
    statuses: list[str] = []
    conf: list[float] = []
    inl: list[int] = []
    lengths: list[float] = []
    flow_ms: list[float] = []
    geom_ms: list[float] = []
    scale_mode = cfg.scale
    last_length = 1.0
    chain = ScaleChain()

    prev: Optional[Frame] = None
    prev_gray: Optional[np.ndarray] = None
    for i, frame in enumerate(frames):
        gray = _gray(frame)
        if prev is None:
            if scale_mode == "auto":
                scale_mode = "gt" if frame.T_world_cam is not None else "unit"
            T0 = frame.T_world_cam if frame.T_world_cam is not None else np.eye(4)
            poses.append(np.asarray(T0, dtype=np.float64).copy())  # frame 0: status "first", no pair
        else:
            assert prev_gray is not None  # set with prev
            if gray.shape != prev_gray.shape:
                raise ValueError(f"frame {frame.index}: image size {gray.shape} differs from the previous "
                                 f"frame's {prev_gray.shape}; VO needs one camera resolution")
            t0 = time.perf_counter()
            flow_fw, flow_bw = _flows(prev, frame, prev_gray, gray, cfg)
            t1 = time.perf_counter()
            depth1 = None
            if scale_mode == "depth":
                if prev.depth is None:
                    raise ValueError(f"--scale depth: frame {prev.index} has no depth map")
                depth1 = prev.depth
            result = estimator.estimate(flow_fw, prev.K, flow_bw=flow_bw, depth1=depth1)
            t2 = time.perf_counter()
            if result.status == TwoViewStatus.FAILED:  # no pose: the last measured step's R, t repeated
                held = memory.constant_velocity()
                result = dataclasses.replace(result, R=held.R.copy(), t=held.t.copy(),
                                             status=TwoViewStatus.CONSTANT_VELOCITY)
            if scale_mode == "geometry":
                length = _chained_length(chain, result, prev.K, last_length, first=i == 1)
            else:
                length = _step_length(scale_mode, prev, frame, result, last_length)
            last_length = length
            if result.status != TwoViewStatus.CONSTANT_VELOCITY:
                memory.remember(Motion(result.R, result.t, length))
            T_step = make_pose_np(result.R, result.t * length)  # T_{i}_{i-1}
            poses.append(poses[-1] @ invert_np(T_step))
            T_rel.append(result.T_2_1)
            statuses.append(result.status.value)
            conf.append(result.confidence)
            inl.append(result.num_inliers)
            lengths.append(length)
            flow_ms.append((t1 - t0) * 1e3)
            geom_ms.append((t2 - t1) * 1e3)
            if progress is not None:
                progress(i - 1, result)
        gts.append(None if frame.T_world_cam is None else np.asarray(frame.T_world_cam, dtype=np.float64))
        stamps.append(float(frame.stamp))
        prev, prev_gray = frame, gray

    if not poses:
        raise ValueError("run_vo: the source yielded no frames")
    gt = np.stack([g for g in gts if g is not None]) if all(g is not None for g in gts) else None
    return VoResult(T_world_cam=np.stack(poses), stamps=np.asarray(stamps), gt_T_world_cam=gt,
                    T_rel=np.stack(T_rel) if T_rel else np.zeros((0, 4, 4)), statuses=statuses,
                    confidences=np.asarray(conf), num_inliers=np.asarray(inl, dtype=np.int64),
                    step_lengths=np.asarray(lengths), flow_ms=np.asarray(flow_ms),
                    geometry_ms=np.asarray(geom_ms), scale_mode=scale_mode)


def _flows(prev: Frame, cur: Frame, prev_gray: np.ndarray, gray: np.ndarray,
           cfg: VoConfig) -> tuple[np.ndarray, Optional[np.ndarray]]:
    if cfg.flow == "dis":
        fw = dis_flow(prev_gray, gray, cfg.dis_preset)
        bw = dis_flow(gray, prev_gray, cfg.dis_preset) if cfg.backward_flow else None
        return fw, bw
    if cfg.flow == "network":
        flow_fn = cfg.flow_fn
        assert flow_fn is not None  # VoConfig requires it with flow="network"
        fw = flow_fn(prev.image, cur.image)
        return fw, flow_fn(cur.image, prev.image) if cfg.backward_flow else None
    if prev.flow_next is None:
        raise ValueError(f"--flow gt: frame {prev.index} has no ground-truth flow_next")
    bw = cur.flow_prev if cfg.backward_flow else None
    return np.asarray(prev.flow_next, dtype=np.float32), None if bw is None else np.asarray(bw, np.float32)


def _chained_length(chain: ScaleChain, result: TwoViewResult, K: np.ndarray, last: float, first: bool) -> float:
    """``--scale geometry``: 1 for the first pair, then carried by the triangulated points (last length
    when the chain breaks: a fallback pose has no triangulation)."""
    if result.status != TwoViewStatus.OK:
        chain.reset()
        return last
    length = 1.0 if first else chain.propagate(result, last)
    length = last if length is None else length
    chain.advance(result, K, length)
    return length


def _step_length(mode: str, prev: Frame, cur: Frame, result: TwoViewResult, last: float) -> float:
    """Translation length of this step in metres (gt / depth) or units (unit)."""
    if mode == "gt":
        if prev.T_world_cam is None or cur.T_world_cam is None:
            raise ValueError(f"--scale gt: frame {prev.index if prev.T_world_cam is None else cur.index} "
                             "has no ground-truth pose")
        return float(np.linalg.norm(relative_pose(prev.T_world_cam, cur.T_world_cam)[:3, 3]))
    if mode == "depth":
        s = result.baseline_in_depth_units
        return float(s) if s is not None and np.isfinite(s) and s >= 0 else last
    return 1.0
