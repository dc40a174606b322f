"""bag_player in a child process on an isolated domain; this process subscribes and checks.

The bags are written here with rosbags directly (not with the project's writer), so the player is
tested against bags it did not produce: a rosbag2 (mcap and sqlite3) and a ROS 1 bag.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from ros_harness import spin_until, start_child
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from depth_pose_ros.ros.convert import camera_info_to_K, image_msg_to_numpy, stamp_to_ns, stamp_to_sec
from depth_pose_ros.ros.qos import reliable_qos

pytestmark = pytest.mark.ros

BAG_T0_NS = 1_700_000_000 * 10**9  # receive time of the first message in the bags
PERIOD_NS = 100_000_000  # 10 Hz
N_FRAMES = 12
K = np.array([[400.0, 0.0, 8.0], [0.0, 400.0, 6.0], [0.0, 0.0, 1.0]])


def _pixels(i: int) -> np.ndarray:
    return (np.arange(12 * 16, dtype=np.uint16).reshape(12, 16) + 10 * i).astype(np.uint8)


def _write_ros2_bag(path: Path, storage: StoragePlugin) -> None:
    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    with Writer2(path, version=9, storage_plugin=storage) as writer:
        image_conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        info_conn = writer.add_connection("/camera/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        chat_conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(N_FRAMES):
            header = T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=500, nanosec=i * PERIOD_NS), frame_id="cam")
            image = T["sensor_msgs/msg/Image"](header=header, height=12, width=16, encoding="mono8",
                                               is_bigendian=0, step=16, data=_pixels(i).reshape(-1))
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=12, width=16, distortion_model="plumb_bob", d=np.zeros(5),
                k=K.reshape(-1), r=np.eye(3).reshape(-1), p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
                binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                          do_rectify=False))
            t = BAG_T0_NS + i * PERIOD_NS
            writer.write(image_conn, t, store.serialize_cdr(image, "sensor_msgs/msg/Image"))
            writer.write(info_conn, t + 1, store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))
            writer.write(chat_conn, t, store.serialize_cdr(T["std_msgs/msg/String"](data="x"),
                                                           "std_msgs/msg/String"))


def _write_ros1_bag(path: Path) -> None:
    store = get_typestore(Stores.ROS1_NOETIC)
    T = store.types
    with Writer1(path) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store)
        for i in range(10):
            header = T["std_msgs/msg/Header"](
                seq=i, stamp=T["builtin_interfaces/msg/Time"](sec=600, nanosec=i * PERIOD_NS), frame_id="cam")
            image = T["sensor_msgs/msg/Image"](header=header, height=12, width=16, encoding="mono8",
                                               is_bigendian=0, step=16, data=_pixels(i).reshape(-1))
            writer.write(conn, BAG_T0_NS + i * PERIOD_NS, store.serialize_ros1(image, "sensor_msgs/msg/Image"))


def _player(bag: Path, env: dict, log: Path, *params: str):
    args = ["-m", "depth_pose_ros.ros.bag_player", "--ros-args", "-p", f"bag:={bag}",
            "-p", "wait_for_subscribers:=true", "-p", "wait_timeout:=20.0"]
    for p in params:
        args += ["-p", p]
    return start_child(args, env, log)


@pytest.mark.parametrize("storage", [StoragePlugin.MCAP, StoragePlugin.SQLITE3], ids=["mcap", "sqlite3"])
def test_player_publishes_every_message_in_order_with_clock(ros_env, executor, tmp_path, storage):
    bag = tmp_path / "bag"
    _write_ros2_bag(bag, storage)
    node = Node("player_listener", context=executor.context)
    sim = Node("sim_time_user", context=executor.context,
               parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    executor.add_node(node)
    executor.add_node(sim)
    images, infos, clock, chatter = [], [], [], []
    node.create_subscription(Image, "/camera/image_raw", lambda m: images.append((m, time.monotonic())),
                             reliable_qos(50))
    node.create_subscription(CameraInfo, "/camera/camera_info", infos.append, reliable_qos(50))
    node.create_subscription(Clock, "/clock", lambda m: clock.append(stamp_to_ns(m.clock)), reliable_qos(200))
    node.create_subscription(String, "/chatter", chatter.append, reliable_qos())

    rate = 4.0
    player = _player(bag, ros_env, tmp_path / "player.log", f"rate:={rate}")
    try:
        done = spin_until(executor, lambda: not player.running() and len(images) == N_FRAMES
                          and len(infos) == N_FRAMES, timeout=40.0, children=[player])
        assert done, f"{len(images)} images, {len(infos)} infos; player output:\n{player.output()}"
        spin_until(executor, lambda: False, 0.2)  # let the last /clock reach the sim-time node
    finally:
        rc = player.stop()
    assert rc == 0, player.output()

    stamps = [stamp_to_ns(m.header.stamp) for m, _ in images]
    assert stamps == [500 * 10**9 + i * PERIOD_NS for i in range(N_FRAMES)]  # all, in order
    for i, (m, _) in enumerate(images):
        np.testing.assert_array_equal(image_msg_to_numpy(m)[0], _pixels(i))
    np.testing.assert_array_equal(camera_info_to_K(infos[-1]), K)
    assert chatter == []  # only camera types are played by default

    # Paced at `rate`: the bag spans 1.1 s, so ~0.275 s of wall time (as fast as possible: ~ms).
    span = images[-1][1] - images[0][1]
    assert 0.6 * 1.1 / rate < span < 1.1 / rate + 1.5, span
    # /clock carries bag receive time, never goes backwards, and ends at the last message's time.
    assert clock == sorted(clock)
    assert clock[0] >= BAG_T0_NS and clock[-1] == BAG_T0_NS + (N_FRAMES - 1) * PERIOD_NS + 1
    assert len(clock) > 2 * N_FRAMES  # clock ticks between messages too (clock_frequency)
    assert sim.get_clock().now().nanoseconds == clock[-1]  # use_sim_time nodes follow the bag


def test_ros1_bag_with_offset_remap_and_loop(ros_env, executor, tmp_path):
    bag = tmp_path / "old.bag"
    _write_ros1_bag(bag)
    node = Node("loop_listener", context=executor.context)
    executor.add_node(node)
    received = []
    node.create_subscription(Image, "/remapped/image", received.append, reliable_qos(50))
    player = _player(bag, ros_env, tmp_path / "player.log", "rate:=5.0", "start_offset:=0.45", "loop:=true",
                     "topic_remap:=['/camera/image_raw:=/remapped/image']", "publish_clock:=false")
    try:
        ok = spin_until(executor, lambda: len(received) >= 12, timeout=40.0, children=[player])
        assert ok, f"{len(received)} images; player output:\n{player.output()}"
        assert player.running()  # loop: it does not exit by itself
    finally:
        rc = player.stop()
    assert rc == 0, player.output()
    # Offset 0.45 s skips frames 0..4; the loop restarts at frame 5 each time.
    seconds = [round(stamp_to_sec(m.header.stamp) - 600, 3) for m in received[:12]]
    assert seconds == [0.5, 0.6, 0.7, 0.8, 0.9] * 2 + [0.5, 0.6]
    np.testing.assert_array_equal(image_msg_to_numpy(received[0])[0], _pixels(5))


def test_player_rejects_bad_parameters(ros_env, tmp_path):
    bag = tmp_path / "bag"
    _write_ros2_bag(bag, StoragePlugin.MCAP)
    cases = [
        ([f"bag:={tmp_path / 'missing'}"], "does not exist"),
        ([f"bag:={bag}", "rate:=0.0"], "rate: must be > 0"),
        ([f"bag:={bag}", "start_offset:=5.0"], "start_offset: 5.0 s is past the bag's end"),
        ([f"bag:={bag}", "topics:=['/nope']"], "topics: ['/nope'] not in the bag"),
    ]
    children = []
    for i, (params, _) in enumerate(cases):
        args = ["-m", "depth_pose_ros.ros.bag_player", "--ros-args"]
        for p in params:
            args += ["-p", p]
        children.append(start_child(args, ros_env, tmp_path / f"bad{i}.log"))
    for child, (_, message) in zip(children, cases):
        assert child.wait(timeout=30) == 2, child.output()
        assert message in child.output()
