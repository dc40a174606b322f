"""The node class both nodes share: its life cycle and the worker thread's run loop.

Why a mixin: the plain node sets everything up in its constructor, the lifecycle node spreads the same
steps over its transitions (configure: parameters and model; activate: processing and subscriptions).
:class:`DepthPoseCore` holds those steps and the whole frame path once, so both nodes have exactly the
same settings, outputs and error handling:

* :meth:`_declare_node_parameters` -- declare every parameter (unknown names are an error);
* :meth:`_configure` -- parse the parameters, build the estimator (loads the model) and the state;
* :meth:`_create_outputs` / :meth:`_destroy_outputs` -- publishers, TF broadcaster, ``~/reset``;
* :meth:`_start_processing` / :meth:`_stop_processing` -- worker thread, timers, static TF, subscriptions.

What each step touches lives in a module of its own, mixed into :class:`DepthPoseCore`, so this one keeps
only the order of things and the run loop: ``node_inputs`` (camera subscriptions, QoS following),
``node_pairing`` (camera_info / stereo pairing by stamp, the stamp policy), ``node_outputs`` (publishers,
odometry / TF / path, depth and clouds, diagnostics) and ``node_problems`` (:class:`SkipFrame`, throttled
logs). ``LARGE_FRAME_HINT``, ``silence_hint`` (``diagnostics``) and ``SkipFrame`` are importable from here.

Threading, and why: the estimator takes tens of milliseconds per frame, cameras deliver every 33-100 ms.
The subscription callback only stores the image in a two-item slot (pushing out the oldest one that was
not processed yet, counted as dropped; ``frame_sync.LatestSlot`` says why two); a worker thread takes the
oldest waiting image, pairs it with its camera_info, runs :meth:`Estimator.step` and publishes everything.
So the executor stays responsive (services, camera_info, diagnostics, the path timer) and no backlog ever
builds: the node works on the freshest frames and the output latency is bounded by two processing times.

Until a metric scale source converges, ``scale.warmup`` publishes (flagged in the diagnostics) or holds
back depth, cloud, odometry, TF and path (decided per frame in :meth:`DepthPoseCore._process`).
"""
from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from rclpy.exceptions import ParameterException
from sensor_msgs.msg import CompressedImage, Image
from std_srvs.srv import Trigger

from depth_pose_ros.ros.convert import ConversionError, compressed_msg_to_numpy, image_msg_to_numpy, stamp_to_ns
from depth_pose_ros.ros.diagnostics import LARGE_FRAME_HINT, NodeStats, silence_hint
from depth_pose_ros.ros.frame_sync import LatestSlot
from depth_pose_ros.ros.node_inputs import QOS_MATCH_PERIOD_S, QOS_OVERRIDES, CameraInputsMixin
from depth_pose_ros.ros.node_outputs import DEFAULT_CAMERA_FRAME, LARGE_FRAME_LOG_AFTER_S, OutputFrame, OutputsMixin
from depth_pose_ros.ros.node_pairing import FIRST_CAMERA_INFO_WAIT_S, PairingMixin
from depth_pose_ros.ros.node_params import (
    CAMERA_ENCODINGS,
    NODE_NAME,
    PARAMETERS,
    NodeSettings,
    make_estimator,
    parse_settings,
    unknown_parameters,
    unknown_parameters_error,
)
from depth_pose_ros.ros.node_problems import LOG_THROTTLE_S, SkipFrame
from depth_pose_ros.ros.node_runner import reuse_large_allocations, ros_session, spin_until_stopped
from depth_pose_ros.ros.param_table import declare_parameters
from depth_pose_ros.ros.qos import describe_qos, is_auto, qos_from_name

__all__ = ["DEFAULT_CAMERA_FRAME", "FIRST_CAMERA_INFO_WAIT_S", "FRAME_SLOT_CAPACITY", "LARGE_FRAME_HINT",
           "LARGE_FRAME_LOG_AFTER_S", "LOG_THROTTLE_S", "QOS_MATCH_PERIOD_S", "QOS_OVERRIDES", "DepthPoseCore",
           "SkipFrame", "run_node", "silence_hint"]

#: Frames waiting for the worker at most (the newest; see ``frame_sync.LatestSlot`` for why two).
FRAME_SLOT_CAPACITY = 2


@dataclass
class _Incoming:
    msg: Union[Image, CompressedImage]
    compressed: bool
    received_s: float  # time.monotonic() at the callback


def _camera_encoding(encoding: str) -> Optional[str]:
    """The CAMERA_ENCODINGS spelling of ``encoding`` (decoders accept any case), or None."""
    lower = str(encoding).lower()
    return next((e for e in CAMERA_ENCODINGS if e.lower() == lower), None)


class DepthPoseCore(CameraInputsMixin, PairingMixin, OutputsMixin):
    """Mixin with everything of the node but *when* it is set up; use it before an rclpy ``Node`` class."""

    settings: NodeSettings

    # ------------------------------------------------------------------------------------ set-up
    def _declare_node_parameters(self) -> None:
        """Declare every parameter (read-only, with its description); unknown names raise ValueError."""
        overrides = getattr(self, "_parameter_overrides", {})
        unknown = unknown_parameters(overrides.keys())
        if unknown:
            raise ValueError(unknown_parameters_error(unknown, f"unknown parameter(s) for {NODE_NAME}:",
                                                      "; see config/default.yaml for the valid names"))
        self._param_explicit = set(overrides.keys())
        self._param_values = declare_parameters(self, PARAMETERS, read_only=True, dynamic_typing=True)

    def _configure(self) -> None:
        """Parse the parameters, build the estimator (loads the model, warms it up) and the frame state.

        Raises:
            ValueError, OSError: bad parameters or a model that cannot be used (one line, no traceback).
        """
        log = self.get_logger()
        s = parse_settings(self._param_values, explicit=self._param_explicit)
        for warning in s.warnings:
            log.warn(warning)
        try:
            self.estimator, self.model_source = make_estimator(s, warn=log.warn)
        except RuntimeError as exc:  # torch / safetensors: report as a start-up error, not a traceback
            raise ValueError(f"checkpoint {s.checkpoint or '(default model)'} could not be loaded: {exc}") from None
        s.estimator = self.estimator.config  # the effective settings: model folder + parameters
        self.settings = s
        self._warm_up()
        self.stats = NodeStats(scale_source=s.estimator.scale.source)
        self._lock = threading.Lock()  # estimator, odometry and path state
        self._init_pairing()
        self._slot: LatestSlot[_Incoming] = LatestSlot(FRAME_SLOT_CAPACITY)
        self._last_stamp_ns: Optional[int] = None
        self._init_outputs()
        self._throttle: dict[str, tuple[float, int]] = {}
        self._warned: set[str] = set()
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._timers_: list = []
        self._image_sub = self._info_sub = None
        self._camera_subs = {}
        self._image_topic = self.resolve_topic_name(self._image_topic_name())

    def _start_processing(self) -> None:
        """Timers, the worker, the static TF, then the subscriptions (a frame may arrive as soon as they
        exist, and everything it needs must be there)."""
        s = self.settings
        self._start_output_timers()
        self._stop = threading.Event()
        self._slot = LatestSlot(FRAME_SLOT_CAPACITY)
        self._worker = threading.Thread(target=self._run, name="depth_pose_worker", daemon=True)
        self._worker.start()
        if s.camera_frame:
            self._send_static_tf(s.camera_frame, self.get_clock().now())
        qos_image = self._subscribe_cameras()
        kind = self._camera_subs["image"].kind
        est = s.estimator
        self.get_logger().info(
            f"ready: {self._image_topic} [{kind.__name__}, {describe_qos(qos_image)}"
            f"{' (auto: follows the camera)' if is_auto(s.qos_image) else ''}] + "
            f"{self.resolve_topic_name(s.camera_info_topic)}; model: {self.model_source}; input "
            f"{est.height}x{est.width} ({est.input_fit}) on {est.device}, flow {est.flow_source}, "
            f"scale {est.scale.source} "
            f"(warm-up: {s.scale_warmup}); outputs at the {s.output_size} size, "
            f"{describe_qos(qos_from_name(s.qos_output))}"
            + (f", tf via {self.tf.backend}" if self.tf else ""))

    def _stop_processing(self) -> None:
        """Subscriptions and timers gone, then the worker stopped (after the frame in progress)."""
        self._unsubscribe_cameras()
        for timer in self._timers_:
            self.destroy_timer(timer)
        self._timers_ = []
        self._stop.set()
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            self._worker = None

    def _warm_up(self) -> None:
        """Run two frames through the estimator and forget them, so the first camera frame is not slow
        (first calls allocate and pick kernels) and is not dropped for it."""
        est = self.estimator.config
        K = np.array([[est.width, 0.0, est.width / 2], [0.0, est.width, est.height / 2], [0.0, 0.0, 1.0]])
        image = np.random.default_rng(0).integers(0, 256, (est.height, est.width, 3), dtype=np.uint8)
        t0 = time.perf_counter()
        self.estimator.step(image, K, 0.0)
        self.estimator.step(np.roll(image, 2, axis=1), K, 0.05)
        self.estimator.reset()
        self.get_logger().info(f"warm-up: {(time.perf_counter() - t0) * 1e3:.0f} ms for two frames")

    def _reset_state(self) -> None:
        """Forget the recurrent state and restart the odometry (caller holds ``_lock``)."""
        self.estimator.reset()
        self._reset_odometry()
        self._last_stamp_ns = None

    # -------------------------------------------------------------------------------- callbacks
    def _on_image(self, msg: Union[Image, CompressedImage], compressed: bool) -> None:
        dropped = self._slot.put(_Incoming(msg, compressed, time.monotonic()))
        self.stats.received(dropped)

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._reset_state()
        self.stats.reset()
        self.get_logger().info("reset requested: recurrent state and odometry cleared")
        response.success = True
        response.message = "recurrent state and odometry reset; the next frame starts a new trajectory"
        return response

    # ----------------------------------------------------------------------------------- worker
    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._slot.take(timeout=0.2)
            if item is None:
                continue
            try:
                self._process_or_skip(item)
            except Exception:  # the worker must outlive anything, even a failing log call
                traceback.print_exc()

    def _process_or_skip(self, item: _Incoming) -> None:
        try:
            self._process(item)
        except SkipFrame as skip:
            self.stats.skipped(skip.reason, str(skip))
            # throttled per kind of problem: the message without its numbers (stamps, sizes)
            self._log_throttled(re.sub(r"[0-9.]+", "#", str(skip)), f"frame skipped: {skip}")
        except Exception as exc:  # never let one frame kill the worker
            self.stats.skipped("internal", repr(exc))
            self._log_throttled("internal", f"unexpected error, frame skipped: {exc!r}\n{traceback.format_exc()}")

    def _process(self, item: _Incoming) -> None:
        from depth_pose_ros.pipeline.estimator import MIN_IMAGE_SIDE, FrameError

        t_start = time.monotonic()
        msg, s = item.msg, self.settings
        stamp_ns = stamp_to_ns(msg.header.stamp)
        where = f"{self._image_topic} @ {stamp_ns * 1e-9:.3f}"
        if not item.compressed:
            self._check_encoding(msg.encoding, where)
        self._apply_stamp_policy(stamp_ns)
        try:
            image, _ = (compressed_msg_to_numpy if item.compressed else image_msg_to_numpy)(msg)
        except ConversionError as exc:
            raise SkipFrame("bad_image", f"{where}: {exc}") from None
        height, width = image.shape[:2]
        if min(height, width) < MIN_IMAGE_SIDE:
            raise SkipFrame("bad_image", f"{where}: image of {width}x{height} is too small: at least "
                                         f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels are needed")
        K, distortion = self._intrinsics(stamp_ns, width, height, where)
        stereo_image = self._stereo_partner(stamp_ns, where) if s.estimator.scale.source == "stereo" else None

        with self._lock:
            t_step = time.monotonic()
            try:
                result = self.estimator.step(image, K, stamp_ns * 1e-9, stereo_image=stereo_image,
                                             distortion=distortion)
            except FrameError as exc:
                raise SkipFrame("bad_frame", f"{where}: {exc}") from None
            step_s = time.monotonic() - t_step
            if result.reset_reason:  # a gap or a repeated stamp (throttled: a driver may repeat every stamp);
                # each camera size change is its own line (sizes kept in the key): they are rare and each matters
                key = (result.reset_reason if "size changed" in result.reset_reason
                       else re.sub(r"[0-9.]+", "#", result.reset_reason))
                self._log_throttled(key, f"tracking restarted at {where}: {result.reset_reason}", warning=True)
            self._last_stamp_ns = stamp_ns
            held = s.scale_warmup == "hold" and not result.scale_converged
            odom = self._odometry(result)
            path = self._extend_path(msg.header.stamp, odom[0]) if odom is not None and not held else None

        if not held:
            frame_id = self._camera_frame(msg.header.frame_id, msg.header.stamp)
            self._publish(OutputFrame(result, msg.header.stamp, frame_id, image, K, distortion, odom, path))
        t_end = time.monotonic()
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6
        stages = {"queue": t_start - item.received_s, "pair": t_step - t_start, "step": step_s,
                  "publish": t_end - t_step - step_s, "total": t_end - item.received_s}
        self.stats.processed(latency_ms, {k: v * 1e3 for k, v in stages.items()}, result.status,
                             result.inlier_ratio, result.confidence, result.depth_factor,
                             scale_converged=result.scale_converged, held=held, metres_per_unit=result.metres_per_unit,
                             plane_inlier_ratio=result.plane_inlier_ratio)

    def _check_encoding(self, encoding: str, where: str) -> None:
        """SkipFrame unless ``encoding`` is one of CAMERA_ENCODINGS (the one list every message names)."""
        if _camera_encoding(encoding) is not None:
            return
        from depth_pose_ros.utils.image_codec import ENCODINGS

        known = str(encoding).lower() in {e.lower() for e in ENCODINGS}
        what = f"encoding {encoding} is not a camera image" if known else f"unsupported encoding {encoding!r}"
        raise SkipFrame("bad_image", f"{where}: {what}; camera encodings: {', '.join(CAMERA_ENCODINGS)}")


def run_node(make_node: Callable[[Any], Any], args: Optional[list[str]] = None) -> int:
    """Create a node with ``make_node(context)`` and spin it until SIGINT / SIGTERM.

    Returns 0 on a clean stop and 2 on bad parameters or an unusable model, reported as one line on
    stderr (no traceback: it is a configuration error, not a bug).
    """
    reuse_large_allocations()
    try:
        with ros_session(args) as (context, stop):
            node = make_node(context)
            try:
                spin_until_stopped(node, stop)
            finally:
                node.shutdown()
                node.destroy_node()
            return 0
    except (ValueError, OSError, ParameterException) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        return 2
