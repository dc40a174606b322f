"""How ``depth_pose_node`` reports a frame it cannot use without ever stopping: :class:`SkipFrame` and throttled logs.

Why a module of its own: bad input is found in several places of the frame path -- the run loop (an
undecodable image, an unsupported encoding, a frame the estimator rejects), the pairing (no / an invalid /
a mismatched camera_info, no stereo partner) and the outputs (non-finite odometry). Each of them raises the
same :class:`SkipFrame`, whose ``reason`` is the diagnostics counter, and logs through the same throttle, so
a camera sending thirty bad frames a second costs one log line every :data:`LOG_THROTTLE_S` per kind of
problem (with a count of the rest) and never a traceback or a stopped worker. The mixins of the node
(``node_pairing``, ``node_outputs``, ``node_core``) all inherit :class:`ProblemLogMixin` from here, which
is why it cannot live in ``node_core`` (that module imports them).
"""
from __future__ import annotations

import time

import numpy as np

from depth_pose_ros.ros.node_host import NodeHost

#: The same kind of problem is logged at most once per this many seconds (with a count of the rest).
LOG_THROTTLE_S = 5.0


class SkipFrame(Exception):
    """This frame cannot be processed; ``reason`` is the counter / throttle key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ProblemLogMixin(NodeHost):
    """Once-only and throttled logging of the node; the host sets ``_warned`` and ``_throttle`` (``_configure``)."""

    _warned: set[str]
    _throttle: dict[str, tuple[float, int]]

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
