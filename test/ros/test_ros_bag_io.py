"""Bag writing (with splitting) and reading (rosbag2 and ROS 1) without a DDS graph."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from rosbags.highlevel import AnyReader  # noqa: E402
from rosbags.rosbag1 import Writer as Writer1  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from depth_pose_ros.data.rosbag_io import (  # noqa: E402
    BagError,
    BagReader,
    SplitBagWriter,
    resolve_bag_paths,
    storage_plugin,
)
from depth_pose_ros.ros.bag_io import msg_class  # noqa: E402
from depth_pose_ros.ros.convert import (  # noqa: E402
    camera_info_to_K,
    image_msg_to_numpy,
    make_camera_info,
    numpy_to_image_msg,
    stamp_to_sec,
)

IMAGE_TYPE = "sensor_msgs/msg/Image"


def _frame(i: int) -> bytes:
    """CDR of a 10x20 mono8 image filled with ``i``, stamped 100 + i/10 s."""
    return serialize_message(numpy_to_image_msg(np.full((10, 20), i, np.uint8), "mono8", 100 + i / 10, "cam"))


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_single_bag_round_trip(tmp_path, storage):
    K = np.array([[500.0, 0, 10], [0, 500, 5], [0, 0, 1]])
    with SplitBagWriter(tmp_path, "rec", storage) as writer:
        for i in range(5):
            writer.write("/cam/image", IMAGE_TYPE, 1_000 + i, _frame(i))
            writer.write("/cam/info", "sensor_msgs/msg/CameraInfo", 1_000 + i,
                         serialize_message(make_camera_info(K, 20, 10, 100 + i / 10, "cam")))
    assert writer.paths == [tmp_path / "rec"] and writer.message_count == 10
    with AnyReader([tmp_path / "rec"]) as reader:  # rosbags' own reader, independent of BagReader
        assert reader.message_count == 10
        assert {c.topic: c.msgtype for c in reader.connections} == {
            "/cam/image": IMAGE_TYPE, "/cam/info": "sensor_msgs/msg/CameraInfo"}
    with BagReader(tmp_path / "rec") as bag:
        assert (bag.start_ns, bag.end_ns) == (1_000, 1_004)
        images = [m for m in bag.messages(["/cam/image"])]
        infos = [m for m in bag.messages(["/cam/info"], start_ns=1_003)]
    assert [m.timestamp_ns for m in images] == [1_000, 1_001, 1_002, 1_003, 1_004]
    for i, m in enumerate(images):
        msg = deserialize_message(m.cdr, Image)
        assert stamp_to_sec(msg.header.stamp) == pytest.approx(100 + i / 10)
        np.testing.assert_array_equal(image_msg_to_numpy(msg)[0], np.full((10, 20), i, np.uint8))
    assert len(infos) == 2
    np.testing.assert_array_equal(camera_info_to_K(deserialize_message(infos[0].cdr, CameraInfo)), K)


def test_split_by_size_makes_complete_parts_read_back_in_order(tmp_path):
    size = len(_frame(0))
    with SplitBagWriter(tmp_path / "out", "rec", "mcap", max_bytes=3 * size) as writer:
        for i in range(10):
            writer.write("/cam/image", IMAGE_TYPE, 1_000 + i, _frame(i))
    names = [p.name for p in writer.paths]
    assert names == ["rec_000", "rec_001", "rec_002", "rec_003"]  # 3 + 3 + 3 + 1 messages
    counts = []
    for path in writer.paths:
        with AnyReader([path]) as reader:
            counts.append(reader.message_count)
    assert counts == [3, 3, 3, 1]
    assert resolve_bag_paths(tmp_path / "out") == writer.paths
    with BagReader(tmp_path / "out") as bag:
        values = [image_msg_to_numpy(deserialize_message(m.cdr, Image))[0][0, 0] for m in bag.messages()]
    assert values == list(range(10))


def test_split_by_duration(tmp_path):
    with SplitBagWriter(tmp_path, "rec", "sqlite3", max_duration_s=1.0) as writer:
        for i in range(6):  # 0.0, 0.5, ..., 2.5 s
            writer.write("/cam/image", IMAGE_TYPE, i * 500_000_000, _frame(i))
    assert [p.name for p in writer.paths] == ["rec_000", "rec_001", "rec_002"]


def test_writer_refuses_existing_bag_and_bad_arguments(tmp_path):
    (tmp_path / "rec").mkdir()
    with pytest.raises(BagError, match="exists already"):
        SplitBagWriter(tmp_path, "rec")
    with pytest.raises(BagError, match="storage: unknown bag storage 'zip'"):
        storage_plugin("zip")
    with pytest.raises(BagError, match="max_bag_size: must be >= 0"):
        SplitBagWriter(tmp_path, "other", max_bytes=-1)
    with pytest.raises(BagError, match="not importable"):
        msg_class("no_such_pkg/msg/Thing")
    with pytest.raises(BagError, match="does not exist"):
        BagReader(tmp_path / "missing")
    with pytest.raises(BagError, match="holds no metadata.yaml"):
        BagReader(tmp_path / "rec")


def test_ros1_bag_is_converted_to_ros2_cdr(tmp_path):
    """A ROS 1 Image (Header with seq) read through BagReader deserialises as a ROS 2 Image."""
    store1 = get_typestore(Stores.ROS1_NOETIC)
    Image1 = store1.types["sensor_msgs/msg/Image"]
    Header1 = store1.types["std_msgs/msg/Header"]
    Time1 = store1.types["builtin_interfaces/msg/Time"]
    path = tmp_path / "old.bag"
    with Writer1(path) as writer:
        conn = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=store1)
        for i in range(3):
            pixels = np.arange(6, dtype=np.uint8) + i
            msg = Image1(header=Header1(seq=77 + i, stamp=Time1(sec=50 + i, nanosec=250), frame_id="cam"),
                         height=2, width=3, encoding="mono8", is_bigendian=0, step=3, data=pixels)
            writer.write(conn, 5_000 + i, store1.serialize_ros1(msg, "sensor_msgs/msg/Image"))
    assert resolve_bag_paths(path) == [path]
    with BagReader(path) as bag:
        assert bag.is_ros1 and bag.topics() == {"/camera/image_raw": IMAGE_TYPE}
        messages = list(bag.messages())
    assert [m.timestamp_ns for m in messages] == [5_000, 5_001, 5_002]
    for i, m in enumerate(messages):
        ros2 = deserialize_message(m.cdr, Image)
        assert (ros2.header.stamp.sec, ros2.header.stamp.nanosec, ros2.header.frame_id) == (50 + i, 250, "cam")
        np.testing.assert_array_equal(image_msg_to_numpy(ros2)[0], (np.arange(6) + i).reshape(2, 3))
