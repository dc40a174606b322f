"""What ``depth_pose_node`` and ``depth_pose_lifecycle_node`` share: parameters, pairing, processing, outputs.

Why a mixin: the plain node sets everything up in its constructor, the lifecycle node spreads the same
steps over its transitions (configure: parameters and model; activate: processing and subscriptions).
:class:`DepthPoseCore` holds those steps and the whole frame path once, so both nodes have exactly the
same settings, outputs and error handling:

* :meth:`_declare_node_parameters` -- declare every parameter (unknown names are an error);
* :meth:`_configure` -- parse the parameters, build the estimator (loads the model) and the state;
* :meth:`_create_outputs` / :meth:`_destroy_outputs` -- publishers, TF broadcaster, ``~/reset``;
* :meth:`_start_processing` / :meth:`_stop_processing` -- worker thread, timers, static TF, subscriptions.

Threading, and why: the estimator takes tens of milliseconds per frame, cameras deliver every 33-100 ms.
The subscription callback only stores the image in a two-item slot (pushing out the oldest one that was
not processed yet, counted as dropped; ``frame_sync.LatestSlot`` says why two); a worker thread takes the
oldest waiting image, pairs it with its camera_info, runs :meth:`Estimator.step` and publishes everything.
So the executor stays responsive (services, camera_info, diagnostics, the path timer) and no backlog ever
builds: the node works on the freshest frames and the output latency is bounded by two processing times.

Stamps: the image stamps go through the project's one :func:`stamp_policy`. A jump back in time (a bag
loop, a restarted driver) restarts the odometry *and* empties the camera_info / stereo caches of entries
from before the jump (the estimator then starts fresh; it is not reset a second time). Gaps and repeated
stamps are the estimator's business (it restarts its tracking and keeps the pose).

Outputs (``output.size: camera``, the default): ``depth`` registered to the camera image -- same size,
the camera's K, the undistorted image's geometry -- and ``depth/camera_info`` saying exactly that; the
cloud samples that depth every ``cloud.stride`` camera pixels. ``network``: the network-size depth and
its K. Until a metric scale source converges, ``scale.warmup`` publishes (flagged in the diagnostics) or
holds back depth, cloud, odometry, TF and path.
"""
from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.exceptions import ParameterException
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger

from depth_pose_ros.geometry.distortion import Distortion, UnknownDistortionModel
from depth_pose_ros.pipeline.result import output_depth, triangulated_points
from depth_pose_ros.ros.convert import (
    ConversionError,
    camera_info_to_K,
    compressed_msg_to_numpy,
    depth_to_msg,
    image_msg_to_numpy,
    make_camera_info,
    make_header,
    matrix_to_pose_msg,
    numpy_to_image_msg,
    points_to_cloud_msg,
    pose_to_odometry_msg,
    stamp_to_ns,
    transform_msg,
)
from depth_pose_ros.ros.diagnostics import NodeStats, diagnostic_array
from depth_pose_ros.ros.frame_sync import LatestSlot, StampedCache
from depth_pose_ros.ros.node_params import (
    CAMERA_ENCODINGS,
    NODE_NAME,
    PARAMETERS,
    T_LINK_OPTICAL,
    NodeSettings,
    make_estimator,
    parse_settings,
    unknown_parameters,
)
from depth_pose_ros.ros.node_runner import reuse_large_allocations, ros_session, spin_until_stopped
from depth_pose_ros.ros.odometry_math import (
    PoseCovariance,
    base_motion,
    base_pose,
    base_twist,
    depth_to_points,
    motion_covariance,
    twist_covariance,
)
from depth_pose_ros.ros.qos import describe_qos, is_auto, matching_qos, qos_from_name
from depth_pose_ros.ros.tf_broadcast import TfBroadcaster
from depth_pose_ros.utils.image import to_rgb_or_gray
from depth_pose_ros.utils.viz import DepthColorizer

#: QoS of the camera subscriptions and the outputs can be overridden with the standard ROS 2 parameters
#: (``qos_overrides./image.subscription.reliability:=reliable``), on top of the qos.* profiles.
QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()

#: Frames waiting for the worker at most (the newest; see ``frame_sync.LatestSlot`` for why two).
FRAME_SLOT_CAPACITY = 2
#: How often (steady clock, s) ``qos.*: auto`` subscriptions compare their reliability with the publishers'.
QOS_MATCH_PERIOD_S = 1.0
#: The same kind of problem is logged at most once per this many seconds (with a count of the rest).
LOG_THROTTLE_S = 5.0
#: Longest wait for the very first camera_info when the parameters give no intrinsics.
FIRST_CAMERA_INFO_WAIT_S = 1.0
#: Camera frame used when neither ``frames.camera`` nor the image header names one.
DEFAULT_CAMERA_FRAME = "camera_optical_frame"
#: Logged as a warning once no image has arrived for this long (s) while a publisher exists (in the
#: diagnostics at once): a camera that is only about to start sending is no case for it.
LARGE_FRAME_LOG_AFTER_S = 5.0
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
class _CameraSubscription:
    """A camera input subscription the node may re-create (``qos.*: auto``)."""

    kind: type
    topic: str
    callback: Callable[[Any], None]
    auto: bool
    subscription: Any = None
    reliability: Any = None


class SkipFrame(Exception):
    """This frame cannot be processed; ``reason`` is the counter / throttle key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class _Incoming:
    msg: Union[Image, CompressedImage]
    compressed: bool
    received_s: float  # time.monotonic() at the callback


@dataclass
class _CameraInfoEntry:
    K: Optional[np.ndarray]
    width: int
    height: int
    distortion: Optional[Distortion] = None
    error: str = ""


@dataclass
class _Frame:
    """One processed frame on its way out."""

    result: Any  # pipeline.result.Result
    stamp: Any  # builtin_interfaces/Time of the image
    frame_id: str  # optical frame of the outputs
    image: np.ndarray  # the decoded camera image
    K: np.ndarray  # its intrinsics (those of the undistorted image too)
    distortion: Optional[Distortion]
    odom: Optional[tuple]
    path: Optional[list]  # the path to publish with this frame (path.period_s 0), else None


def _camera_encoding(encoding: str) -> Optional[str]:
    """The CAMERA_ENCODINGS spelling of ``encoding`` (decoders accept any case), or None."""
    lower = str(encoding).lower()
    return next((e for e in CAMERA_ENCODINGS if e.lower() == lower), None)


class DepthPoseCore:
    """Mixin with everything of the node but *when* it is set up; use it before an rclpy ``Node`` class."""

    settings: NodeSettings

    # ------------------------------------------------------------------------------------ set-up
    def _declare_node_parameters(self) -> None:
        """Declare every parameter (read-only, with its description); unknown names raise ValueError."""
        overrides = getattr(self, "_parameter_overrides", {})
        unknown = unknown_parameters(overrides.keys())
        if unknown:
            raise ValueError(f"unknown parameter(s) for {NODE_NAME}: {', '.join(unknown)}; see "
                             "config/default.yaml for the valid names")
        self._param_explicit = set(overrides.keys())
        self._param_values = {}
        for spec in PARAMETERS:
            descriptor = ParameterDescriptor(description=spec.description, read_only=True, dynamic_typing=True)
            self._param_values[spec.name] = self.declare_parameter(spec.name, spec.default, descriptor).value

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
        restart_ns = int(s.estimator.max_gap_s * 1e9)  # a camera_info this far back: its source restarted
        self._infos: StampedCache[_CameraInfoEntry] = StampedCache(capacity=30, restart_ns=restart_ns)
        self._stereo: StampedCache[Image] = StampedCache(capacity=10, restart_ns=restart_ns)
        self._slot: LatestSlot[_Incoming] = LatestSlot(FRAME_SLOT_CAPACITY)
        self._last_stamp_ns: Optional[int] = None
        self._pose_cov = PoseCovariance()
        self._path: deque = deque(maxlen=s.path_max_length)
        self._path_dirty = False
        self._throttle: dict[str, tuple[float, int]] = {}
        self._camera_frames_sent: set[str] = set()
        self._warned: set[str] = set()
        self._colorizer = DepthColorizer()
        self._worker: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._subscriptions_: list = []
        self._timers_: list = []
        self._image_sub = self._info_sub = None
        self._camera_subs: dict[str, _CameraSubscription] = {}
        self._silent_windows = 0  # diagnostics windows in a row without images while a publisher exists
        self._image_topic = self.resolve_topic_name(self._image_topic_name())

    def _image_topic_name(self) -> str:
        s = self.settings
        return f"{s.image_topic.rstrip('/')}/compressed" if s.use_compressed else s.image_topic

    def _create_outputs(self, lifecycle: bool = False) -> None:
        """Publishers (lifecycle publishers, which only publish while active, for the managed node), the TF
        broadcaster and ``~/reset``."""
        s = self.settings
        qos_out = qos_from_name(s.qos_output, what="qos.output")
        create_publisher = self.create_lifecycle_publisher if lifecycle else self.create_publisher
        self._destroy_publisher = self.destroy_lifecycle_publisher if lifecycle else self.destroy_publisher

        def publisher(kind, topic: str, what: str, qos=qos_out):
            if not s.publishes(what):
                return None
            return create_publisher(kind, topic, qos, qos_overriding_options=QOS_OVERRIDES)

        self.pub_depth = publisher(Image, "depth", "depth")
        self.pub_depth_info = publisher(CameraInfo, "depth/camera_info", "depth")
        self.pub_colored = publisher(Image, "depth/colored", "colored_depth")
        self.pub_cloud = publisher(PointCloud2, "points", "cloud")
        self.pub_triangulated = publisher(PointCloud2, "points/triangulated", "triangulated_points")
        self.pub_odom = publisher(Odometry, "odom", "odom")
        self.pub_path = publisher(Path, "path", "path")
        from diagnostic_msgs.msg import DiagnosticArray

        self._diag_pub = publisher(DiagnosticArray, "/diagnostics", "diagnostics", qos_from_name("reliable"))
        self.tf = TfBroadcaster(self) if s.publishes("tf") else None
        self._reset_service = self.create_service(Trigger, "~/reset", self._on_reset)

    def _check_qos_overrides(self) -> None:
        """``qos_overrides.<topic>.<publisher|subscription>.<policy>`` given to the node must name one of its
        topics (the camera subscriptions and the outputs accept them, the ROS 2 way); anything else is an
        unknown parameter, as a typo in any other name is."""
        given = sorted(n for n in getattr(self, "_parameter_overrides", {}) if n.startswith("qos_overrides."))
        unknown = [n for n in given if not self.has_parameter(n)]
        if unknown:
            declared = sorted({n.rsplit(".", 1)[0] for n in self._parameters if n.startswith("qos_overrides.")})
            raise ValueError(f"unknown QoS override(s) {', '.join(unknown)}; this node accepts "
                             f"qos_overrides.<entity>.<policy> for: {', '.join(declared)}")

    def _destroy_outputs(self) -> None:
        """Undo :meth:`_create_outputs` (lifecycle cleanup)."""
        for name in ("pub_depth", "pub_depth_info", "pub_colored", "pub_cloud", "pub_triangulated", "pub_odom",
                     "pub_path", "_diag_pub"):
            pub = getattr(self, name, None)
            if pub is not None:
                self._destroy_publisher(pub)
            setattr(self, name, None)
        if getattr(self, "tf", None) is not None:
            self.tf.destroy()
            self.tf = None
        if getattr(self, "_reset_service", None) is not None:
            self.destroy_service(self._reset_service)
            self._reset_service = None
        self._camera_frames_sent = set()

    def _start_processing(self) -> None:
        """Timers, the worker, the static TF, then the subscriptions (a frame may arrive as soon as they
        exist, and everything it needs must be there)."""
        s = self.settings
        if self._diag_pub is not None:
            self._diag_last = self.get_clock().now()
            self._timers_.append(self.create_timer(s.diagnostics_period_s, self._on_diagnostics))
        if self.pub_path is not None and s.path_period_s > 0:
            self._timers_.append(self.create_timer(s.path_period_s, self._on_path_timer))
        self._stop = threading.Event()
        self._slot = LatestSlot(FRAME_SLOT_CAPACITY)
        self._worker = threading.Thread(target=self._run, name="depth_pose_worker", daemon=True)
        self._worker.start()
        if s.camera_frame:
            self._send_static_tf(s.camera_frame, self.get_clock().now())
        qos_image = qos_from_name(s.qos_image, what="qos.image", allow_auto=True)
        qos_info = qos_from_name(s.qos_camera_info, what="qos.camera_info", allow_auto=True)
        kind = CompressedImage if s.use_compressed else Image
        self._camera_subs = {
            "image": _CameraSubscription(kind, self._image_topic_name(), lambda m: self._on_image(m, s.use_compressed),
                                         is_auto(s.qos_image)),
            "camera_info": _CameraSubscription(CameraInfo, s.camera_info_topic, self._on_camera_info,
                                               is_auto(s.qos_camera_info)),
        }
        self._image_sub = self._subscribe("image", qos_image, overridable=True)
        self._info_sub = self._subscribe("camera_info", qos_info, overridable=True)
        self._check_qos_overrides()
        if s.estimator.scale.source == "stereo":  # a second camera: the camera_info QoS setting (may be auto)
            self._camera_subs["stereo"] = _CameraSubscription(
                Image, s.stereo_image_topic, lambda m: self._stereo.add(stamp_to_ns(m.header.stamp), m),
                is_auto(s.qos_camera_info))
            self._subscribe("stereo", qos_info)
        if any(sub.auto for sub in self._camera_subs.values()):
            self._match_publishers_qos()
            self._timers_.append(self.create_timer(QOS_MATCH_PERIOD_S, self._match_publishers_qos,
                                                   clock=Clock(clock_type=ClockType.STEADY_TIME)))
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

    def _subscribe(self, name: str, qos: QoSProfile, overridable: bool = False):
        """(Re)create the camera subscription ``name`` (``image`` / ``camera_info``) with ``qos``.

        ``overridable``: accept the ROS 2 ``qos_overrides.*`` parameters (declared once, at the first
        creation; a re-creation by :meth:`_match_publishers_qos` keeps the profile it was given)."""
        sub = self._camera_subs[name]
        if sub.subscription is not None:
            self.destroy_subscription(sub.subscription)
        options = {"qos_overriding_options": QOS_OVERRIDES} if overridable else {}
        sub.subscription = self.create_subscription(sub.kind, sub.topic, sub.callback, qos, **options)
        sub.reliability = sub.subscription.qos_profile.reliability
        if sub.auto and overridable and self._overridden_reliability(sub.subscription.topic_name):
            sub.auto = False  # the user set this subscription's reliability: not ours to change
        if name == "image":
            self._image_sub = sub.subscription
            self._image_best_effort = sub.reliability == ReliabilityPolicy.BEST_EFFORT
        elif name == "camera_info":
            self._info_sub = sub.subscription
        return sub.subscription

    def _overridden_reliability(self, topic: str) -> bool:
        return f"qos_overrides.{topic}.subscription.reliability" in getattr(self, "_parameter_overrides", {})

    def _match_publishers_qos(self) -> None:
        """``qos.*: auto``: subscribe with the reliability the publishers offer (``qos.matching_qos``), and
        again whenever that changes (a camera that starts later, a driver restarted with other QoS)."""
        for name, sub in self._camera_subs.items():
            if not sub.auto or sub.subscription is None:
                continue
            infos = self.get_publishers_info_by_topic(sub.subscription.topic_name)
            wanted = matching_qos([i.qos_profile.reliability for i in infos])
            if wanted.reliability == sub.reliability:
                continue
            self._subscribe(name, wanted)
            offered = "all reliable" if wanted.reliability == ReliabilityPolicy.RELIABLE else "not all reliable"
            self.get_logger().info(f"{name} subscription on {sub.subscription.topic_name} is now "
                                   f"{describe_qos(wanted)} (qos auto: {len(infos)} publisher(s), {offered})")

    def _stop_processing(self) -> None:
        """Subscriptions and timers gone, then the worker stopped (after the frame in progress)."""
        for sub in self._subscriptions_ + [c.subscription for c in self._camera_subs.values() if c.subscription]:
            self.destroy_subscription(sub)
        self._subscriptions_ = []
        self._camera_subs = {}
        self._image_sub = self._info_sub = None
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

    # -------------------------------------------------------------------------------- callbacks
    def _on_image(self, msg: Union[Image, CompressedImage], compressed: bool) -> None:
        dropped = self._slot.put(_Incoming(msg, compressed, time.monotonic()))
        self.stats.received(dropped)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        width, height = int(msg.width), int(msg.height)
        try:
            entry = _CameraInfoEntry(camera_info_to_K(msg), width, height, self._distortion(msg))
        except (ConversionError, ValueError) as exc:
            entry = _CameraInfoEntry(None, width, height, error=str(exc))
        self._infos.add(stamp_to_ns(msg.header.stamp), entry)

    def _distortion(self, msg: CameraInfo) -> Optional[Distortion]:
        """The camera_info's lens distortion (None: none). An unknown model is warned about once and the
        images are used as they are; invalid coefficients make the camera_info invalid."""
        try:
            return Distortion.create(str(msg.distortion_model), list(msg.d))
        except UnknownDistortionModel as exc:
            self._warn_once(f"distortion:{msg.distortion_model}", f"camera_info on "
                            f"{self.resolve_topic_name(self.settings.camera_info_topic)}: {exc}")
            return None
        except ValueError as exc:
            raise ConversionError(f"camera_info: d: {exc}") from None

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        with self._lock:
            self._reset_state()
        self.stats.reset()
        self.get_logger().info("reset requested: recurrent state and odometry cleared")
        response.success = True
        response.message = "recurrent state and odometry reset; the next frame starts a new trajectory"
        return response

    def _on_diagnostics(self) -> None:
        now = self.get_clock().now()
        seconds = (now - self._diag_last).nanoseconds * 1e-9
        if seconds <= 0:  # the clock jumped back (sim time restarted)
            seconds = self.settings.diagnostics_period_s
        self._diag_last = now
        report = self.stats.report(seconds)
        hint = ""
        if report.received == 0 and self._image_sub is not None:
            hint = silence_hint(self._image_topic, self._image_sub.get_publisher_count(),
                                self.stats.totals.get("received", 0), self._image_best_effort)
            self._silent_windows += 1
        if not hint:
            self._silent_windows = 0
        elif self._silent_windows * self.settings.diagnostics_period_s >= LARGE_FRAME_LOG_AFTER_S:
            self._log_throttled("no_images", hint, warning=True)  # a camera that just started is no case
        hardware = self.settings.camera_frame or next(iter(list(self._camera_frames_sent)), self._image_topic)
        self._diag_pub.publish(diagnostic_array(report, now, f"{self.get_name()}: depth and odometry", hardware,
                                                {"model": self.model_source, "image_topic": self._image_topic,
                                                 "output_size": self.settings.output_size}, hint=hint))

    def _on_path_timer(self) -> None:
        """Publish the path when it changed: its cost grows with its length, so not with every frame."""
        with self._lock:
            if not self._path_dirty or not self._path:
                return
            poses = list(self._path)
            self._path_dirty = False
        if self.pub_path is not None:
            self.pub_path.publish(Path(header=make_header(poses[-1].header.stamp, self.settings.odom_frame),
                                       poses=poses))

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
            path = None
            if odom is not None and not held and self.pub_path is not None:
                self._path.append(PoseStamped(header=make_header(msg.header.stamp, s.odom_frame),
                                              pose=matrix_to_pose_msg(odom[0], "T_odom_base")))
                self._path_dirty = True
                if s.path_period_s == 0:
                    path, self._path_dirty = list(self._path), False

        if not held:
            frame_id = self._camera_frame(msg.header.frame_id, msg.header.stamp)
            self._publish(_Frame(result, msg.header.stamp, frame_id, image, K, distortion, odom, path))
        t_end = time.monotonic()
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6
        stages = {"queue": t_start - item.received_s, "pair": t_step - t_start, "step": step_s,
                  "publish": t_end - t_step - step_s, "total": t_end - item.received_s}
        self.stats.processed(latency_ms, {k: v * 1e3 for k, v in stages.items()}, result.status,
                             result.inlier_ratio, result.confidence, result.scale,
                             scale_converged=result.scale_converged, held=held, metric_scale=result.metric_scale,
                             plane_inlier_ratio=result.plane_inlier_ratio)

    def _check_encoding(self, encoding: str, where: str) -> None:
        """SkipFrame unless ``encoding`` is one of CAMERA_ENCODINGS (the one list every message names)."""
        if _camera_encoding(encoding) is not None:
            return
        from depth_pose_ros.utils.image_codec import ENCODINGS

        known = str(encoding).lower() in {e.lower() for e in ENCODINGS}
        what = f"encoding {encoding} is not a camera image" if known else f"unsupported encoding {encoding!r}"
        raise SkipFrame("bad_image", f"{where}: {what}; camera encodings: {', '.join(CAMERA_ENCODINGS)}")

    def _apply_stamp_policy(self, stamp_ns: int) -> None:
        """A stamp jump back restarts the odometry and drops cached camera_info / stereo images from before
        the jump, before this frame is paired (gaps and repeats: the estimator's own policy)."""
        from depth_pose_ros.pipeline.estimator import stamp_policy

        max_gap_s = self.settings.estimator.max_gap_s
        with self._lock:
            if self._last_stamp_ns is None:
                return
            reason, keep_pose = stamp_policy(self._last_stamp_ns * 1e-9, stamp_ns * 1e-9, max_gap_s)
            if not reason or keep_pose:
                return
            jump = (self._last_stamp_ns - stamp_ns) * 1e-9
            self._reset_state()
            horizon = stamp_ns + int(max_gap_s * 1e9)  # entries of this new stretch may be a little ahead
            stale = self._infos.discard_after(horizon) + self._stereo.discard_after(horizon)
        self.stats.reset()
        self.get_logger().warn(f"image stamps jumped back by {jump:.3f} s (bag loop or restarted driver / clock): "
                               f"recurrent state and odometry reset, {stale} cached camera_info / stereo "
                               "message(s) from before the jump dropped")

    def _intrinsics(self, stamp_ns: int, width: int, height: int,
                    where: str) -> tuple[np.ndarray, Optional[Distortion]]:
        """(K, distortion) of this image: its camera_info (exact stamp, else nearest within the tolerance),
        else the ``intrinsics.*`` parameters (no distortion); SkipFrame otherwise."""
        s = self.settings
        # The camera_info of an image may simply be a little late (two topics), and it is preferred over
        # the parameters whenever one comes: wait for it while someone publishes camera_info. A camera
        # without camera_info must not pay the wait on every frame; without parameters, the first
        # camera_info of a new connection gets a longer wait (there is nothing to do without K anyway).
        wait_s = s.camera_info_wait_s
        if s.fallback_K is not None:
            if self._infos.received == 0 and self._camera_info_publishers() == 0:
                wait_s = 0.0
        elif self._infos.received == 0:
            wait_s = max(wait_s, FIRST_CAMERA_INFO_WAIT_S)
        match = self._infos.lookup(stamp_ns, int(s.camera_info_tolerance_s * 1e9), wait_s)
        if match is not None:
            info = match.value
            if info.error:
                raise SkipFrame("bad_camera_info", f"{where}: {info.error}")
            if (info.width, info.height) != (0, 0) and (info.width, info.height) != (width, height):
                raise SkipFrame("camera_info_size", f"{where}: camera_info is for {info.width}x{info.height} but "
                                                    f"the image is {width}x{height}; frame skipped")
            return info.K, info.distortion
        latest = self._infos.latest()
        detail = (f"nearest camera_info is {abs(latest.stamp_ns - stamp_ns) * 1e-9:.3f} s away"
                  if latest is not None else "no camera_info received yet")
        if s.fallback_K is not None:
            if self._infos.received:
                self._log_throttled("fallback_K", f"{where}: no camera_info within {s.camera_info_tolerance_s} s "
                                                  f"({detail}): using the intrinsics.* parameters", warning=True)
            return s.fallback_K, None
        raise SkipFrame("no_camera_info", f"{where}: no camera_info within {s.camera_info_tolerance_s} s "
                                          f"({detail}) on {self.resolve_topic_name(s.camera_info_topic)} and "
                                          "intrinsics.fx/fy/cx/cy are not set")

    def _camera_info_publishers(self) -> int:
        sub = self._info_sub
        return sub.get_publisher_count() if sub is not None else 0

    def _stereo_partner(self, stamp_ns: int, where: str) -> np.ndarray:
        s = self.settings
        match = self._stereo.lookup(stamp_ns, int(s.camera_info_tolerance_s * 1e9), s.camera_info_wait_s)
        if match is None:
            raise SkipFrame("no_stereo", f"{where}: no right image on "
                                         f"{self.resolve_topic_name(s.stereo_image_topic)} at this stamp")
        try:
            return image_msg_to_numpy(match.value)[0]
        except ConversionError as exc:
            raise SkipFrame("bad_stereo", f"{where}: right image: {exc}") from None

    def _reset_state(self) -> None:
        """Forget the recurrent state and restart the odometry (caller holds ``_lock``)."""
        self.estimator.reset()
        self._pose_cov.reset()
        self._path.clear()
        self._path_dirty = False
        self._last_stamp_ns = None

    # ---------------------------------------------------------------------------------- outputs
    def _odometry(self, result) -> Optional[tuple[np.ndarray, tuple, np.ndarray, np.ndarray]]:
        """(T_odom_base, (v, w), pose covariance, twist covariance), or None when anything is not finite."""
        T_bc = self.settings.T_base_cam
        T_odom_base = base_pose(result.T_world_cam, T_bc)
        twist = base_twist(result.T_cur_prev, result.dt, T_bc)
        if result.T_cur_prev is not None:
            motion = base_motion(result.T_cur_prev, T_bc)
            angle = float(np.arccos(np.clip((np.trace(motion[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)))
            frame_cov = motion_covariance(result.status, result.confidence, float(np.linalg.norm(motion[:3, 3])),
                                          angle)
        else:
            frame_cov = motion_covariance(result.status, 0.0, 0.0, 0.0)
        pose_cov = self._pose_cov.add(frame_cov) if np.isfinite(frame_cov).all() else self._pose_cov.cov
        twist_cov = twist_covariance(frame_cov, result.dt)
        parts = (T_odom_base, twist[0], twist[1], pose_cov, twist_cov)
        if not all(np.isfinite(p).all() for p in parts):
            self._log_throttled("non_finite", "non-finite odometry; odom, tf and path not published for this frame")
            return None
        return T_odom_base, twist, pose_cov, twist_cov

    def _camera_frame(self, header_frame: str, stamp) -> str:
        frame = self.settings.camera_frame or header_frame or DEFAULT_CAMERA_FRAME
        if frame not in self._camera_frames_sent:
            self._send_static_tf(frame, stamp)
        return frame

    def _static_transforms(self, optical: str, stamp) -> list[TransformStamped]:
        """base_link -> camera_link -> ``optical`` (REP 103 optical rotation), or base_link -> ``optical``
        directly without a camera_link frame; the composite is the same either way."""
        s = self.settings
        if s.camera_link_frame and optical == s.camera_link_frame:
            self._warn_once(f"frame:{optical}", f"the optical frame {optical!r} (image header or frames.camera) "
                                                "is frames.camera_link: publishing base_link -> it as the optical "
                                                "frame; set frames.camera to name the optical frame")
        if s.camera_link_frame and optical != s.camera_link_frame:
            return [transform_msg(s.T_base_link, stamp, s.base_frame, s.camera_link_frame),
                    transform_msg(T_LINK_OPTICAL, stamp, s.camera_link_frame, optical)]
        return [transform_msg(s.T_base_cam, stamp, s.base_frame, optical)]

    def _send_static_tf(self, frame: str, stamp) -> None:
        self._camera_frames_sent.add(frame)
        if frame in (self.settings.base_frame, self.settings.odom_frame):
            self._warn_once(f"frame:{frame}", f"the optical frame {frame!r} is the robot's {frame}: no static "
                                              "camera transform published; set frames.camera")
            return
        if self.tf is not None:
            self.tf.send_static(self._static_transforms(frame, stamp))

    def _output_depth(self, frame: _Frame) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray]]:
        """(depth, its K, colour image of the same size on demand) at the ``output.size``."""
        result = frame.result
        if self.settings.output_size == "network":
            return result.depth, result.K, lambda: result.image
        depth, K = output_depth(result, frame.K, frame.image.shape[:2], self.settings.output_size)

        def colours() -> np.ndarray:  # the image the depth is registered to: the undistorted camera image
            return self.estimator.undistort(to_rgb_or_gray(frame.image), frame.K, frame.distortion)

        return depth, K, colours

    def _publish(self, frame: _Frame) -> None:
        s, stamp = self.settings, frame.stamp
        if frame.odom is not None:
            T_odom_base, twist, pose_cov, twist_cov = frame.odom
            if self.tf is not None:
                self.tf.send([transform_msg(T_odom_base, stamp, s.odom_frame, s.base_frame)])
            if self.pub_odom is not None:
                self.pub_odom.publish(pose_to_odometry_msg(T_odom_base, twist, pose_cov, stamp, s.odom_frame,
                                                           s.base_frame, twist_covariance=twist_cov))
            if self.pub_path is not None and frame.path is not None:
                self.pub_path.publish(Path(header=make_header(stamp, s.odom_frame), poses=frame.path))
        # Images and clouds are built only for topics someone subscribes to (a recorder counts): at the
        # camera size they are most of the node's own work per frame.
        depth_pub, info_pub, colored_pub, cloud_pub, triangulated_pub = (
            pub if pub is not None and pub.get_subscription_count() > 0 else None
            for pub in (self.pub_depth, self.pub_depth_info, self.pub_colored, self.pub_cloud, self.pub_triangulated))
        if triangulated_pub is not None:
            self._publish_triangulated(triangulated_pub, frame)
        if depth_pub is None and info_pub is None and colored_pub is None and cloud_pub is None:
            return
        depth, K, colours = self._output_depth(frame)
        registered = self.settings.output_size == "camera"
        h, w = depth.shape
        if depth_pub is not None:  # registered depth is finite and >= 0 already; network depth is sanitised
            depth_pub.publish(numpy_to_image_msg(depth, "32FC1", stamp, frame.frame_id) if registered
                              else depth_to_msg(depth, stamp, frame.frame_id))
        if info_pub is not None:
            info_pub.publish(make_camera_info(K, w, h, stamp, frame.frame_id))
        if colored_pub is not None:
            colored = self._colorizer(depth, range_depth=frame.result.depth)
            colored_pub.publish(numpy_to_image_msg(colored, "rgb8", stamp, frame.frame_id))
        if cloud_pub is not None:
            xyz, rgb = depth_to_points(depth, K, s.cloud_stride, s.cloud_max_range_m, colours())
            cloud_pub.publish(points_to_cloud_msg(xyz, rgb, stamp, frame.frame_id))  # drops non-finite

    def _publish_triangulated(self, pub, frame: _Frame) -> None:
        """The step's triangulated points (``pipeline.result.triangulated_points``), coloured from the
        undistorted camera image they project into; an empty cloud when the pose was not measured, so a
        listener sees every frame."""
        xyz = triangulated_points(frame.result, self.settings.cloud_max_range_m)
        rgb = None
        if len(xyz):
            image = self.estimator.undistort(to_rgb_or_gray(frame.image), frame.K, frame.distortion)
            h, w = image.shape[:2]
            uv = (xyz / xyz[:, 2:3]) @ np.asarray(frame.K, dtype=np.float64).T
            u = np.clip(np.round(uv[:, 0]).astype(np.int64), 0, w - 1)
            v = np.clip(np.round(uv[:, 1]).astype(np.int64), 0, h - 1)
            rgb = image[v, u] if image.ndim == 3 else np.repeat(image[v, u][:, None], 3, axis=1)
        pub.publish(points_to_cloud_msg(xyz, rgb, frame.stamp, frame.frame_id))

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warn(message)

    def _log_throttled(self, key: str, message: str, warning: bool = False) -> None:
        """Error (or warning) log at most every LOG_THROTTLE_S per ``key``, saying how many were suppressed."""
        now = time.monotonic()
        last, suppressed = self._throttle.get(key, (-np.inf, 0))
        if now - last < LOG_THROTTLE_S:
            self._throttle[key] = (last, suppressed + 1)
            return
        self._throttle[key] = (now, 0)
        more = f" ({suppressed} more like it in the last {LOG_THROTTLE_S:.0f} s)" if suppressed else ""
        if warning:  # two call sites: rclpy refuses one call site logging at two severities
            self.get_logger().warn(message + more)
        else:
            self.get_logger().error(message + more)


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
