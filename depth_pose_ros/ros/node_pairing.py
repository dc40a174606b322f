"""Pairing each image of ``depth_pose_node`` with its camera_info (K, distortion) and stereo partner, by stamp.

Why a module of its own: which intrinsics a frame gets decides everything downstream, and the rules are
many -- the camera_info of exactly the image's stamp, else the nearest one within
``camera_info.tolerance_s``, waiting a little for a late one (two topics race), a longer first wait when
no ``intrinsics.*`` parameters can stand in, no wait at all for a camera that has no camera_info, the
parameters as fallback, a camera_info for another image size or with invalid values skipping the frame,
an unknown distortion model warned about once. The caches themselves are ``frame_sync.StampedCache`` (ROS
free, tested alone); :class:`PairingMixin` fills them from the subscriptions and applies those rules for
the run loop (``node_core``), raising ``node_problems.SkipFrame`` when a frame cannot be paired.

Stamps: :meth:`PairingMixin._apply_stamp_policy` runs the project's one ``stamp_policy`` before a frame is
paired. A jump back in time (a bag loop, a restarted driver) restarts the odometry *and* empties the caches
of entries from before the jump, which would otherwise pair the new frames with the old stretch's
camera_info; gaps and repeated stamps are the estimator's business.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from depth_pose_ros.data.rosbag_io import camera_info_distortion
from depth_pose_ros.geometry.distortion import Distortion, UnknownDistortionModel
from depth_pose_ros.ros.convert import ConversionError, camera_info_to_K, image_msg_to_numpy, stamp_to_ns
from depth_pose_ros.ros.diagnostics import NodeStats
from depth_pose_ros.ros.frame_sync import StampedCache
from depth_pose_ros.ros.node_params import NodeSettings
from depth_pose_ros.ros.node_problems import ProblemLogMixin, SkipFrame

#: Longest wait for the very first camera_info when the parameters give no intrinsics.
FIRST_CAMERA_INFO_WAIT_S = 1.0
#: camera_info messages kept for pairing (about a second of a 30 Hz camera).
CAMERA_INFO_CACHE = 30
#: Right images kept for pairing (``scale.source: stereo``).
STEREO_CACHE = 10


@dataclass
class CameraInfoEntry:
    """A received camera_info as pairing needs it: K and distortion, or why it cannot be used."""

    K: Optional[np.ndarray]
    width: int
    height: int
    distortion: Optional[Distortion] = None
    error: str = ""


class PairingMixin(ProblemLogMixin):
    """camera_info / stereo caches of the host node and the pairing of a frame with them.

    The host provides ``settings``, ``stats``, ``_lock`` (held around the estimator and odometry state),
    ``_last_stamp_ns`` (stamp of the last processed frame), ``_reset_state`` and ``_camera_info_publishers``
    (``node_inputs``); :meth:`_init_pairing` creates the caches.
    """

    settings: NodeSettings
    stats: NodeStats
    _lock: threading.Lock
    _last_stamp_ns: Optional[int]
    _infos: StampedCache[CameraInfoEntry]
    _stereo: StampedCache[Image]
    _reset_state: Any  # restarts the estimator and the odometry (caller holds ``_lock``)
    _camera_info_publishers: Any  # node_inputs.CameraInputsMixin
    resolve_topic_name: Any  # rclpy.node.Node's

    def _init_pairing(self) -> None:
        """Empty caches (entries from before a stamp jump back go in :meth:`_apply_stamp_policy`)."""
        self._infos = StampedCache(capacity=CAMERA_INFO_CACHE)
        self._stereo = StampedCache(capacity=STEREO_CACHE)

    # -------------------------------------------------------------------------------- callbacks
    def _on_camera_info(self, msg: CameraInfo) -> None:
        width, height = int(msg.width), int(msg.height)
        try:
            entry = CameraInfoEntry(camera_info_to_K(msg), width, height, self._distortion(msg))
        except (ConversionError, ValueError) as exc:
            entry = CameraInfoEntry(None, width, height, error=str(exc))
        self._infos.add(stamp_to_ns(msg.header.stamp), entry)

    def _on_stereo_image(self, msg: Image) -> None:
        self._stereo.add(stamp_to_ns(msg.header.stamp), msg)

    def _distortion(self, msg: CameraInfo) -> Optional[Distortion]:
        """The camera_info's lens distortion (None: none). An unknown model is warned about once and the
        images are used as they are; invalid coefficients make the camera_info invalid."""
        try:
            return camera_info_distortion(msg)  # the one camera_info reading (bags and topics)
        except UnknownDistortionModel as exc:
            self._warn_once(f"distortion:{msg.distortion_model}", f"camera_info on "
                            f"{self.resolve_topic_name(self.settings.camera_info_topic)}: {exc}")
            return None
        except ValueError as exc:
            raise ConversionError(f"camera_info: d: {exc}") from None

    # ---------------------------------------------------------------------------------- pairing
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
            assert info.K is not None  # an entry without an error has its K (CameraInfoEntry)
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

    def _stereo_partner(self, stamp_ns: int, where: str) -> np.ndarray:
        """The right image of exactly (or nearest within the tolerance to) this stamp; SkipFrame otherwise."""
        s = self.settings
        match = self._stereo.lookup(stamp_ns, int(s.camera_info_tolerance_s * 1e9), s.camera_info_wait_s)
        if match is None:
            raise SkipFrame("no_stereo", f"{where}: no right image on "
                                         f"{self.resolve_topic_name(s.stereo_image_topic)} at this stamp")
        try:
            return image_msg_to_numpy(match.value)[0]
        except ConversionError as exc:
            raise SkipFrame("bad_stereo", f"{where}: right image: {exc}") from None
