"""``depth_pose_node``: camera images in; depth, point cloud, odometry, TF, path and diagnostics out.

Run: ``depth_pose_node --ros-args --params-file config/default.yaml -r image:=/camera/image_raw
-r camera_info:=/camera/camera_info`` (parameters: :mod:`depth_pose_ros.ros.node_params`).

Threading, and why: the estimator takes tens of milliseconds per frame, cameras deliver every 33-100 ms.
The subscription callback only stores the newest image in a one-item slot (replacing one that was not
processed yet, counted as dropped); a worker thread takes the newest image, pairs it with its
camera_info, runs :meth:`Estimator.step` and publishes everything. So the executor stays responsive
(services, camera_info, diagnostics) and no backlog ever builds: the node is always working on the
freshest frame and the output latency is bounded by one processing time.

Outputs share the image's stamp: ``depth`` (32FC1 metres, REP 118; unknown = 0, never NaN) and
``depth/camera_info`` (K at the depth resolution) in the camera optical frame; ``depth/colored``
(rgb8); ``points`` (xyz + rgb, camera optical frame); ``odom`` (``T_odom_base`` and base_link twist,
REP 105); ``/tf`` odom -> base_link and ``/tf_static`` base_link -> camera; ``path``; and
``/diagnostics`` about once a second. ``~/reset`` (std_srvs/Trigger) restarts the recurrent state and
the odometry.

Bad input never stops the node: an image that cannot be decoded, a missing / invalid / mismatched
camera_info or a frame the estimator rejects is skipped with an error logged at most every few
seconds per kind of problem, and counted in the diagnostics.
"""
from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
from nav_msgs.msg import Odometry, Path
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_srvs.srv import Trigger

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
    NODE_NAME,
    PARAMETERS,
    make_estimator,
    parse_settings,
    unknown_parameters,
)
from depth_pose_ros.ros.node_runner import ros_session, spin_until_stopped
from depth_pose_ros.ros.odometry_math import (
    PoseCovariance,
    base_motion,
    base_pose,
    base_twist,
    depth_to_points,
    motion_covariance,
    twist_covariance,
)
from depth_pose_ros.ros.qos import describe_qos, qos_from_name
from depth_pose_ros.ros.tf_broadcast import TfBroadcaster
from depth_pose_ros.utils.viz import DepthColorizer

#: The same kind of problem is logged at most once per this many seconds (with a count of the rest).
LOG_THROTTLE_S = 5.0
#: Longest wait for the very first camera_info when the parameters give no intrinsics.
FIRST_CAMERA_INFO_WAIT_S = 1.0
#: Camera frame used when neither ``frames.camera`` nor the image header names one.
DEFAULT_CAMERA_FRAME = "camera_optical_frame"
#: Camera encodings the estimator takes (32FC1 is a depth image, not a camera image).
CAMERA_ENCODINGS = ("rgb8", "mono8", "8UC1", "mono16", "16UC1")


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
    error: str = ""


class DepthPoseNode(Node):
    """The node; see the module docstring. ``shutdown()`` stops the worker thread."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        overrides = set(getattr(self, "_parameter_overrides", {}).keys())
        self.settings = s = parse_settings(self._declare_parameters(), explicit=overrides)
        log = self.get_logger()
        self.estimator, self.model_source = make_estimator(s, warn=log.warn)
        s.estimator = self.estimator.config  # the effective settings: model folder + parameters
        self._warm_up()
        self.stats = NodeStats()
        self._lock = threading.Lock()  # estimator, odometry state
        self._slot: LatestSlot[_Incoming] = LatestSlot()
        self._infos: StampedCache[_CameraInfoEntry] = StampedCache(capacity=30)
        self._stereo: StampedCache[Image] = StampedCache(capacity=10)
        self._last_stamp_ns: Optional[int] = None
        self._pose_cov = PoseCovariance()
        self._path: deque = deque(maxlen=s.path_max_length)
        self._throttle: dict[str, tuple[float, int]] = {}
        self._camera_frames_sent: set[str] = set()
        self._stop = threading.Event()

        qos_image = qos_from_name(s.qos_image, what="qos.image")
        qos_info = qos_from_name(s.qos_camera_info, what="qos.camera_info")
        qos_out = qos_from_name(s.qos_output, what="qos.output")

        self.pub_depth = self.create_publisher(Image, "depth", qos_out) if s.publishes("depth") else None
        self.pub_depth_info = self.create_publisher(CameraInfo, "depth/camera_info", qos_out) \
            if s.publishes("depth") else None
        self.pub_colored = self.create_publisher(Image, "depth/colored", qos_out) \
            if s.publishes("colored_depth") else None
        self._colorizer = DepthColorizer()
        self.pub_cloud = self.create_publisher(PointCloud2, "points", qos_out) if s.publishes("cloud") else None
        self.pub_odom = self.create_publisher(Odometry, "odom", qos_out) if s.publishes("odom") else None
        self.pub_path = self.create_publisher(Path, "path", qos_out) if s.publishes("path") else None
        self.tf = TfBroadcaster(self) if s.publishes("tf") else None
        self.create_service(Trigger, "~/reset", self._on_reset)
        self._diag_pub = None
        if s.publishes("diagnostics"):
            from diagnostic_msgs.msg import DiagnosticArray

            self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", qos_from_name("reliable"))
            self._diag_last = self.get_clock().now()
            self.create_timer(s.diagnostics_period_s, self._on_diagnostics)
        if s.camera_frame:
            self._send_static_tf(s.camera_frame, self.get_clock().now())
        # Subscriptions last: a frame may arrive as soon as they exist, and every publisher must be there.
        if s.use_compressed:
            image_topic = f"{s.image_topic.rstrip('/')}/compressed"
            self.create_subscription(CompressedImage, image_topic, lambda m: self._on_image(m, True), qos_image)
        else:
            image_topic = s.image_topic
            self.create_subscription(Image, image_topic, lambda m: self._on_image(m, False), qos_image)
        self.create_subscription(CameraInfo, s.camera_info_topic, self._on_camera_info, qos_info)
        if s.estimator.scale.source == "stereo":
            self.create_subscription(Image, s.stereo_image_topic,
                                     lambda m: self._stereo.add(stamp_to_ns(m.header.stamp), m), qos_info)
        self._image_topic = self.resolve_topic_name(image_topic)

        self._worker = threading.Thread(target=self._run, name="depth_pose_worker", daemon=True)
        self._worker.start()
        est = s.estimator
        log.info(
            f"ready: {self._image_topic} [{'CompressedImage' if s.use_compressed else 'Image'}, "
            f"{describe_qos(qos_image)}] + {self.resolve_topic_name(s.camera_info_topic)}; model: "
            f"{self.model_source}; input {est.height}x{est.width} on {est.device}, flow {est.flow_source}, "
            f"scale {est.scale.source}; outputs {describe_qos(qos_out)}"
            + (f", tf via {self.tf.backend}" if self.tf else "")
        )

    # ------------------------------------------------------------------------------- life cycle
    def shutdown(self) -> None:
        """Stop the worker (after the frame in progress)."""
        self._stop.set()
        self._slot.close()
        self._worker.join(timeout=30.0)

    def _declare_parameters(self) -> dict:
        unknown = unknown_parameters(getattr(self, "_parameter_overrides", {}).keys())
        if unknown:
            raise ValueError(f"unknown parameter(s) for {NODE_NAME}: {', '.join(unknown)}; see "
                             "config/default.yaml for the valid names")
        values = {}
        for spec in PARAMETERS:
            descriptor = ParameterDescriptor(description=spec.description, read_only=True, dynamic_typing=True)
            values[spec.name] = self.declare_parameter(spec.name, spec.default, descriptor).value
        return values

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
            entry = _CameraInfoEntry(camera_info_to_K(msg), width, height)
        except ConversionError as exc:
            entry = _CameraInfoEntry(None, width, height, str(exc))
        self._infos.add(stamp_to_ns(msg.header.stamp), entry)

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
        hardware = self.settings.camera_frame or next(iter(list(self._camera_frames_sent)), self._image_topic)
        self._diag_pub.publish(diagnostic_array(report, now, f"{self.get_name()}: depth and odometry", hardware,
                                                {"model": self.model_source, "image_topic": self._image_topic}))

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
        from depth_pose_ros.pipeline.estimator import FrameError

        t_start = time.monotonic()
        msg = item.msg
        stamp_ns = stamp_to_ns(msg.header.stamp)
        where = f"{self._image_topic} @ {stamp_ns * 1e-9:.3f}"
        try:
            image, encoding = (compressed_msg_to_numpy if item.compressed else image_msg_to_numpy)(msg)
        except ConversionError as exc:
            raise SkipFrame("bad_image", f"{where}: {exc}") from None
        if encoding not in CAMERA_ENCODINGS:
            raise SkipFrame("bad_image", f"{where}: encoding {encoding} is not a camera image "
                                         f"(expected rgb8, bgr8, rgba8, bgra8, mono8 or mono16)")
        height, width = image.shape[:2]
        K = self._intrinsics(stamp_ns, width, height, where)
        stereo_image = self._stereo_partner(stamp_ns, where) if self.settings.estimator.scale.source == "stereo" \
            else None

        with self._lock:
            if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
                jump = (self._last_stamp_ns - stamp_ns) * 1e-9
                self._reset_state()
                self.stats.reset()
                self.get_logger().warn(f"image stamps jumped back by {jump:.3f} s (bag loop or restarted "
                                       "clock): recurrent state and odometry reset")
            t_step = time.monotonic()
            try:
                result = self.estimator.step(image, K, stamp_ns * 1e-9, stereo_image=stereo_image)
            except FrameError as exc:
                raise SkipFrame("bad_frame", f"{where}: {exc}") from None
            step_s = time.monotonic() - t_step
            if result.reset_reason:  # a gap or a repeated stamp (throttled: a driver may repeat every stamp)
                self._log_throttled(re.sub(r"[0-9.]+", "#", result.reset_reason),
                                    f"tracking restarted at {where}: {result.reset_reason}", warning=True)
            self._last_stamp_ns = stamp_ns
            odom = self._odometry(result)
            if odom is not None and self.pub_path is not None:
                self._path.append(self._path_entry(odom[0], msg.header.stamp))
            path = list(self._path)

        camera_frame = self._camera_frame(msg.header.frame_id, msg.header.stamp)
        self._publish(result, msg.header.stamp, camera_frame, odom, path)
        t_end = time.monotonic()
        latency_ms = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-6
        stages = {"queue": t_start - item.received_s, "pair": t_step - t_start, "step": step_s,
                  "publish": t_end - t_step - step_s, "total": t_end - item.received_s}
        self.stats.processed(latency_ms, {k: v * 1e3 for k, v in stages.items()}, result.status,
                             result.inlier_ratio, result.confidence, result.scale)

    def _intrinsics(self, stamp_ns: int, width: int, height: int, where: str) -> np.ndarray:
        """K of this image: its camera_info (exact stamp, else nearest within the tolerance), else the
        ``intrinsics.*`` parameters when no camera_info is there; SkipFrame otherwise."""
        s = self.settings
        # The camera_info of an image may simply be a little late (two topics). Before the first one came:
        # no wait when the parameters give K (a camera without camera_info would pay it on every frame),
        # a long one otherwise (the first message of a new connection can be slow, and without K there
        # is nothing to do anyway).
        wait_s = s.camera_info_wait_s
        if self._infos.received == 0:
            wait_s = 0.0 if s.fallback_K is not None else max(wait_s, FIRST_CAMERA_INFO_WAIT_S)
        match = self._infos.lookup(stamp_ns, int(s.camera_info_tolerance_s * 1e9), wait_s)
        if match is not None:
            info = match.value
            if info.error:
                raise SkipFrame("bad_camera_info", f"{where}: {info.error}")
            if (info.width, info.height) != (0, 0) and (info.width, info.height) != (width, height):
                raise SkipFrame("camera_info_size", f"{where}: camera_info is for {info.width}x{info.height} but "
                                                    f"the image is {width}x{height}; frame skipped")
            return info.K
        if s.fallback_K is not None:
            return s.fallback_K
        latest = self._infos.latest()
        detail = (f"nearest camera_info is {abs(latest.stamp_ns - stamp_ns) * 1e-9:.3f} s away"
                  if latest is not None else "no camera_info received yet")
        raise SkipFrame("no_camera_info", f"{where}: no camera_info within {s.camera_info_tolerance_s} s "
                                          f"({detail}) on {self.resolve_topic_name(s.camera_info_topic)} and "
                                          "intrinsics.fx/fy/cx/cy are not set")

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

    def _path_entry(self, T_odom_base: np.ndarray, stamp):
        from geometry_msgs.msg import PoseStamped

        return PoseStamped(header=make_header(stamp, self.settings.odom_frame),
                           pose=matrix_to_pose_msg(T_odom_base, "T_odom_base"))

    def _camera_frame(self, header_frame: str, stamp) -> str:
        frame = self.settings.camera_frame or header_frame or DEFAULT_CAMERA_FRAME
        if frame not in self._camera_frames_sent:
            self._send_static_tf(frame, stamp)
        return frame

    def _send_static_tf(self, frame: str, stamp) -> None:
        self._camera_frames_sent.add(frame)
        if self.tf is not None:
            self.tf.send_static([transform_msg(self.settings.T_base_cam, stamp, self.settings.base_frame, frame)])

    def _publish(self, result, stamp, camera_frame: str, odom, path: list) -> None:
        s = self.settings
        if odom is not None:
            T_odom_base, twist, pose_cov, twist_cov = odom
            if self.tf is not None:
                self.tf.send([transform_msg(T_odom_base, stamp, s.odom_frame, s.base_frame)])
            if self.pub_odom is not None:
                self.pub_odom.publish(pose_to_odometry_msg(T_odom_base, twist, pose_cov, stamp, s.odom_frame,
                                                           s.base_frame, twist_covariance=twist_cov))
            if self.pub_path is not None:
                self.pub_path.publish(Path(header=make_header(stamp, s.odom_frame), poses=path))
        depth = result.depth
        if self.pub_depth is not None:
            h, w = depth.shape
            self.pub_depth.publish(depth_to_msg(depth, stamp, camera_frame))  # non-finite -> 0
            self.pub_depth_info.publish(make_camera_info(result.K, w, h, stamp, camera_frame))
        if self.pub_colored is not None:
            self.pub_colored.publish(numpy_to_image_msg(self._colorizer(depth), "rgb8", stamp, camera_frame))
        if self.pub_cloud is not None:
            xyz, rgb = depth_to_points(depth, result.K, s.cloud_stride, s.cloud_max_range_m, result.image)
            self.pub_cloud.publish(points_to_cloud_msg(xyz, rgb, stamp, camera_frame))  # drops non-finite

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


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``depth_pose_node``: run until SIGINT / SIGTERM; 0 on a clean stop, 2 on bad parameters."""
    try:
        with ros_session(args) as (context, stop):
            node = DepthPoseNode(context=context)
            try:
                spin_until_stopped(node, stop)
            finally:
                node.shutdown()
                node.destroy_node()
            return 0
    except (ValueError, OSError, ParameterException) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
