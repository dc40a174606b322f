"""``bag_recorder``: record camera topics into rosbag2 (mcap or sqlite3) without ``ros2 bag``.

Run: ``python -m depth_pose_ros.ros.bag_recorder --ros-args -p output_dir:=bags
-p "topics:=['/camera/image_raw', '/camera/camera_info']"`` (or ``--params-file config/recorder.yaml``).

Subscriptions are *raw* (``raw=True``): the CDR bytes DDS delivers are written to the bag
unchanged, so recording costs no (de)serialisation and the bag holds exactly what was sent. Each
message is stamped with its receive time (the node clock, like ``ros2 bag record``); header stamps
stay inside the messages. A topic given without a type (``/camera/image_raw``) is subscribed as
soon as it appears in the ROS graph; ``/topic:sensor_msgs/msg/Image`` subscribes at once.

SIGINT / SIGTERM: callbacks already queued are drained, then the bag is closed (index and
metadata.yaml written), so an interrupted recording is always readable.
"""
from __future__ import annotations

import sys
import time
from functools import partial
from typing import Optional

from rclpy.exceptions import ParameterException
from rclpy.node import Node

from depth_pose_ros.data.rosbag_io import (
    CAMERA_TYPES,
    STORAGE_NAMES,
    SplitBagWriter,
    normalize_type_name,
    ros2_typestore,
)
from depth_pose_ros.ros.bag_io import msg_class
from depth_pose_ros.ros.node_runner import drain, ros_session, spin_until_stopped
from depth_pose_ros.ros.param_table import ParamSpec, declare_parameters
from depth_pose_ros.ros.qos import QOS_NAMES, describe_qos, qos_from_name

NODE_NAME = "bag_recorder"
#: How often topics given without a type are looked up in the ROS graph.
DISCOVERY_PERIOD_S = 0.5

#: Parameters of the recorder (all read-only: they are read once, at start).
PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("topics", ["/camera/image_raw", "/camera/camera_info"],
              "Topics to record: '/topic' (type looked up in the graph) or '/topic:pkg/msg/Type'. "
              f"Meant for camera streams ({', '.join(CAMERA_TYPES)}); any type of the Jazzy typestore works."),
    ParamSpec("output_dir", "bags", "Directory receiving the bag(s)."),
    ParamSpec("bag_name", "", "Bag directory name; empty = rec_YYYYmmdd_HHMMSS. Split parts get _000, _001..."),
    ParamSpec("storage", "mcap", f"Bag storage: {' or '.join(STORAGE_NAMES)}."),
    ParamSpec("max_bag_size", 0, "Start a new bag part after this many bytes of messages (0 = never)."),
    ParamSpec("max_bag_duration", 0.0, "Start a new bag part after this many seconds (0 = never)."),
    ParamSpec("qos", "sensor_data", f"Subscription QoS: {', '.join(QOS_NAMES)}. sensor_data (best effort) matches "
                                    "every publisher; use reliable to get every message of a reliable publisher."),
    ParamSpec("qos_depth", 20, "Subscription queue depth (0 = the profile's)."),
)


class BagRecorder(Node):
    """Node writing the messages of ``topics`` into a (possibly split) rosbag2."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        p = declare_parameters(self, PARAMETERS)
        self.qos = qos_from_name(p["qos"], p["qos_depth"] or None, what="qos")
        bag_name = p["bag_name"] or time.strftime("rec_%Y%m%d_%H%M%S")
        self.writer = SplitBagWriter(
            p["output_dir"], bag_name, p["storage"], p["max_bag_size"], p["max_bag_duration"]
        )
        self.counts: dict[str, int] = {}
        self.failed = False
        self._pending: dict[str, None] = {}
        for spec in p["topics"]:
            topic, type_name = _parse_topic_spec(spec)
            topic = self.resolve_topic_name(topic)
            if topic in self.counts or topic in self._pending:
                raise ValueError(f"topics: {topic} listed twice")
            if type_name is None:
                self._pending[topic] = None
            else:
                self._subscribe(topic, type_name)
        if not self.counts and not self._pending:
            raise ValueError("topics: no topic to record")
        self._discovery_timer = None
        if self._pending:
            self._discovery_timer = self.create_timer(DISCOVERY_PERIOD_S, self._discover)
            self._discover()
        where = self.writer.output_dir / (f"{bag_name}_NNN" if self.writer.split else bag_name)
        self.get_logger().info(
            f"recording {len(self.counts) + len(self._pending)} topic(s) into {where} "
            f"({p['storage']}, qos {describe_qos(self.qos)})"
        )

    @property
    def message_count(self) -> int:
        """Messages written so far (all topics)."""
        return self.writer.message_count

    def close(self) -> None:
        """Close the bag (idempotent) and log what was recorded."""
        if self._discovery_timer is not None:
            self._discovery_timer.cancel()
        self.writer.close()
        summary = ", ".join(f"{t}: {n}" for t, n in self.counts.items()) or "nothing"
        self.get_logger().info(f"closed {', '.join(map(str, self.writer.paths)) or 'no bag'} ({summary})")

    # ------------------------------------------------------------------------------------ internals
    def _subscribe(self, topic: str, type_name: str) -> None:
        type_name = normalize_type_name(type_name)
        if type_name not in ros2_typestore().fielddefs:
            raise ValueError(f"topics: {topic}: type {type_name} is unknown to the ROS 2 Jazzy typestore")
        cls = msg_class(type_name)
        self.create_subscription(cls, topic, partial(self._on_message, topic, type_name), self.qos, raw=True)
        self.counts[topic] = 0
        self.get_logger().info(f"subscribed {topic} [{type_name}]")

    def _discover(self) -> None:
        if not self._pending:
            return
        graph = dict(self.get_topic_names_and_types())
        for topic in list(self._pending):
            types = graph.get(topic)
            if not types:
                continue
            if len(types) > 1:
                self.get_logger().warn(f"{topic} has several types {types}; recording {types[0]}")
            try:
                self._subscribe(topic, types[0])
            except ValueError as exc:
                self.get_logger().error(str(exc))
            del self._pending[topic]
        if not self._pending and self._discovery_timer is not None:
            self._discovery_timer.cancel()

    def _on_message(self, topic: str, type_name: str, data: bytes) -> None:
        if self.failed:
            return
        try:
            self.writer.write(topic, type_name, self.get_clock().now().nanoseconds, data)
        except Exception as exc:  # disk full, permissions...: stop instead of losing data silently
            self.failed = True
            self.get_logger().error(f"writing {topic} failed, stopping: {exc}")
            return
        self.counts[topic] += 1


def _parse_topic_spec(spec: str) -> tuple[str, Optional[str]]:
    """``'/t'`` -> ('/t', None); ``'/t:sensor_msgs/msg/Image'`` -> ('/t', 'sensor_msgs/msg/Image')."""
    text = str(spec).strip()
    if not text:
        raise ValueError("topics: empty topic name")
    topic, sep, type_name = text.partition(":")
    if sep and not type_name.strip():
        raise ValueError(f"topics: {spec!r} has ':' but no type")
    return topic.strip(), (type_name.strip() or None)


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``bag_recorder``: record until SIGINT / SIGTERM; 0 on success, 2 on bad arguments."""
    try:
        with ros_session(args) as (context, stop):
            node = BagRecorder(context=context)
            try:
                spin_until_stopped(node, stop, done=lambda: node.failed)
                if not node.failed:
                    drain(node, lambda: node.message_count)
            finally:
                node.close()
                node.destroy_node()
            return 1 if node.failed else 0
    except (ValueError, ParameterException) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
