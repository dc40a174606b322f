"""``bag_player``: publish camera topics from a bag at real or scaled rate, with ``/clock``.

Run: ``python -m depth_pose_ros.ros.bag_player --ros-args -p bag:=bags/rec -p rate:=0.5``.

Reads rosbag2 (mcap / sqlite3, also a folder of split parts) and ROS 1 ``.bag`` files through
:class:`depth_pose_ros.data.rosbag_io.BagReader`. ROS 2 messages are published as the stored CDR bytes (no
deserialisation); ROS 1 messages are converted to the ROS 2 wire format first.

Timing follows the bag's receive times (like ``ros2 bag play``), scaled by ``rate``; message
header stamps are untouched. ``/clock`` carries bag time -- before every message and at
``clock_frequency`` in between -- so nodes started with ``use_sim_time:=true`` see the recorded
time. ``loop`` replays forever (bag time jumps back at each restart); otherwise the process exits
when the bag ends, after waiting (bounded) for reliable subscribers to acknowledge.
"""
from __future__ import annotations

import sys
import threading
import time
from typing import Optional

from rclpy.duration import Duration
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rosgraph_msgs.msg import Clock

from depth_pose_ros.data.rosbag_io import CAMERA_TYPES, BagError, BagReader, ros2_typestore
from depth_pose_ros.ros.bag_io import msg_class
from depth_pose_ros.ros.convert import ns_to_stamp
from depth_pose_ros.ros.node_runner import ros_session
from depth_pose_ros.ros.param_table import ParamSpec, declare_parameters
from depth_pose_ros.ros.qos import QOS_NAMES, describe_qos, qos_from_name, reliable_qos

NODE_NAME = "bag_player"
#: Settling time after every publisher has matched a subscriber (the subscriber side of the match
#: may complete a little later; messages sent before that would be lost).
MATCH_SETTLE_S = 0.3
#: Longest wait for reliable subscribers to acknowledge the last messages before exiting. Fast DDS
#: readers acknowledge on the writer's heartbeat, every 3 s by default, hence a little more.
ACK_TIMEOUT_S = 3.5

#: Parameters of the player (all read-only: they are read once, at start).
PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec("bag", "", "rosbag2 directory (mcap/sqlite3, or a folder of split parts) or ROS 1 .bag file."),
    ParamSpec("rate", 1.0, "Playback speed factor (2.0 = twice as fast)."),
    ParamSpec("loop", False, "Replay from the start (offset) forever."),
    ParamSpec("start_offset", 0.0, "Skip this many seconds of the bag."),
    ParamSpec("topics", Parameter.Type.STRING_ARRAY,
              f"Topics to play; unset = every topic of type {', '.join(CAMERA_TYPES)}."),
    ParamSpec("topic_remap", Parameter.Type.STRING_ARRAY, "Entries 'from:=to' renaming played topics."),
    ParamSpec("qos", "reliable", f"Publisher QoS: {', '.join(QOS_NAMES)}. reliable matches both reliable and "
                                 "best-effort subscribers."),
    ParamSpec("qos_depth", 0, "Publisher queue depth (0 = the profile's)."),
    ParamSpec("publish_clock", True, "Publish bag time on /clock."),
    ParamSpec("clock_frequency", 100.0, "Extra /clock messages per second between bag messages (0 = none)."),
    ParamSpec("wait_for_subscribers", False, "Start only when every played topic has a subscriber."),
    ParamSpec("wait_timeout", 10.0, "Longest wait for subscribers (s); playback starts anyway after it."),
)


class BagPlayer(Node):
    """Node publishing a bag's camera topics; :meth:`play` does the work."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        p = declare_parameters(self, PARAMETERS)
        if not p["bag"]:
            raise ValueError("bag: parameter is required (path of a rosbag2 directory or ROS 1 .bag)")
        if not p["rate"] > 0:
            raise ValueError(f"rate: must be > 0, got {p['rate']}")
        if p["start_offset"] < 0:
            raise ValueError(f"start_offset: must be >= 0 s, got {p['start_offset']}")
        if p["clock_frequency"] < 0:
            raise ValueError(f"clock_frequency: must be >= 0 Hz, got {p['clock_frequency']}")
        self.rate = float(p["rate"])
        self.loop = bool(p["loop"])
        self.clock_period_s = 1.0 / p["clock_frequency"] if p["clock_frequency"] > 0 else 0.0
        self.wait_for_subscribers = bool(p["wait_for_subscribers"])
        self.wait_timeout_s = float(p["wait_timeout"])
        self.qos = qos_from_name(p["qos"], p["qos_depth"] or None, what="qos")
        remap = _parse_remaps(p["topic_remap"])

        self.reader = BagReader(p["bag"])
        if self.reader.message_count == 0:
            raise BagError(f"bag: {p['bag']} holds no messages")
        self.start_ns = self.reader.start_ns + int(round(p["start_offset"] * 1e9))
        if self.start_ns > self.reader.end_ns:
            duration = (self.reader.end_ns - self.reader.start_ns) * 1e-9
            raise ValueError(f"start_offset: {p['start_offset']} s is past the bag's end ({duration:.3f} s)")
        self.topics = self._select_topics(self.reader.topics(), p["topics"])
        unknown = sorted(set(remap) - set(self.topics))
        if unknown:
            self.get_logger().warn(f"topic_remap: {unknown} are not played topics of this bag")
        self.publishers_: dict[str, Publisher] = {}
        for topic, type_name in self.topics.items():
            out = remap.get(topic, topic)
            self.publishers_[topic] = self.create_publisher(msg_class(type_name), out, self.qos)
            self.get_logger().info(f"playing {topic} [{type_name}]" + (f" as {out}" if out != topic else ""))
        self.clock_pub = None
        if p["publish_clock"]:
            self.clock_pub = self.create_publisher(Clock, "/clock", reliable_qos())
        self.published = 0
        self.get_logger().info(
            f"bag {', '.join(map(str, self.reader.paths))}: rate {self.rate}, loop {self.loop}, "
            f"qos {describe_qos(self.qos)}"
        )

    def play(self, stop: threading.Event) -> bool:
        """Publish the bag (forever with ``loop``); returns False when stopped early."""
        if self.wait_for_subscribers and not self._wait_for_subscribers(stop):
            return False
        while True:
            if not self._play_once(stop):
                return False
            if not self.loop:
                self._wait_acked(stop)
                return True

    def close(self) -> None:
        """Release the bag files."""
        self.reader.close()

    # ------------------------------------------------------------------------------------ internals
    def _select_topics(self, bag_topics: dict[str, str], wanted: list[str]) -> dict[str, str]:
        store = ros2_typestore().fielddefs
        if wanted:
            missing = [t for t in wanted if t not in bag_topics]
            if missing:
                raise BagError(f"topics: {missing} not in the bag (it has {sorted(bag_topics)})")
            chosen = {t: bag_topics[t] for t in wanted}
        else:
            chosen = {t: ty for t, ty in bag_topics.items() if ty in CAMERA_TYPES}
        playable = {}
        for topic, type_name in chosen.items():
            try:
                if type_name not in store:
                    raise BagError(f"type {type_name} unknown to the ROS 2 Jazzy typestore")
                msg_class(type_name)
            except BagError as exc:
                self.get_logger().warn(f"skipping {topic}: {exc}")
                continue
            playable[topic] = type_name
        if not playable:
            raise BagError(f"topics: nothing to play; bag topics are {bag_topics}")
        return playable

    def _wait_for_subscribers(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.wait_timeout_s
        while not stop.is_set():
            waiting = [t for t, pub in self.publishers_.items() if pub.get_subscription_count() == 0]
            if not waiting:
                return not stop.wait(MATCH_SETTLE_S)
            if time.monotonic() >= deadline:
                self.get_logger().warn(
                    f"no subscriber on {waiting} after {self.wait_timeout_s} s; playing anyway"
                )
                return True
            stop.wait(0.02)
        return False

    def _play_once(self, stop: threading.Event) -> bool:
        wall0 = time.monotonic()
        for message in self.reader.messages(list(self.topics), start_ns=self.start_ns):
            target = wall0 + (message.timestamp_ns - self.start_ns) * 1e-9 / self.rate
            while True:
                remaining = target - time.monotonic()
                if remaining <= 0:
                    break
                step = min(remaining, self.clock_period_s) if self.clock_period_s else remaining
                if stop.wait(step):
                    return False
                if self.clock_period_s and time.monotonic() < target:
                    elapsed_ns = (time.monotonic() - wall0) * self.rate * 1e9
                    self._publish_clock(min(self.start_ns + int(elapsed_ns), message.timestamp_ns))
            if stop.is_set():
                return False
            self._publish_clock(message.timestamp_ns)
            self.publishers_[message.topic].publish(message.cdr)
            self.published += 1
        return True

    def _publish_clock(self, bag_ns: int) -> None:
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=ns_to_stamp(bag_ns)))

    def _wait_acked(self, stop: threading.Event) -> None:
        """Let reliable subscribers receive the tail of the bag before the writers disappear.

        Waits in short slices so that a stop signal still ends the process at once.
        """
        deadline = time.monotonic() + ACK_TIMEOUT_S
        for pub in [*self.publishers_.values(), self.clock_pub]:
            while pub is not None and not stop.is_set() and time.monotonic() < deadline:
                if pub.wait_for_all_acked(Duration(nanoseconds=100_000_000)):
                    break


def _parse_remaps(entries: list[str]) -> dict[str, str]:
    remap = {}
    for entry in entries:
        source, sep, target = str(entry).partition(":=")
        if not sep or not source.strip() or not target.strip():
            raise ValueError(f"topic_remap: {entry!r} is not 'from:=to'")
        remap[source.strip()] = target.strip()
    return remap


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``bag_player``: play, exit 0 at the end or when stopped by SIGINT / SIGTERM,
    2 on bad arguments."""
    try:
        with ros_session(args) as (context, stop):
            node = BagPlayer(context=context)
            try:
                finished = node.play(stop)
                node.get_logger().info(f"{'finished' if finished else 'stopped'}: {node.published} messages")
            finally:
                node.close()
                node.destroy_node()
            return 0
    except (ValueError, ParameterException) as exc:
        print(f"{NODE_NAME}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
