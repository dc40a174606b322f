"""Message <-> numpy conversions (no DDS needed): hand-built messages with known bytes."""
from __future__ import annotations

import array
import math

import numpy as np
import pytest

pytest.importorskip("sensor_msgs.msg", reason="ROS 2 message packages are not installed")

from builtin_interfaces.msg import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField  # noqa: E402

from depth_pose_ros.ros.convert import (  # noqa: E402
    CloudConversionError,
    ConversionError,
    ImageConversionError,
    as_stamp,
    camera_info_to_K,
    cloud_msg_to_numpy,
    compressed_msg_to_numpy,
    depth_to_msg,
    image_msg_to_numpy,
    make_camera_info,
    matrix_to_pose_msg,
    ns_to_stamp,
    numpy_to_compressed_msg,
    numpy_to_image_msg,
    path_msg,
    points_to_cloud_msg,
    pose_msg_to_matrix,
    pose_to_odometry_msg,
    sec_to_stamp,
    stamp_to_ns,
    stamp_to_sec,
    tf_message,
    transform_msg,
    transform_msg_to_matrix,
)


def _image(encoding: str, width: int, height: int, step: int, data: bytes, bigendian: int = 0) -> Image:
    msg = Image(encoding=encoding, width=width, height=height, step=step, is_bigendian=bigendian)
    msg.data = array.array("B", data)
    return msg


def _rot_z(angle: float, t=(0.0, 0.0, 0.0)) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = t
    return T


# ------------------------------------------------------------------------------------------ images
def test_mono8_with_row_padding_drops_the_padding():
    # 3x2 image, step 4: one padding byte (99) per row must not leak into the pixels.
    msg = _image("mono8", 3, 2, 4, bytes([1, 2, 3, 99, 4, 5, 6, 99]))
    img, enc = image_msg_to_numpy(msg)
    assert enc == "mono8" and img.dtype == np.uint8
    np.testing.assert_array_equal(img, [[1, 2, 3], [4, 5, 6]])


def test_bgr8_comes_out_rgb_and_detached_from_the_message():
    msg = _image("bgr8", 2, 1, 6, bytes([10, 20, 30, 40, 50, 60]))
    img, enc = image_msg_to_numpy(msg)
    assert enc == "rgb8"
    np.testing.assert_array_equal(img, [[[30, 20, 10], [60, 50, 40]]])
    img[0, 0, 0] = 0
    assert msg.data[2] == 30  # the message was not modified through the returned array


def test_rgb8_is_returned_as_is_and_owns_its_memory():
    data = bytes(range(12))
    msg = _image("rgb8", 2, 2, 6, data)
    img, enc = image_msg_to_numpy(msg)
    assert enc == "rgb8"
    np.testing.assert_array_equal(img.reshape(-1), np.arange(12))
    img[:] = 0
    assert bytes(msg.data) == data


@pytest.mark.parametrize(("encoding", "expected"), [
    ("rgba8", [[[1, 2, 3], [5, 6, 7]]]),
    ("bgra8", [[[3, 2, 1], [7, 6, 5]]]),
])
def test_alpha_is_dropped(encoding, expected):
    msg = _image(encoding, 2, 1, 8, bytes([1, 2, 3, 4, 5, 6, 7, 8]))
    img, enc = image_msg_to_numpy(msg)
    assert enc == "rgb8"
    np.testing.assert_array_equal(img, expected)


def test_mono16_big_endian_is_swapped():
    # 0x0102 = 258 and 0xABCD = 43981 in big-endian byte order.
    msg = _image("mono16", 2, 1, 4, bytes([0x01, 0x02, 0xAB, 0xCD]), bigendian=1)
    img, enc = image_msg_to_numpy(msg)
    assert enc == "mono16" and img.dtype == np.uint16
    np.testing.assert_array_equal(img, [[258, 43981]])
    little = _image("mono16", 2, 1, 4, bytes([0x01, 0x02, 0xAB, 0xCD]), bigendian=0)
    np.testing.assert_array_equal(image_msg_to_numpy(little)[0], [[0x0201, 0xCDAB]])


def test_32fc1_big_endian_with_padding():
    values = np.array([[1.5, -2.25], [3.0, 0.125]], dtype=">f4")
    rows = [values[0].tobytes() + b"\x00" * 4, values[1].tobytes() + b"\x00" * 4]  # step 12
    msg = _image("32FC1", 2, 2, 12, b"".join(rows), bigendian=1)
    img, enc = image_msg_to_numpy(msg)
    assert enc == "32FC1" and img.dtype == np.float32 and img.dtype.isnative
    np.testing.assert_array_equal(img, values.astype(np.float32))


@pytest.mark.parametrize(("encoding", "array_", "expected_step"), [
    ("rgb8", np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3), 9),
    ("mono8", np.arange(6, dtype=np.uint8).reshape(2, 3), 3),
    ("mono16", np.array([[0, 1, 65535]], dtype=np.uint16), 6),
    ("32FC1", np.array([[0.5, -1.0], [2.0, 1e6]], dtype=np.float32), 8),
])
def test_numpy_image_round_trip(encoding, array_, expected_step):
    msg = numpy_to_image_msg(array_, encoding, 12.5, "cam")
    assert (msg.height, msg.width, msg.step, msg.encoding) == (array_.shape[0], array_.shape[1],
                                                                expected_step, encoding)
    assert msg.header.frame_id == "cam" and (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 5e8)
    back, enc = image_msg_to_numpy(msg)
    assert enc == encoding
    np.testing.assert_array_equal(back, array_)


def test_bgr8_message_from_numpy_keeps_channel_order_as_given():
    bgr = np.array([[[1, 2, 3]]], dtype=np.uint8)
    msg = numpy_to_image_msg(bgr, "bgr8")
    assert bytes(msg.data) == bytes([1, 2, 3])
    np.testing.assert_array_equal(image_msg_to_numpy(msg)[0], [[[3, 2, 1]]])


@pytest.mark.parametrize(("msg", "fragment"), [
    (_image("yuv422", 2, 1, 4, bytes(4)), "unsupported encoding 'yuv422'"),
    (_image("mono8", 0, 0, 0, b""), "zero size"),
    (_image("mono8", 3, 2, 3, bytes(5)), "data has 5 bytes, expected step*height = 3*2 = 6"),
    (_image("rgb8", 3, 1, 8, bytes(8)), "step 8 is smaller than width*bytes_per_pixel = 9"),
])
def test_bad_image_messages_raise_image_conversion_error(msg, fragment):
    with pytest.raises(ImageConversionError, match=None) as info:
        image_msg_to_numpy(msg)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(("array_", "encoding", "fragment"), [
    (np.zeros((2, 2, 3), np.float32), "rgb8", "needs dtype uint8"),
    (np.zeros((2, 2), np.uint8), "rgb8", "needs a HxWx3 array"),
    (np.zeros((2, 2), np.uint8), "nv12", "unsupported 'nv12'"),
    (np.zeros((0, 4), np.uint8), "mono8", "zero size"),
])
def test_bad_arrays_raise_image_conversion_error(array_, encoding, fragment):
    with pytest.raises(ImageConversionError) as info:
        numpy_to_image_msg(array_, encoding)
    assert fragment in str(info.value)


def test_depth_to_msg_never_publishes_nan():
    depth = np.array([[1.5, np.nan], [np.inf, -2.0], [0.0, 7.25]], dtype=np.float64)
    msg = depth_to_msg(depth, 3.0, "cam")
    assert msg.encoding == "32FC1"
    out, _ = image_msg_to_numpy(msg)
    np.testing.assert_array_equal(out, [[1.5, 0.0], [0.0, 0.0], [0.0, 7.25]])
    assert np.isfinite(out).all()
    with pytest.raises(ImageConversionError, match="depth: expected an HxW array"):
        depth_to_msg(np.zeros((2, 2, 3)))


# ------------------------------------------------------------------------------ compressed images
def test_png_round_trip_is_exact_for_rgb_gray_and_16_bit(rng):
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    msg = numpy_to_compressed_msg(rgb, 1.0, "cam", format="png")
    assert msg.format == "rgb8; png compressed bgr8"
    back, enc = compressed_msg_to_numpy(msg)
    assert enc == "rgb8"
    np.testing.assert_array_equal(back, rgb)
    gray16 = rng.integers(0, 65536, (7, 9), dtype=np.uint16)
    back16, enc16 = compressed_msg_to_numpy(numpy_to_compressed_msg(gray16, format="png"))
    assert enc16 == "mono16"
    np.testing.assert_array_equal(back16, gray16)
    gray8 = rng.integers(0, 256, (7, 9), dtype=np.uint8)
    back8, enc8 = compressed_msg_to_numpy(numpy_to_compressed_msg(gray8, format="png"))
    assert enc8 == "mono8"
    np.testing.assert_array_equal(back8, gray8)


def test_jpeg_keeps_colour_order():
    # A pure red image must come back red (a BGR/RGB mix-up would make it blue).
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255
    msg = numpy_to_compressed_msg(red, format="jpeg", quality=95)
    assert msg.format == "rgb8; jpeg compressed bgr8"
    back, enc = compressed_msg_to_numpy(msg)
    assert enc == "rgb8"
    assert back[..., 0].min() > 240 and back[..., 2].max() < 15


def test_bad_compressed_input_raises():
    garbage = CompressedImage(format="jpeg")
    garbage.data = array.array("B", b"this is not a jpeg at all")
    with pytest.raises(ImageConversionError, match="could not decode 25 bytes"):
        compressed_msg_to_numpy(garbage)
    with pytest.raises(ImageConversionError, match="empty data"):
        compressed_msg_to_numpy(CompressedImage(format="png"))
    with pytest.raises(ImageConversionError, match="format: unsupported compressed format 'webp'"):
        numpy_to_compressed_msg(np.zeros((2, 2, 3), np.uint8), format="webp")
    with pytest.raises(ImageConversionError, match="gray jpeg needs uint8"):
        numpy_to_compressed_msg(np.zeros((2, 2), np.uint16), format="jpeg")


# ------------------------------------------------------------------------------------ point clouds
def test_cloud_packs_rgb_as_pcl_float_and_drops_non_finite_points():
    xyz = np.array([[1.0, 2.0, 3.0], [np.nan, 0.0, 1.0], [-1.0, 0.5, 4.0]], dtype=np.float32)
    rgb = np.array([[255, 0, 1], [9, 9, 9], [0, 128, 255]], dtype=np.uint8)
    msg = points_to_cloud_msg(xyz, rgb, 2.0, "cam")
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 2, 16, 32)
    assert msg.is_dense and [f.name for f in msg.fields] == ["x", "y", "z", "rgb"]
    assert all(f.datatype == PointField.FLOAT32 and f.count == 1 for f in msg.fields)
    raw = np.frombuffer(bytes(msg.data), dtype="<u4").reshape(2, 4)
    assert raw[0, 3] == 0x00FF0001 and raw[1, 3] == 0x000080FF  # hand-packed 0x00RRGGBB
    np.testing.assert_array_equal(raw[0, :3].view("<f4"), [1.0, 2.0, 3.0])
    back_xyz, back_rgb = cloud_msg_to_numpy(msg)
    np.testing.assert_array_equal(back_xyz, xyz[[0, 2]])
    np.testing.assert_array_equal(back_rgb, rgb[[0, 2]])


def test_cloud_without_colour_has_three_fields():
    msg = points_to_cloud_msg(np.ones((4, 3)), None)
    assert msg.point_step == 12 and [f.name for f in msg.fields] == ["x", "y", "z"]
    xyz, rgb = cloud_msg_to_numpy(msg)
    assert rgb is None and xyz.dtype == np.float32 and xyz.shape == (4, 3)


def test_foreign_organised_cloud_with_padding_and_extra_fields():
    # 2x2 organised cloud, point_step 20: x y z (f32), intensity (f32) at 12, rgb (u32) at 16,
    # and 8 bytes of row padding (row_step 48).
    point = np.dtype({"names": ["x", "y", "z", "intensity", "rgb"],
                      "formats": ["<f4", "<f4", "<f4", "<f4", "<u4"],
                      "offsets": [0, 4, 8, 12, 16], "itemsize": 20})
    pts = np.zeros((2, 2), dtype=point)
    pts["x"], pts["y"], pts["z"] = [[1, 2], [3, 4]], [[5, 6], [7, 8]], [[np.nan, 1], [2, 3]]
    pts["intensity"] = 42.0
    pts["rgb"] = [[0x010203, 0x040506], [0x0708090A, 0xFFFFFF]]
    data = b"".join(pts[r].tobytes() + b"\xEE" * 8 for r in range(2))
    msg = PointCloud2(height=2, width=2, point_step=20, row_step=48, is_bigendian=False, is_dense=False)
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in [
        ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32),
        ("intensity", 12, PointField.FLOAT32), ("rgb", 16, PointField.UINT32)]]
    msg.data = array.array("B", data)
    xyz, rgb = cloud_msg_to_numpy(msg)
    assert xyz.shape == (4, 3) and np.isnan(xyz[0, 2])
    np.testing.assert_array_equal(xyz[1:], [[2, 6, 1], [3, 7, 2], [4, 8, 3]])
    np.testing.assert_array_equal(rgb, [[1, 2, 3], [4, 5, 6], [8, 9, 10], [255, 255, 255]])
    xyz_valid, rgb_valid = cloud_msg_to_numpy(msg, skip_nans=True)
    assert xyz_valid.shape == (3, 3) and rgb_valid.shape == (3, 3)


def test_bad_clouds_raise():
    with pytest.raises(CloudConversionError, match=r"xyz: expected an Nx3 array"):
        points_to_cloud_msg(np.zeros((3, 2)))
    with pytest.raises(CloudConversionError, match=r"rgb: expected dtype uint8"):
        points_to_cloud_msg(np.zeros((3, 3)), np.zeros((3, 3), np.float32))
    no_z = PointCloud2(height=1, width=1, point_step=8, row_step=8)
    no_z.fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                   for i, n in enumerate("xy")]
    with pytest.raises(CloudConversionError, match=r"missing field\(s\) \['z'\]"):
        cloud_msg_to_numpy(no_z)
    short = points_to_cloud_msg(np.ones((3, 3)))
    short.data = short.data[:-4]
    with pytest.raises(CloudConversionError, match="data has 32 bytes"):
        cloud_msg_to_numpy(short)


# ------------------------------------------------------------------------------------ camera info
def test_camera_info_round_trip_and_uncalibrated_camera():
    K = np.array([[707.0912, 0.0, 601.8873], [0.0, 707.0912, 183.1104], [0.0, 0.0, 1.0]])
    msg = make_camera_info(K, 1226, 370, 5.0, "cam")
    assert (msg.width, msg.height, msg.distortion_model) == (1226, 370, "plumb_bob")
    assert list(msg.d) == [0.0] * 5 and list(msg.r) == [1, 0, 0, 0, 1, 0, 0, 0, 1]
    np.testing.assert_array_equal(np.reshape(msg.p, (3, 4)), np.hstack([K, np.zeros((3, 1))]))
    np.testing.assert_array_equal(camera_info_to_K(msg), K)
    with pytest.raises(ConversionError, match="is the camera calibrated"):
        camera_info_to_K(CameraInfo())
    with pytest.raises(ConversionError, match="K: expected a finite 3x3"):
        make_camera_info(np.eye(2), 10, 10)


# ----------------------------------------------------------------------------------------- stamps
def test_stamps_are_exact_and_carry_rounding():
    assert (sec_to_stamp(1.5).sec, sec_to_stamp(1.5).nanosec) == (1, 500_000_000)
    carried = sec_to_stamp(2.9999999999)  # rounds to 3.000000000 s, not (2, 1e9)
    assert (carried.sec, carried.nanosec) == (3, 0)
    assert stamp_to_sec(Time(sec=10, nanosec=250_000_000)) == 10.25
    ns = 1_795_239_396_994_352_549
    assert stamp_to_ns(ns_to_stamp(ns)) == ns
    assert as_stamp(None) == Time() and as_stamp(Time(sec=3)) == Time(sec=3)
    with pytest.raises(ConversionError, match="negative time"):
        sec_to_stamp(-0.5)
    with pytest.raises(ConversionError, match="must be finite"):
        sec_to_stamp(float("nan"))
    with pytest.raises(ConversionError, match="expected seconds"):
        as_stamp("12")


# ------------------------------------------------------------------------------------------ poses
def test_pose_and_transform_of_a_quarter_turn_about_z():
    T = _rot_z(math.pi / 2, (1.0, 2.0, 3.0))
    pose = matrix_to_pose_msg(T)
    q = [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]
    np.testing.assert_allclose(np.abs(q), [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
    assert (pose.position.x, pose.position.y, pose.position.z) == (1.0, 2.0, 3.0)
    np.testing.assert_allclose(pose_msg_to_matrix(pose), T, atol=1e-12)

    tf = transform_msg(T, 4.0, "odom", "base_link")
    assert (tf.header.frame_id, tf.child_frame_id, tf.header.stamp.sec) == ("odom", "base_link", 4)
    np.testing.assert_allclose(transform_msg_to_matrix(tf), T, atol=1e-12)
    # T_parent_child maps child points into the parent: the child's x axis is the parent's y axis.
    np.testing.assert_allclose(transform_msg_to_matrix(tf) @ [1, 0, 0, 1], [1.0, 3.0, 3.0, 1.0], atol=1e-12)
    assert len(tf_message([tf, tf]).transforms) == 2


def test_odometry_message_fields():
    T = _rot_z(0.3, (5.0, -1.0, 0.0))
    cov = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    cov[0, 1] = 0.5
    odom = pose_to_odometry_msg(T, ((1.0, 0.0, 0.0), (0.0, 0.0, 0.2)), cov, 7.5, "odom", "base_link")
    assert (odom.header.frame_id, odom.child_frame_id) == ("odom", "base_link")
    assert (odom.header.stamp.sec, odom.header.stamp.nanosec) == (7, 500_000_000)
    np.testing.assert_allclose(pose_msg_to_matrix(odom.pose.pose), T, atol=1e-12)
    assert odom.pose.covariance[0] == 1.0 and odom.pose.covariance[1] == 0.5  # row-major
    assert odom.pose.covariance[35] == 6.0 and odom.pose.covariance[6] == 0.0
    assert (odom.twist.twist.linear.x, odom.twist.twist.angular.z) == (1.0, 0.2)
    assert list(odom.twist.covariance) == [0.0] * 36


def test_path_message_and_bad_poses():
    poses = [_rot_z(0.1 * i, (i, 0.0, 0.0)) for i in range(3)]
    path = path_msg(poses, 9.0, "odom", stamps=[1.0, 2.0, 3.0])
    assert path.header.frame_id == "odom" and len(path.poses) == 3
    assert [p.header.stamp.sec for p in path.poses] == [1, 2, 3]
    np.testing.assert_allclose(pose_msg_to_matrix(path.poses[2].pose), poses[2], atol=1e-12)
    not_rigid = np.eye(4)
    not_rigid[0, 0] = 2.0
    with pytest.raises(ConversionError, match=r"poses\[1\]: upper-left 3x3 is not a rotation"):
        path_msg([np.eye(4), not_rigid])
    bad_row = np.eye(4)
    bad_row[3, 0] = 1.0
    with pytest.raises(ConversionError, match="T_odom_base: last row must be"):
        pose_to_odometry_msg(bad_row)
    with pytest.raises(ConversionError, match="covariance: expected a finite 6x6"):
        pose_to_odometry_msg(np.eye(4), covariance=np.eye(3))
