"""bag_recorder in a child process records real KITTI frames published from this process.

The bags are read back with rosbags' AnyReader (independent of the project's reader) and must hold
every frame with its stamp and exact pixels; SIGINT and SIGTERM must both leave a readable bag.
"""
from __future__ import annotations

import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.duration import Duration
from rclpy.node import Node
from ros_harness import spin_until, start_child
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_pose_ros.data.rosbag_io import BagReader, resolve_bag_paths
from depth_pose_ros.ros.convert import (
    compressed_msg_to_numpy,
    make_camera_info,
    numpy_to_compressed_msg,
    numpy_to_image_msg,
)
from depth_pose_ros.ros.qos import reliable_qos

pytestmark = [pytest.mark.ros, pytest.mark.data]

N_FRAMES = 20
STAMP0 = 1000.0  # header stamp of frame 0; KITTI odometry is ~10 Hz


@pytest.fixture(scope="module")
def kitti_frames(kitti_odometry_dir: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """First 20 left gray frames of KITTI 06 (1226x370 uint8) and K from P0."""
    seq = kitti_odometry_dir / "sequences" / "06"
    frames = []
    for i in range(N_FRAMES):
        path = seq / "image_0" / f"{i:06d}.png"
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        assert image is not None, f"cannot read {path}"
        frames.append(image)
    p0 = next(line for line in (seq / "calib.txt").read_text().splitlines() if line.startswith("P0:"))
    K = np.array(p0.split()[1:], dtype=np.float64).reshape(3, 4)[:, :3]
    return frames, K


def _recorder(env: dict, tmp_path: Path, *params: str):
    args = ["-m", "depth_pose_ros.ros.bag_recorder", "--ros-args",
            "-p", f"output_dir:={tmp_path / 'bags'}", "-p", "bag_name:=kitti", "-p", "qos:=reliable",
            "-p", "qos_depth:=50"]
    for p in params:
        args += ["-p", p]
    return start_child(args, env, tmp_path / "recorder.log")


def _publish_all(executor, recorder, publishers_and_messages) -> None:
    """Wait until the recorder subscribes every topic, publish, wait for the acknowledgements."""
    pubs = [pub for pub, _ in publishers_and_messages]
    matched = spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in pubs),
                         timeout=30.0, children=[recorder])
    assert matched, f"recorder never subscribed; output:\n{recorder.output()}"
    time.sleep(0.3)  # the subscriber side of the match completes a moment later
    for i in range(N_FRAMES):
        for pub, messages in publishers_and_messages:
            pub.publish(messages[i])
        time.sleep(0.02)
    for pub in pubs:  # reliable: acknowledged = in the recorder's reader queue (drained on SIGINT)
        assert pub.wait_for_all_acked(Duration(seconds=10)), recorder.output()


def test_record_raw_images_and_camera_info_to_mcap(ros_env, executor, tmp_path, kitti_frames):
    frames, K = kitti_frames
    node = Node("kitti_publisher", context=executor.context)
    executor.add_node(node)
    image_pub = node.create_publisher(Image, "/kitti/image", reliable_qos(N_FRAMES))
    info_pub = node.create_publisher(CameraInfo, "/kitti/camera_info", reliable_qos(N_FRAMES))
    stamps = [STAMP0 + 0.1 * i for i in range(N_FRAMES)]
    images = [numpy_to_image_msg(f, "mono8", s, "camera_0") for f, s in zip(frames, stamps)]
    infos = [make_camera_info(K, 1226, 370, s, "camera_0") for s in stamps]

    # The image topic is typed explicitly, the camera_info type is looked up in the graph.
    recorder = _recorder(ros_env, tmp_path, "storage:=mcap",
                         "topics:=['/kitti/image:sensor_msgs/msg/Image', '/kitti/camera_info']")
    try:
        _publish_all(executor, recorder, [(image_pub, images), (info_pub, infos)])
    finally:
        rc = recorder.stop()
    assert rc == 0, recorder.output()

    bag = tmp_path / "bags" / "kitti"
    assert (bag / "metadata.yaml").is_file() and (bag / "kitti.mcap").is_file()
    with AnyReader([bag]) as reader:
        topics = {c.topic: c.msgtype for c in reader.connections}
        assert topics == {"/kitti/image": "sensor_msgs/msg/Image",
                          "/kitti/camera_info": "sensor_msgs/msg/CameraInfo"}
        got_images, got_infos, log_times = [], [], []
        for connection, t, raw in reader.messages():
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == "/kitti/image":
                got_images.append(msg)
                log_times.append(t)
            else:
                got_infos.append(msg)
    assert len(got_images) == N_FRAMES and len(got_infos) == N_FRAMES
    assert log_times == sorted(log_times)
    for i, msg in enumerate(got_images):
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        assert stamp_ns == round(stamps[i] * 1e9)
        assert (msg.width, msg.height, msg.encoding, msg.header.frame_id) == (1226, 370, "mono8", "camera_0")
        np.testing.assert_array_equal(np.asarray(msg.data).reshape(370, 1226), frames[i])
    np.testing.assert_allclose(np.reshape(got_infos[0].k, (3, 3)), K)

    # The project's own bag reader (the estimator's input) reads the recording as frames.
    from depth_pose_ros.data.rosbag_source import RosbagSource

    with RosbagSource(bag) as source:
        assert len(source) == N_FRAMES
        for i in (0, N_FRAMES - 1):
            frame = source[i]
            assert frame.stamp == pytest.approx(stamps[i], abs=1e-6)
            np.testing.assert_array_equal(frame.image, frames[i])
            np.testing.assert_allclose(frame.K, K)


def test_record_compressed_to_split_sqlite3_and_stop_with_sigterm(ros_env, executor, tmp_path, kitti_frames):
    frames, _ = kitti_frames
    node = Node("kitti_publisher", context=executor.context)
    executor.add_node(node)
    pub = node.create_publisher(CompressedImage, "/kitti/image/compressed", reliable_qos(N_FRAMES))
    messages = [numpy_to_compressed_msg(f, STAMP0 + 0.1 * i, "camera_0", format="png")
                for i, f in enumerate(frames)]
    part_bytes = sum(len(m.data) for m in messages[:5])  # about five frames per part
    recorder = _recorder(ros_env, tmp_path, "storage:=sqlite3", f"max_bag_size:={part_bytes}",
                         "topics:=['/kitti/image/compressed:sensor_msgs/msg/CompressedImage']")
    try:
        _publish_all(executor, recorder, [(pub, messages)])
        recorder.proc.send_signal(signal.SIGTERM)
        assert recorder.wait(timeout=20) == 0, recorder.output()
    finally:
        recorder.stop()

    parts = resolve_bag_paths(tmp_path / "bags")
    assert len(parts) >= 4 and [p.name for p in parts][:2] == ["kitti_000", "kitti_001"]
    assert all((p / f"{p.name}.db3").is_file() for p in parts)
    from rclpy.serialization import deserialize_message

    with BagReader(tmp_path / "bags") as bag:
        received = [deserialize_message(m.cdr, CompressedImage) for m in bag.messages()]
    assert len(received) == N_FRAMES
    for i, msg in enumerate(received):
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == round((STAMP0 + 0.1 * i) * 1e9)
        pixels, encoding = compressed_msg_to_numpy(msg)
        assert encoding == "mono8"
        np.testing.assert_array_equal(pixels, frames[i])  # png: lossless


def test_recorder_rejects_bad_parameters(ros_env, tmp_path):
    (tmp_path / "bags" / "taken").mkdir(parents=True)
    cases = [
        (["storage:=zip"], "storage: unknown bag storage 'zip'"),
        (["qos:=fast"], "qos: unknown QoS profile 'fast'"),
        (["bag_name:=taken"], "exists already"),
        (["topics:=['/a:nope_msgs/msg/Nothing']"], "nope_msgs/msg/Nothing is unknown to the ROS 2 Jazzy"),
        (["storage"], "--ros-args: failed to initialize rcl: Couldn't parse parameter override rule"),
    ]
    children = []
    for i, (params, _) in enumerate(cases):
        args = ["-m", "depth_pose_ros.ros.bag_recorder", "--ros-args", "-p", f"output_dir:={tmp_path / 'bags'}"]
        for p in params:
            args += ["-p", p]
        children.append(start_child(args, ros_env, tmp_path / f"bad{i}.log"))
    for child, (_, message) in zip(children, cases):
        assert child.wait(timeout=30) == 2, child.output()
        assert message in child.output()
