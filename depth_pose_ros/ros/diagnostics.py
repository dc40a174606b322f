"""Health counters of ``depth_pose_node`` and their ``/diagnostics`` message.

Why counters in a class of their own: the subscription thread (frames received / dropped), the worker
thread (processed, skipped, latency) and the diagnostics timer all touch them; one lock around plain
numbers keeps that simple. Every report covers the window since the previous one, so a rate or a
latency tail shows what is happening *now*, while totals show the whole run.

Level rules (``DiagnosticStatus``): ERROR when frames arrive but none could be processed in the
window (every one was bad input), WARN when no image arrived (with a hint when a publisher exists: large
frames under best-effort QoS), while a metric scale source has not converged yet (outputs flagged or
held back, ``scale_status``), when frames were dropped because the estimator is slower than the camera,
or when the last pose is a constant-velocity guess; else OK. What a window without images most likely
means (no publisher, a stream that stopped, large frames under best effort) is :func:`silence_hint`, kept
here beside the report it explains.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from depth_pose_ros.ros.convert import StampLike, make_header

#: Per-frame durations reported (monotonic clock, ms): ``queue`` image received -> taken by the worker
#: (waiting for the previous frame to finish), ``pair`` decoding and finding the camera_info (including
#: waiting for a late one), ``step`` Estimator.step, ``publish`` odometry and building and publishing
#: every output, ``total`` image received -> every output published.
STAGES: tuple[str, ...] = ("queue", "pair", "step", "publish", "total")

#: Hint given when a best-effort image subscription receives nothing from an existing publisher.
LARGE_FRAME_HINT = ("frames of about 1 MB and more (640x480 colour and up) lose fragments, and so whole frames, "
                    "under best-effort delivery; a camera that publishes reliable gets reliable delivery "
                    "(qos.image: auto, the default, or reliable)")


def silence_hint(topic: str, publishers: int, received_total: int, best_effort: bool) -> str:
    """What a diagnostics window without any image most likely means, said as such.

    No publisher: no camera yet (or it was stopped). Publishers but never an image: the camera has not
    started sending, or (best effort only) its frames are too large to arrive. Images before, none now: the
    stream stopped. Empty string when there is nothing to say.
    """
    if publishers == 0:
        return (f"no publisher on {topic}: no camera yet, or it stopped (check the topic name and remappings)"
                if received_total == 0 else f"the camera on {topic} stopped: its publisher is gone")
    if received_total > 0:
        return (f"the image stream on {topic} stopped after {received_total} frames ({publishers} publisher(s) "
                "still there)" + (f"; if the camera is still sending, {LARGE_FRAME_HINT}" if best_effort else ""))
    if best_effort:
        return (f"{publishers} publisher(s) on {topic} but no image has arrived yet: the camera may not be "
                f"sending yet; if it is, {LARGE_FRAME_HINT}")
    return f"{publishers} publisher(s) on {topic} but no image has arrived yet: the camera is not sending yet"


@dataclass
class WindowReport:
    """What happened since the previous report (plus run totals)."""

    seconds: float
    received: int
    processed: int
    dropped: int
    skipped: int
    latency_ms: list[float]  # image stamp -> outputs published, node clock
    stages_ms: dict[str, list[float]]  # monotonic clock, per frame: see STAGES
    inlier_ratio: float
    confidence: float
    status: str
    depth_factor: float  # the last frame's Result.depth_factor (network depth -> published units)
    last_error: str
    totals: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    held: int = 0  # frames processed but held back (scale.warmup: hold, scale not converged)
    scale_status: str = "monocular"  # monocular (no metric source) | warming_up | converged
    metres_per_unit: float = 1.0  # the last frame's Result.metres_per_unit
    plane_inlier_ratio: float = 0.0

    @property
    def rate_hz(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0


class NodeStats:
    """Thread-safe counters; :meth:`report` returns the current window and starts a new one."""

    def __init__(self, scale_source: str = "none") -> None:
        self._lock = threading.Lock()
        self.totals = {"received": 0, "processed": 0, "dropped": 0, "skipped": 0, "held": 0, "resets": 0}
        self.skipped_by_reason: dict[str, int] = {}
        self._new_window()
        self.status = "none"
        self.inlier_ratio = 0.0
        self.confidence = 0.0
        self.depth_factor = 1.0
        self.metres_per_unit = 1.0
        self.plane_inlier_ratio = 0.0
        self._metric = scale_source != "none"
        self.scale_status = "warming_up" if self._metric else "monocular"
        self.last_error = ""

    def _new_window(self) -> None:
        self._w = {"received": 0, "processed": 0, "dropped": 0, "skipped": 0, "held": 0}
        self._latency: list[float] = []
        self._stages: dict[str, list[float]] = {name: [] for name in STAGES}

    def _count(self, key: str) -> None:
        self._w[key] += 1
        self.totals[key] += 1

    def received(self, dropped: bool) -> None:
        with self._lock:
            self._count("received")
            if dropped:
                self._count("dropped")

    def skipped(self, reason: str, message: str) -> None:
        with self._lock:
            self._count("skipped")
            self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + 1
            self.last_error = message

    def reset(self) -> None:
        with self._lock:
            self.totals["resets"] += 1

    def processed(self, latency_ms: float, stages_ms: dict[str, float], status: str, inlier_ratio: float,
                  confidence: float, depth_factor: float, *, scale_converged: bool = True, held: bool = False,
                  metres_per_unit: float = 1.0, plane_inlier_ratio: float = 0.0) -> None:
        """One processed frame: its latency (node clock), the duration of each of :data:`STAGES`, and
        whether its outputs were held back because the metric scale has not converged yet."""
        with self._lock:
            self._count("processed")
            if held:
                self._count("held")
            self._latency.append(float(latency_ms))
            for name, values in self._stages.items():
                values.append(float(stages_ms.get(name, float("nan"))))
            self.status, self.inlier_ratio, self.confidence = status, inlier_ratio, confidence
            self.depth_factor, self.metres_per_unit = depth_factor, metres_per_unit
            self.plane_inlier_ratio = plane_inlier_ratio
            if self._metric:
                self.scale_status = "converged" if scale_converged else "warming_up"

    def report(self, seconds: float) -> WindowReport:
        with self._lock:
            out = WindowReport(seconds=float(seconds), latency_ms=self._latency, stages_ms=self._stages,
                               inlier_ratio=self.inlier_ratio, confidence=self.confidence, status=self.status,
                               depth_factor=self.depth_factor, last_error=self.last_error, totals=dict(self.totals),
                               skipped_by_reason=dict(self.skipped_by_reason), scale_status=self.scale_status,
                               metres_per_unit=self.metres_per_unit, plane_inlier_ratio=self.plane_inlier_ratio,
                               **self._w)
            self._new_window()
            return out


def _stats(values: list[float]) -> tuple[str, str, str]:
    a = np.asarray(values, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return "n/a", "n/a", "n/a"
    return f"{np.mean(a):.1f}", f"{np.percentile(a, 95):.1f}", f"{np.max(a):.1f}"


def level_and_message(r: WindowReport, hint: str = "") -> tuple[bytes, str]:
    """Diagnostic level and one-line summary of a window (see the module docstring); ``hint`` is added to
    the no-image warning (why nothing may arrive)."""
    if r.received == 0:
        return DiagnosticStatus.WARN, "no images received" + (f": {hint}" if hint else "")
    if r.processed == 0 and r.skipped > 0:
        return DiagnosticStatus.ERROR, f"every frame skipped: {r.last_error}"
    if r.scale_status == "warming_up" and r.processed > 0:
        what = ("depth, cloud, odometry, tf and path held back (scale.warmup: hold)" if r.held
                else "outputs are in monocular units (scale.warmup: publish)")
        return DiagnosticStatus.WARN, f"metric scale not converged yet: {what}"
    if r.dropped > 0:
        return DiagnosticStatus.WARN, f"estimator slower than the camera: {r.dropped} frame(s) dropped"
    if r.status == "constant_velocity":
        return DiagnosticStatus.WARN, "pose from constant-velocity guess (no usable geometry)"
    return DiagnosticStatus.OK, f"{r.rate_hz:.1f} Hz, pose {r.status}"


def diagnostic_array(r: WindowReport, stamp: StampLike, name: str, hardware_id: str,
                     extra: Optional[dict[str, str]] = None, hint: str = "") -> DiagnosticArray:
    """``diagnostic_msgs/DiagnosticArray`` holding one status for the window ``r``."""
    level, message = level_and_message(r, hint)
    lat_mean, lat_p95, lat_max = _stats(r.latency_ms)
    stages = {}
    for name, samples in r.stages_ms.items():
        mean, p95, peak = _stats(samples)
        stages.update({f"{name}_ms_mean": mean, f"{name}_ms_p95": p95, f"{name}_ms_max": peak})
    values = {
        "rate_hz": f"{r.rate_hz:.2f}",
        "window_s": f"{r.seconds:.2f}",
        "received": str(r.received),
        "processed": str(r.processed),
        "dropped": str(r.dropped),
        "skipped": str(r.skipped),
        "latency_ms_mean": lat_mean,
        "latency_ms_p95": lat_p95,
        "latency_ms_max": lat_max,
        **stages,
        "inlier_ratio": f"{r.inlier_ratio:.3f}",
        "confidence": f"{r.confidence:.3f}",
        "pose_status": r.status,
        "depth_factor": f"{r.depth_factor:.4f}",
        "scale_status": r.scale_status,
        "metres_per_unit": f"{r.metres_per_unit:.4f}",
        "plane_inlier_ratio": f"{r.plane_inlier_ratio:.3f}",
        "held": str(r.held),
        "last_error": r.last_error,
        **({"hint": hint} if hint else {}),
        **{f"total_{k}": str(v) for k, v in r.totals.items()},
        **{f"skipped_{k}": str(v) for k, v in r.skipped_by_reason.items()},
        **(extra or {}),
    }
    status = DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=make_header(stamp), status=[status])
