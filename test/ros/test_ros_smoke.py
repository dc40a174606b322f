"""Smoke test of the ROS 2 set-up: two processes on an isolated domain exchange real messages.

A child process (``python -m ros_harness smoke_publisher``) publishes an rgb8 Image
(reliable), a 50k-point PointCloud2 (best effort: needs LARGE_DATA) and a TFMessage (reliable);
this process subscribes and checks every pixel, point and transform value.
"""
from __future__ import annotations

import numpy as np
import pytest
from rclpy.node import Node
from ros_harness import SMOKE_CLOUD_POINTS, smoke_payload, spin_until, start_child
from sensor_msgs.msg import Image, PointCloud2
from tf2_msgs.msg import TFMessage

from depth_pose_ros.ros.convert import (
    cloud_msg_to_numpy,
    image_msg_to_numpy,
    stamp_to_sec,
    transform_msg_to_matrix,
)
from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos

pytestmark = pytest.mark.ros


def test_two_processes_exchange_image_cloud_and_tf(ros_env, executor, tmp_path):
    image, xyz, rgb, T = smoke_payload()
    node = Node("smoke_listener", context=executor.context)
    executor.add_node(node)
    got: dict[str, object] = {}
    node.create_subscription(Image, "/smoke/image", lambda m: got.setdefault("image", m), reliable_qos())
    node.create_subscription(PointCloud2, "/smoke/cloud", lambda m: got.setdefault("cloud", m),
                             sensor_data_qos())
    node.create_subscription(TFMessage, "/smoke/tf", lambda m: got.setdefault("tf", m), reliable_qos())

    child = start_child(["-m", "ros_harness", "smoke_publisher", "--rate", "10"],
                        ros_env, tmp_path / "smoke_publisher.log")
    try:
        ok = spin_until(executor, lambda: len(got) == 3, timeout=20.0, children=[child])
        assert ok, f"received only {sorted(got)} in 20 s; publisher output:\n{child.output()}"
    finally:
        rc = child.stop()
    assert rc == 0, f"publisher did not exit cleanly on SIGINT (rc {rc}):\n{child.output()}"

    img_msg = got["image"]
    received, encoding = image_msg_to_numpy(img_msg)
    assert encoding == "rgb8" and img_msg.header.frame_id == "smoke_camera"
    np.testing.assert_array_equal(received, image)
    assert stamp_to_sec(img_msg.header.stamp) == pytest.approx(round(stamp_to_sec(img_msg.header.stamp)))
    assert stamp_to_sec(img_msg.header.stamp) >= 1000.0

    cloud_xyz, cloud_rgb = cloud_msg_to_numpy(got["cloud"])
    assert cloud_xyz.shape == (SMOKE_CLOUD_POINTS, 3)
    np.testing.assert_array_equal(cloud_xyz, xyz)
    np.testing.assert_array_equal(cloud_rgb, rgb)

    (tf,) = got["tf"].transforms
    assert (tf.header.frame_id, tf.child_frame_id) == ("smoke_world", "smoke_camera")
    np.testing.assert_allclose(transform_msg_to_matrix(tf), T, atol=1e-12)
