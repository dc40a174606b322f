"""``depth_pose_node``: camera images in; depth, point cloud, odometry, TF, path and diagnostics out.

Run: ``depth_pose_node --ros-args --params-file config/default.yaml -r image:=/camera/image_raw
-r camera_info:=/camera/camera_info`` (parameters: :mod:`depth_pose_ros.ros.node_params`). The managed
variant with the same settings and outputs is :mod:`depth_pose_ros.ros.depth_pose_lifecycle_node`; the
processing both share (threading, pairing, stamp policy, outputs) is :mod:`depth_pose_ros.ros.node_core`.

Outputs share the image's stamp, all in the camera optical frame unless said otherwise: ``depth`` (32FC1
metres, REP 118; unknown = 0, never NaN) and ``depth/camera_info`` -- at the camera image's size and K by
default (``output.size: camera``, registered to the undistorted image), else at the network's;
``depth/colored`` (rgb8, same size); ``points`` (xyz + rgb every ``cloud.stride`` pixels of that depth);
``odom`` (``T_odom_base`` and base_link twist, REP 105); ``/tf`` odom -> base_link and ``/tf_static``
base_link -> camera_link -> optical frame; ``path`` (from a timer, ``path.period_s``); and
``/diagnostics`` about once a second. ``~/reset`` (std_srvs/Trigger) restarts the recurrent state and
the odometry.

Bad input never stops the node: an image that cannot be decoded, a missing / invalid / mismatched
camera_info or a frame the estimator rejects is skipped with an error logged at most every few
seconds per kind of problem, and counted in the diagnostics.
"""
from __future__ import annotations

import sys
from typing import Optional

from rclpy.node import Node

from depth_pose_ros.ros.node_core import DepthPoseCore, SkipFrame, run_node
from depth_pose_ros.ros.node_params import NODE_NAME

__all__ = ["DepthPoseNode", "SkipFrame", "main"]


class DepthPoseNode(DepthPoseCore, Node):
    """The node, fully set up by its constructor; ``shutdown()`` stops the worker thread."""

    def __init__(self, **node_kwargs) -> None:
        Node.__init__(self, NODE_NAME, **node_kwargs)
        self._declare_node_parameters()
        self._configure()
        self._create_outputs()
        self._start_processing()

    def shutdown(self) -> None:
        """Stop the subscriptions and the worker (after the frame in progress)."""
        self._stop_processing()


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``depth_pose_node``: run until SIGINT / SIGTERM; 0 on a clean stop, 2 on bad parameters."""
    return run_node(lambda context: DepthPoseNode(context=context), args)


if __name__ == "__main__":
    sys.exit(main())
