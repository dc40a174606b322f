"""Conversions between ROS 2 messages and the numpy arrays the rest of the project uses.

cv_bridge and sensor_msgs_py are not available as PyPI wheels, and the estimator only needs a few
encodings, so the conversions live here (and nowhere else: every node uses these functions). Where a
message is only *read* -- pixels, header stamps, the ``k`` of a camera_info -- the functions are thin
adapters over the ROS-free readers the bag frame source uses too (:mod:`depth_pose_ros.utils.image_codec`,
:mod:`depth_pose_ros.data.rosbag_io`), adding this module's error types and checks.

Conventions (those of the original design sketch, shared/DESIGN.md, outside this repository): images come
out as HxWx3 uint8 **RGB** or HxW gray (uint8 / uint16), depth as HxW float32 metres, intrinsics as 3x3
float64, poses as 4x4 float64 ``T_target_source`` matrices (docs/architecture.md, "Pose naming").
Numbers given where a message wants a stamp are seconds (float); a ``builtin_interfaces/Time`` or an
``rclpy.time.Time`` is accepted as well; ``None`` means the zero stamp.

Every bad input raises a :class:`ConversionError` subclass (a ``ValueError``) whose message names
the message kind and the offending field, because a silently garbled image is much harder to find
than an exception.
"""
from __future__ import annotations

import array
import math
import sys
from collections.abc import Sequence
from typing import Any, Literal, Optional, Union

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, PoseStamped, Transform, TransformStamped
from nav_msgs.msg import Odometry, Path
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2, PointField
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from depth_pose_ros.data.rosbag_io import camera_info_matrix, stamp_ns
from depth_pose_ros.utils.image_codec import (
    ENCODINGS,
    ImageDecodeError,
    as_uint8_buffer,
    decode_compressed_image,
    decode_raw_image,
)

StampLike = Union[Time, float, int, None, Any]  # Any: rclpy.time.Time (has .to_msg())


class ConversionError(ValueError):
    """A message or array that cannot be converted; the text names the field that is wrong."""


class ImageConversionError(ConversionError):
    """Image / CompressedImage / depth image conversion failure."""


class CloudConversionError(ConversionError):
    """PointCloud2 conversion failure."""


# encoding -> (numpy dtype of one channel, channels), for the encodings this package writes and reads.
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    name: (dtype, channels) for name, (dtype, channels, _) in ENCODINGS.items() if name not in ("8UC3", "8UC4")
}

_LITTLE_ENDIAN_HOST = sys.byteorder == "little"


# --------------------------------------------------------------------------------------- stamps
def sec_to_stamp(t: float) -> Time:
    """Seconds -> ``builtin_interfaces/Time`` (rounded to the nearest nanosecond)."""
    return ns_to_stamp(_sec_to_ns(t))


def stamp_to_sec(stamp: Time) -> float:
    """``builtin_interfaces/Time`` -> seconds (float64; exact to ~0.1 us for current epochs)."""
    return int(stamp.sec) + int(stamp.nanosec) * 1e-9


def ns_to_stamp(ns: int) -> Time:
    """Integer nanoseconds -> ``builtin_interfaces/Time`` (exact; what bag files store)."""
    ns = int(ns)
    if ns < 0:
        raise ConversionError(f"stamp: negative time {ns} ns cannot be a ROS time")
    sec, nanosec = divmod(ns, 1_000_000_000)
    if sec > 2**31 - 1:
        raise ConversionError(f"stamp: {sec} s does not fit builtin_interfaces/Time.sec (int32)")
    return Time(sec=int(sec), nanosec=int(nanosec))


def stamp_to_ns(stamp: Time) -> int:
    """``builtin_interfaces/Time`` -> integer nanoseconds (exact)."""
    return stamp_ns(stamp)


def as_stamp(stamp: StampLike) -> Time:
    """Any accepted stamp form (Time, seconds, rclpy Time, None = zero) -> ``builtin_interfaces/Time``."""
    if stamp is None:
        return Time()
    if isinstance(stamp, Time):
        return stamp
    if hasattr(stamp, "to_msg"):  # rclpy.time.Time
        return stamp.to_msg()
    if isinstance(stamp, (int, float, np.integer, np.floating)):
        return sec_to_stamp(float(stamp))
    raise ConversionError(f"stamp: expected seconds, builtin_interfaces/Time or rclpy Time, got {stamp!r}")


def make_header(stamp: StampLike = None, frame_id: str = "") -> Header:
    """``std_msgs/Header`` from any accepted stamp form."""
    return Header(stamp=as_stamp(stamp), frame_id=str(frame_id))


def _sec_to_ns(t: float) -> int:
    t = float(t)
    if not math.isfinite(t):
        raise ConversionError(f"stamp: time must be finite, got {t}")
    if t < 0:
        raise ConversionError(f"stamp: negative time {t} s cannot be a ROS time")
    return round(t * 1e9)


# ------------------------------------------------------------------------------------ raw images
def image_msg_to_numpy(msg: Image) -> tuple[np.ndarray, str]:
    """``sensor_msgs/Image`` -> (array, encoding of the array).

    Colour encodings (rgb8, bgr8, rgba8, bgra8) come out as HxWx3 uint8 **RGB** with encoding
    ``"rgb8"`` (alpha dropped); mono8/8UC1 as HxW uint8, mono16/16UC1 as HxW uint16, 32FC1 as HxW
    float32, each with its own encoding name. Row padding is removed and big-endian data swapped to
    host order (decoding shared with the bag reader: :mod:`depth_pose_ros.utils.image_codec`). The array
    owns its memory (never a view into the message), so callers may modify it.
    """
    try:
        return decode_raw_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    except ImageDecodeError as exc:
        raise ImageConversionError(str(exc)) from None


def numpy_to_image_msg(
    array_: np.ndarray, encoding: str, stamp: StampLike = None, frame_id: str = ""
) -> Image:
    """Array laid out as ``encoding`` -> ``sensor_msgs/Image`` (little endian, no row padding).

    The array must already be in that layout: HxWx3 uint8 for rgb8/bgr8, HxWx4 uint8 for
    rgba8/bgra8, HxW uint8 for mono8/8UC1, HxW uint16 for mono16/16UC1, HxW float32 for 32FC1.
    Nothing is reordered or rescaled, so what is published is exactly what the caller holds.
    """
    if encoding not in IMAGE_ENCODINGS:
        raise ImageConversionError(
            f"encoding: unsupported {encoding!r}; supported: {', '.join(IMAGE_ENCODINGS)}"
        )
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.asarray(array_)
    if arr.ndim == 3 and channels == 1 and arr.shape[2] == 1:
        arr = arr[..., 0]
    expected_ndim = 2 if channels == 1 else 3
    if arr.ndim != expected_ndim or (channels > 1 and arr.shape[2] != channels):
        want = "HxW" if channels == 1 else f"HxWx{channels}"
        raise ImageConversionError(f"array: {encoding} needs a {want} array, got shape {arr.shape}")
    if arr.dtype != dtype:
        raise ImageConversionError(f"array: {encoding} needs dtype {dtype}, got {arr.dtype}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageConversionError(f"array: zero size {arr.shape}")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    msg = Image()
    msg.header = make_header(stamp, frame_id)
    msg.height, msg.width = height, width
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = width * channels * dtype.itemsize
    msg.data = _to_msg_bytes(arr.astype(dtype.newbyteorder("<"), copy=False))
    return msg


def depth_to_msg(depth: np.ndarray, stamp: StampLike = None, frame_id: str = "") -> Image:
    """HxW depth in metres -> 32FC1 ``sensor_msgs/Image`` (REP 118 units).

    REP 118 marks invalid depth as NaN/inf, but the project rule is *never publish NaN* (many
    consumers average or threshold without checking), so every non-finite or non-positive value
    is published as 0, meaning "no measurement".
    """
    d = np.asarray(depth)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[..., 0]
    if d.ndim != 2:
        raise ImageConversionError(f"depth: expected an HxW array, got shape {d.shape}")
    if not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer)):
        raise ImageConversionError(f"depth: expected a numeric array, got dtype {d.dtype}")
    d = d.astype(np.float32, copy=True)
    d[~np.isfinite(d) | (d <= 0)] = 0.0
    return numpy_to_image_msg(d, "32FC1", stamp, frame_id)


# ----------------------------------------------------------------------------- compressed images
def compressed_msg_to_numpy(msg: CompressedImage) -> tuple[np.ndarray, str]:
    """``sensor_msgs/CompressedImage`` (jpeg / png) -> (array, encoding) like :func:`image_msg_to_numpy`.

    Colour comes out RGB (``"rgb8"``), gray as ``"mono8"`` or, for 16-bit PNG, ``"mono16"``.
    """
    try:
        return decode_compressed_image(msg.data, str(msg.format))
    except ImageDecodeError as exc:
        raise ImageConversionError(str(exc)) from None


def numpy_to_compressed_msg(
    image: np.ndarray,
    stamp: StampLike = None,
    frame_id: str = "",
    format: str = "jpeg",  # the message field has this name
    quality: int = 90,
) -> CompressedImage:
    """HxWx3 uint8 RGB or HxW gray (uint8; uint16 for png) -> ``sensor_msgs/CompressedImage``.

    ``format`` is ``"jpeg"`` (lossy, ``quality`` 1-100) or ``"png"`` (lossless). The message's
    ``format`` field follows image_transport (``"rgb8; jpeg compressed bgr8"``) so its
    ``compressed`` subscribers decode it.
    """
    fmt = str(format).lower()
    if fmt in ("jpg", "jpeg"):
        fmt, ext, params = "jpeg", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
        if not 1 <= int(quality) <= 100:
            raise ImageConversionError(f"quality: jpeg quality must be in 1..100, got {quality}")
    elif fmt == "png":
        ext, params = ".png", []
    else:
        raise ImageConversionError(f"format: unsupported compressed format {format!r}; use 'jpeg' or 'png'")
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        if arr.dtype == np.uint16 and fmt == "png":
            source = target = "mono16"
        elif arr.dtype == np.uint8:
            source = target = "mono8"
        else:
            raise ImageConversionError(
                f"image: gray {fmt} needs uint8{' or uint16' if fmt == 'png' else ''}, got {arr.dtype}"
            )
        to_encode = arr
    elif arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
        source, target = "rgb8", "bgr8"
        to_encode = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    else:
        raise ImageConversionError(
            f"image: expected HxWx3 uint8 RGB or HxW gray, got shape {arr.shape} dtype {arr.dtype}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageConversionError(f"image: zero size {arr.shape}")
    ok, encoded = cv2.imencode(ext, to_encode, params)
    if not ok:
        raise ImageConversionError(f"image: cv2.imencode({ext}) failed for shape {arr.shape}")
    msg = CompressedImage()
    msg.header = make_header(stamp, frame_id)
    msg.format = f"{source}; {fmt} compressed {target}"
    msg.data = _to_msg_bytes(encoded)
    return msg


# ---------------------------------------------------------------------------------- point clouds
_POINTFIELD_DTYPES: dict[int, np.dtype] = {
    PointField.INT8: np.dtype(np.int8),
    PointField.UINT8: np.dtype(np.uint8),
    PointField.INT16: np.dtype(np.int16),
    PointField.UINT16: np.dtype(np.uint16),
    PointField.INT32: np.dtype(np.int32),
    PointField.UINT32: np.dtype(np.uint32),
    PointField.FLOAT32: np.dtype(np.float32),
    PointField.FLOAT64: np.dtype(np.float64),
}


def points_to_cloud_msg(
    xyz: np.ndarray,
    rgb: Optional[np.ndarray] = None,
    stamp: StampLike = None,
    frame_id: str = "",
) -> PointCloud2:
    """Nx3 points (metres) and optional Nx3 uint8 RGB colours -> unorganised ``PointCloud2``.

    Fields are ``x y z`` float32 and, with colours, ``rgb``: 0x00RRGGBB packed into the bytes of a
    float32 (the PCL / RViz convention). Rows with a non-finite coordinate are dropped first, so
    the cloud is ``is_dense`` (consumers may then skip NaN checks).
    """
    pts = np.asarray(xyz)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise CloudConversionError(f"xyz: expected an Nx3 array, got shape {pts.shape}")
    if not np.issubdtype(pts.dtype, np.number):
        raise CloudConversionError(f"xyz: expected a numeric array, got dtype {pts.dtype}")
    pts = pts.astype(np.float32, copy=False)
    colours = None
    if rgb is not None:
        colours = np.asarray(rgb)
        if colours.shape != pts.shape:
            raise CloudConversionError(f"rgb: expected shape {pts.shape} like xyz, got {colours.shape}")
        if colours.dtype != np.uint8:
            raise CloudConversionError(f"rgb: expected dtype uint8, got {colours.dtype}")
    keep = _finite_rows(pts)
    if not keep.all():
        pts = pts[keep]
        colours = None if colours is None else colours[keep]
    names = ["x", "y", "z"] + ([] if colours is None else ["rgb"])
    # One float32 row per point; the colour column is written through a uint32 view so its bit
    # pattern (0x00RRGGBB, a denormal as float) is stored exactly.
    packed = np.empty((len(pts), len(names)), dtype="<f4")
    packed[:, :3] = pts
    if colours is not None:
        c = colours.astype(np.uint32)
        packed.view("<u4")[:, 3] = (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]
    msg = PointCloud2()
    msg.header = make_header(stamp, frame_id)
    msg.height, msg.width = 1, len(pts)
    msg.fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate(names)
    ]
    msg.is_bigendian = False
    msg.point_step = 4 * len(names)
    msg.row_step = msg.point_step * len(pts)
    msg.is_dense = True
    msg.data = _to_msg_bytes(packed)
    return msg


def cloud_msg_to_numpy(msg: PointCloud2, skip_nans: bool = False) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """``PointCloud2`` -> (Nx3 float32 xyz, Nx3 uint8 RGB or None).

    Reads any layout with float ``x y z`` fields (other fields and padding are skipped; organised
    clouds are flattened row by row). Colours come from an ``rgb`` or ``rgba`` field (float32 or
    uint32 holding 0x00RRGGBB). ``skip_nans`` drops points with a non-finite coordinate.
    """
    fields = {f.name: f for f in msg.fields}
    missing = [n for n in ("x", "y", "z") if n not in fields]
    if missing:
        raise CloudConversionError(f"cloud: missing field(s) {missing}; has {list(fields)}")
    colour_name = "rgb" if "rgb" in fields else ("rgba" if "rgba" in fields else None)
    order: Literal["<", ">"] = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z") + ((colour_name,) if colour_name else ()):
        field = fields[name]
        base = _POINTFIELD_DTYPES.get(int(field.datatype))
        if base is None:
            raise CloudConversionError(f"cloud: field {name!r} has unknown datatype {field.datatype}")
        if name in ("x", "y", "z") and base.kind != "f":
            raise CloudConversionError(f"cloud: field {name!r} must be float32/float64, got {base}")
        if name == colour_name and base.itemsize != 4:
            raise CloudConversionError(f"cloud: colour field {name!r} must be 4 bytes, got {base}")
        names.append(name)
        formats.append(base.newbyteorder(order) if name != colour_name else np.dtype(order + "u4"))
        offsets.append(int(field.offset))
    point_step, row_step = int(msg.point_step), int(msg.row_step)
    height, width = int(msg.height), int(msg.width)
    if point_step <= 0 or max(o + f.itemsize for o, f in zip(offsets, formats)) > point_step:
        raise CloudConversionError(f"cloud: point_step {point_step} too small for fields at {offsets}")
    record = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})
    if row_step < width * point_step:
        raise CloudConversionError(f"cloud: row_step {row_step} < width*point_step = {width * point_step}")
    buf = as_uint8_buffer(msg.data)
    if buf.size != row_step * height:
        raise CloudConversionError(
            f"cloud: data has {buf.size} bytes, expected row_step*height = {row_step}*{height}"
        )
    if height * width == 0:
        return np.zeros((0, 3), np.float32), (None if colour_name is None else np.zeros((0, 3), np.uint8))
    rows = np.ascontiguousarray(buf.reshape(height, row_step)[:, : width * point_step])
    points = rows.reshape(-1).view(record)
    xyz = np.stack([points["x"], points["y"], points["z"]], axis=1).astype(np.float32)
    rgb = None
    if colour_name is not None:
        packed = points[colour_name].astype(np.uint32)
        rgb = np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255], axis=1).astype(np.uint8)
    if skip_nans:
        keep = _finite_rows(xyz)
        xyz = xyz[keep]
        rgb = None if rgb is None else rgb[keep]
    return xyz, rgb


# ------------------------------------------------------------------------------------ camera info
def camera_info_to_K(msg: CameraInfo) -> np.ndarray:
    """``sensor_msgs/CameraInfo`` -> 3x3 float64 K (of the raw, distorted image, as the message says).

    An all-zero K is how drivers say "uncalibrated"; that raises rather than producing a
    division by zero deep in the estimator.
    """
    try:
        K = camera_info_matrix(msg)
    except ValueError as exc:  # not 9 values
        raise ConversionError(str(exc)) from None
    if K is None:
        raise ConversionError("camera_info: the message has no k field")
    bad = [f"k[{i}]={v}" for i, v in enumerate(K.ravel()) if not np.isfinite(v)]
    bad += [f"{n}={K[i, i]} (must be > 0)" for i, n in ((0, "fx"), (1, "fy")) if np.isfinite(K[i, i]) and K[i, i] <= 0]
    bad += [f"k[{i}]={K.ravel()[i]} (must be {want})" for i, want in ((6, 0), (7, 0), (8, 1))
            if np.isfinite(K.ravel()[i]) and abs(K.ravel()[i] - want) > 1e-9]
    if bad:
        raise ConversionError(f"camera_info: k is not a valid pinhole matrix: {', '.join(bad)}; "
                              "is the camera calibrated?")
    return K


def make_camera_info(
    K: np.ndarray,
    width: int,
    height: int,
    stamp: StampLike = None,
    frame_id: str = "",
    distortion: Optional[Sequence[float]] = None,
    distortion_model: str = "plumb_bob",
) -> CameraInfo:
    """3x3 K and image size -> ``sensor_msgs/CameraInfo`` (R identity, P = [K | 0]).

    ``distortion`` defaults to five zeros (``plumb_bob``), i.e. an already rectified image, which is
    what the estimator assumes.
    """
    Km = np.asarray(K, dtype=np.float64)
    if Km.shape != (3, 3) or not np.isfinite(Km).all():
        raise ConversionError(f"K: expected a finite 3x3 matrix, got shape {Km.shape}")
    if int(width) <= 0 or int(height) <= 0:
        raise ConversionError(f"width/height: must be positive, got {width}x{height}")
    msg = CameraInfo()
    msg.header = make_header(stamp, frame_id)
    msg.width, msg.height = int(width), int(height)
    msg.distortion_model = str(distortion_model)
    msg.d = [float(v) for v in (distortion if distortion is not None else [0.0] * 5)]
    msg.k = Km.reshape(-1).tolist()
    msg.r = np.eye(3).reshape(-1).tolist()
    msg.p = np.hstack([Km, np.zeros((3, 1))]).reshape(-1).tolist()
    return msg


# ------------------------------------------------------------------------------ poses and frames
def check_pose_matrix(T: np.ndarray, what: str = "T") -> np.ndarray:
    """Validate a 4x4 rigid transform (finite, rotation orthonormal, last row 0 0 0 1) -> float64.

    Rotation.from_matrix would silently orthogonalise a broken matrix; a pose that is not rigid is
    an upstream bug and must surface here with the argument's name.
    """
    M = np.asarray(T, dtype=np.float64)
    if M.shape != (4, 4):
        raise ConversionError(f"{what}: expected a 4x4 matrix, got shape {M.shape}")
    if not np.isfinite(M).all():
        raise ConversionError(f"{what}: contains non-finite values")
    if np.abs(M[3] - [0.0, 0.0, 0.0, 1.0]).max() > 1e-6:
        raise ConversionError(f"{what}: last row must be [0 0 0 1], got {M[3].tolist()}")
    R = M[:3, :3]
    if np.abs(R @ R.T - np.eye(3)).max() > 1e-4 or np.linalg.det(R) < 0:
        raise ConversionError(f"{what}: upper-left 3x3 is not a rotation matrix")
    return M


def matrix_to_pose_msg(T: np.ndarray, what: str = "T") -> Pose:
    """4x4 ``T_frame_body`` (maps body-frame points into ``frame``) -> ``geometry_msgs/Pose``."""
    M = check_pose_matrix(T, what)
    q = Rotation.from_matrix(M[:3, :3]).as_quat()  # x, y, z, w
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in M[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def pose_msg_to_matrix(pose: Pose) -> np.ndarray:
    """``geometry_msgs/Pose`` -> 4x4 float64 ``T_frame_body`` (inverse of :func:`matrix_to_pose_msg`)."""
    q = pose.orientation
    return _rt_to_matrix([q.x, q.y, q.z, q.w], [pose.position.x, pose.position.y, pose.position.z])


def transform_msg(T_parent_child: np.ndarray, stamp: StampLike, parent: str, child: str) -> TransformStamped:
    """4x4 ``T_parent_child`` (maps points of ``child`` into ``parent``) -> ``TransformStamped``.

    This is exactly tf2's meaning of ``header.frame_id = parent``, ``child_frame_id = child``.
    """
    M = check_pose_matrix(T_parent_child, "T_parent_child")
    q = Rotation.from_matrix(M[:3, :3]).as_quat()
    msg = TransformStamped()
    msg.header = make_header(stamp, parent)
    msg.child_frame_id = str(child)
    t = msg.transform.translation
    t.x, t.y, t.z = (float(v) for v in M[:3, 3])
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


def transform_msg_to_matrix(msg: Union[TransformStamped, Transform]) -> np.ndarray:
    """``TransformStamped`` / ``Transform`` -> 4x4 float64 ``T_parent_child``."""
    tf = msg.transform if isinstance(msg, TransformStamped) else msg
    r, t = tf.rotation, tf.translation
    return _rt_to_matrix([r.x, r.y, r.z, r.w], [t.x, t.y, t.z])


def tf_message(transforms: Sequence[TransformStamped]) -> TFMessage:
    """``tf2_msgs/TFMessage`` holding ``transforms`` (what is published on /tf and /tf_static)."""
    return TFMessage(transforms=list(transforms))


def pose_to_odometry_msg(
    T_odom_base: np.ndarray,
    twist: Optional[tuple[Sequence[float], Sequence[float]]] = None,
    covariance: Optional[np.ndarray] = None,
    stamp: StampLike = None,
    frame_id: str = "odom",
    child_frame_id: str = "base_link",
    twist_covariance: Optional[np.ndarray] = None,
) -> Odometry:
    """Pose and velocity -> ``nav_msgs/Odometry`` (REP 105 frames).

    ``T_odom_base`` maps points of ``child_frame_id`` into ``frame_id``. ``twist = (v, w)``: linear
    (m/s) and angular (rad/s) velocity expressed in ``child_frame_id``, as nav_msgs specifies;
    ``None`` publishes zeros. ``covariance`` / ``twist_covariance`` are 6x6 over
    (x, y, z, rot x, rot y, rot z), flattened row-major; ``None`` publishes zeros (unknown).
    """
    msg = Odometry()
    msg.header = make_header(stamp, frame_id)
    msg.child_frame_id = str(child_frame_id)
    msg.pose.pose = matrix_to_pose_msg(T_odom_base, "T_odom_base")
    msg.pose.covariance = _covariance(covariance, "covariance")
    if twist is not None:
        v, w = (np.asarray(x, dtype=np.float64).reshape(-1) for x in twist)
        if v.size != 3 or w.size != 3 or not (np.isfinite(v).all() and np.isfinite(w).all()):
            raise ConversionError("twist: expected (v, w), two finite 3-vectors")
        lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
        lin.x, lin.y, lin.z = (float(x) for x in v)
        ang.x, ang.y, ang.z = (float(x) for x in w)
    msg.twist.covariance = _covariance(twist_covariance, "twist_covariance")
    return msg


def path_msg(
    poses: Sequence[np.ndarray],
    stamp: StampLike = None,
    frame_id: str = "odom",
    stamps: Optional[Sequence[StampLike]] = None,
) -> Path:
    """List of 4x4 ``T_frame_base`` poses -> ``nav_msgs/Path`` in ``frame_id``.

    Each pose is stamped with ``stamps[i]`` when given, else with ``stamp`` (the path's stamp).
    """
    if stamps is not None and len(stamps) != len(poses):
        raise ConversionError(f"stamps: {len(stamps)} stamps for {len(poses)} poses")
    msg = Path()
    msg.header = make_header(stamp, frame_id)
    for i, T in enumerate(poses):
        entry = PoseStamped()
        entry.header = make_header(stamp if stamps is None else stamps[i], frame_id)
        entry.pose = matrix_to_pose_msg(T, f"poses[{i}]")
        msg.poses.append(entry)
    return msg


# ------------------------------------------------------------------------------------- internals
def _rt_to_matrix(quat_xyzw: Sequence[float], translation: Sequence[float]) -> np.ndarray:
    q = np.asarray(quat_xyzw, dtype=np.float64)
    norm = np.linalg.norm(q)
    if not np.isfinite(q).all() or norm < 1e-9:
        raise ConversionError(f"quaternion: invalid (x, y, z, w) = {q.tolist()}")
    M = np.eye(4)
    M[:3, :3] = Rotation.from_quat(q / norm).as_matrix()
    M[:3, 3] = translation
    return M


def _covariance(cov: Optional[np.ndarray], what: str) -> list[float]:
    if cov is None:
        return [0.0] * 36
    C = np.asarray(cov, dtype=np.float64)
    if C.shape == (36,):
        C = C.reshape(6, 6)
    if C.shape != (6, 6) or not np.isfinite(C).all():
        raise ConversionError(f"{what}: expected a finite 6x6 matrix, got shape {C.shape}")
    return C.reshape(-1).tolist()


def _finite_rows(xyz: np.ndarray) -> np.ndarray:
    """Mask of Nx3 rows with three finite values (8x faster than ``isfinite(...).all(axis=1)``)."""
    finite = np.isfinite(xyz)
    return finite[:, 0] & finite[:, 1] & finite[:, 2]


def _to_msg_bytes(arr: np.ndarray) -> array.array:
    """Array -> ``array.array('B')`` in one copy (the message setter's fast path; lists are slow)."""
    out = array.array("B")
    out.frombytes(np.ascontiguousarray(arr).reshape(-1).view(np.uint8).data)
    return out
