"""The rclpy side of the bag tools: the message class of a bag's type name.

Everything else about bags needs no ROS and lives in :mod:`depth_pose_ros.data.rosbag_io` (reader,
split writer, :class:`~depth_pose_ros.data.rosbag_io.BagError`, type names, message decoding). The
player publishes and the recorder subscribes with rclpy message classes, which only exist where the
ROS 2 message packages are installed; that lookup is the one piece that belongs in the ``ros`` layer.
"""
from __future__ import annotations

import importlib

from depth_pose_ros.data.rosbag_io import BagError


def msg_class(type_name: str) -> type:
    """``"sensor_msgs/msg/Image"`` (or ``"sensor_msgs/Image"``) -> the rclpy message class.

    Raises:
        BagError: a malformed name, or a type whose package is not importable here.
    """
    parts = str(type_name).strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f"message type {type_name!r}: expected 'package/msg/Type'")
    try:
        module = importlib.import_module(f"{parts[0]}.{parts[1]}")
        return getattr(module, parts[2])
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {type_name!r} is not importable in this environment: {exc}") from exc
