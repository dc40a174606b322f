"""Everything ``depth_pose_node`` publishes: the publishers, and what is built from each processed frame.

Why a module of its own: the run loop (``node_core``) hands over one :class:`OutputFrame` per processed
frame and needs to know nothing about messages; what goes out, in which frame and when is decided here:

* :meth:`OutputsMixin._create_outputs` / :meth:`~OutputsMixin._destroy_outputs` -- the publishers (lifecycle
  publishers for the managed node), the TF broadcaster and ``~/reset``; an output switched off in
  ``outputs.*`` has no publisher at all;
* odometry (``T_odom_base``, base_link twist, the covariances of ``odometry_math``), ``/tf`` odom ->
  base_link, ``/tf_static`` base_link -> camera_link -> optical frame (sent once per optical frame) and the
  path (with every frame, or from a timer: its cost grows with its length);
* depth, its camera_info, the coloured depth and the clouds, built only for topics someone subscribes to
  (at the camera size they are most of the node's own work per frame). ``output.size: camera`` (the
  default): ``depth`` registered to the camera image -- same size, the camera's K, the undistorted
  image's geometry -- and ``depth/camera_info`` saying exactly that; the cloud samples that depth every
  ``cloud.stride`` camera pixels. ``network``: the network-size depth and its K. ``points/triangulated``
  are the geometry's own measured points;
* ``/diagnostics`` from a timer: the ``diagnostics.NodeStats`` window, with ``diagnostics.silence_hint``
  when no image arrived (logged as a warning too once that lasts :data:`LARGE_FRAME_LOG_AFTER_S`).
"""
from __future__ import annotations

import functools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from geometry_msgs.msg import PoseStamped, TransformStamped
from nav_msgs.msg import Odometry, Path
from rclpy.service import Service
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_srvs.srv import Trigger

from depth_pose_ros.geometry.distortion import Distortion
from depth_pose_ros.pipeline.result import output_depth, triangulated_points
from depth_pose_ros.ros.convert import (
    depth_to_msg,
    make_camera_info,
    make_header,
    matrix_to_pose_msg,
    numpy_to_image_msg,
    points_to_cloud_msg,
    pose_to_odometry_msg,
    transform_msg,
)
from depth_pose_ros.ros.diagnostics import NodeStats, diagnostic_array, silence_hint
from depth_pose_ros.ros.node_inputs import QOS_OVERRIDES
from depth_pose_ros.ros.node_params import T_LINK_OPTICAL, NodeSettings
from depth_pose_ros.ros.node_problems import ProblemLogMixin
from depth_pose_ros.ros.odometry_math import (
    PoseCovariance,
    base_motion,
    base_pose,
    base_twist,
    depth_to_points,
    motion_covariance,
    twist_covariance,
)
from depth_pose_ros.ros.qos import qos_from_name
from depth_pose_ros.ros.tf_broadcast import TfBroadcaster
from depth_pose_ros.utils.image import to_rgb_or_gray
from depth_pose_ros.utils.viz import DepthColorizer

#: Camera frame used when neither ``frames.camera`` nor the image header names one.
DEFAULT_CAMERA_FRAME = "camera_optical_frame"
#: Logged as a warning once no image has arrived for this long (s) while a publisher exists (in the
#: diagnostics at once): a camera that is only about to start sending is no case for it.
LARGE_FRAME_LOG_AFTER_S = 5.0


@dataclass
class OutputFrame:
    """One processed frame on its way out."""

    result: Any  # pipeline.result.Result
    stamp: Any  # builtin_interfaces/Time of the image
    frame_id: str  # optical frame of the outputs
    image: np.ndarray  # the decoded camera image
    K: np.ndarray  # its intrinsics (those of the undistorted image too)
    distortion: Optional[Distortion]
    odom: Optional[tuple]
    path: Optional[list]  # the path to publish with this frame (path.period_s 0), else None


class OutputsMixin(ProblemLogMixin):
    """Publishers, TF, path, odometry and diagnostics of the host node.

    The host provides ``settings``, ``stats``, ``estimator`` (its ``undistort``), ``model_source``,
    ``_lock`` (held around the odometry and path state), ``_timers_``, ``_image_topic``, ``_image_sub`` /
    ``_image_best_effort`` (``node_inputs``) and ``_on_reset``; :meth:`_init_outputs` creates the state
    kept between frames.
    """

    settings: NodeSettings
    stats: NodeStats
    estimator: Any
    model_source: str
    _lock: threading.Lock
    _timers_: list
    _image_topic: str
    _image_sub: Any
    _image_best_effort: bool
    _on_reset: Any
    _reset_service: Optional[Service]
    tf: Optional[TfBroadcaster]

    def _init_outputs(self) -> None:
        """The state the outputs keep between frames: odometry covariance, path, optical frames sent."""
        self._pose_cov = PoseCovariance()
        self._path: deque = deque(maxlen=self.settings.path_max_length)
        self._path_dirty = False
        self._camera_frames_sent: set[str] = set()
        self._colorizer = DepthColorizer()
        self._silent_windows = 0  # diagnostics windows in a row without images while a publisher exists

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

    def _destroy_outputs(self) -> None:
        """Undo :meth:`_create_outputs` (lifecycle cleanup)."""
        for name in ("pub_depth", "pub_depth_info", "pub_colored", "pub_cloud", "pub_triangulated", "pub_odom",
                     "pub_path", "_diag_pub"):
            pub = getattr(self, name, None)
            if pub is not None:
                self._destroy_publisher(pub)
            setattr(self, name, None)
        tf, service = getattr(self, "tf", None), getattr(self, "_reset_service", None)
        if tf is not None:
            tf.destroy()
            self.tf = None
        if service is not None:
            self.destroy_service(service)
            self._reset_service = None
        self._camera_frames_sent = set()

    def _start_output_timers(self) -> None:
        """The diagnostics timer and (``path.period_s`` > 0) the path timer, kept in ``_timers_``."""
        s = self.settings
        if self._diag_pub is not None:
            self._diag_last = self.get_clock().now()
            self._timers_.append(self.create_timer(s.diagnostics_period_s, self._on_diagnostics))
        if self.pub_path is not None and s.path_period_s > 0:
            self._timers_.append(self.create_timer(s.path_period_s, self._on_path_timer))

    def _reset_odometry(self) -> None:
        """Restart the odometry covariance and the path (caller holds ``_lock``)."""
        self._pose_cov.reset()
        self._path.clear()
        self._path_dirty = False

    # --------------------------------------------------------------------------------- timers
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

    # ------------------------------------------------------------------------------ per frame
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

    def _extend_path(self, stamp, T_odom_base: np.ndarray) -> Optional[list]:
        """Append this pose to the path (when it is published; caller holds ``_lock``); returns the path to
        publish with this frame when ``path.period_s`` is 0, else None (the timer publishes it)."""
        s = self.settings
        if self.pub_path is None:
            return None
        self._path.append(PoseStamped(header=make_header(stamp, s.odom_frame),
                                      pose=matrix_to_pose_msg(T_odom_base, "T_odom_base")))
        self._path_dirty = True
        if s.path_period_s == 0:
            path, self._path_dirty = list(self._path), False
            return path
        return None

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

    def _output_depth(self, frame: OutputFrame, camera_image: Callable[[], np.ndarray]
                      ) -> tuple[np.ndarray, np.ndarray, Callable[[], np.ndarray]]:
        """(depth, its K, colour image of the same size on demand) at the ``output.size``; ``camera_image``:
        the undistorted camera image on demand (the image a camera-size depth is registered to)."""
        result = frame.result
        if self.settings.output_size == "network":
            return result.depth, result.K, lambda: result.image
        depth, K = output_depth(result, frame.K, frame.image.shape[:2], self.settings.output_size)
        return depth, K, camera_image

    def _publish(self, frame: OutputFrame) -> None:
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
        # the undistorted camera image, made at most once per frame: both clouds take their colours from it
        camera_image = functools.cache(
            lambda: self.estimator.undistort(to_rgb_or_gray(frame.image), frame.K, frame.distortion))
        if triangulated_pub is not None:
            self._publish_triangulated(triangulated_pub, frame, camera_image)
        if depth_pub is None and info_pub is None and colored_pub is None and cloud_pub is None:
            return
        depth, K, colours = self._output_depth(frame, camera_image)
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

    def _publish_triangulated(self, pub, frame: OutputFrame, camera_image: Callable[[], np.ndarray]) -> None:
        """The step's triangulated points (``pipeline.result.triangulated_points``), coloured from the
        undistorted camera image (``camera_image()``) they project into; an empty cloud when the pose was not
        measured, so a listener sees every frame."""
        xyz = triangulated_points(frame.result, self.settings.cloud_max_range_m)
        rgb = None
        if len(xyz):
            image = camera_image()
            h, w = image.shape[:2]
            uv = (xyz / xyz[:, 2:3]) @ np.asarray(frame.K, dtype=np.float64).T
            u = np.clip(np.round(uv[:, 0]).astype(np.int64), 0, w - 1)
            v = np.clip(np.round(uv[:, 1]).astype(np.int64), 0, h - 1)
            rgb = image[v, u] if image.ndim == 3 else np.repeat(image[v, u][:, None], 3, axis=1)
        pub.publish(points_to_cloud_msg(xyz, rgb, frame.stamp, frame.frame_id))
