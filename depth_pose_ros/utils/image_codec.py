"""Decoding of ROS image payloads (raw ``sensor_msgs/Image`` fields and compressed bytes) to numpy.

Both the live ROS layer (rclpy messages) and the bag reader (``rosbags`` messages) receive the same
fields: encoding, height, width, step, is_bigendian, data. Keeping one decoder for both means a fix
for row padding, byte order or a colour order can never reach one path and miss the other. No ROS
imports: the functions take plain values.

Outputs follow the project convention: colour as HxWx3 uint8 **RGB** (encoding ``"rgb8"``, alpha
dropped), gray as HxW uint8 / uint16, depth (32FC1) as HxW float32.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np


class ImageDecodeError(ValueError):
    """Image bytes that cannot be decoded; the message names the field that is wrong."""


# encoding -> (dtype of one channel, channels, cv2 conversion to RGB or None). Names as in
# sensor_msgs/image_encodings.hpp; 8UC3/8UC4 follow OpenCV's BGR(A) convention.
ENCODINGS: dict[str, tuple[np.dtype, int, Any]] = {
    "rgb8": (np.dtype(np.uint8), 3, None),
    "bgr8": (np.dtype(np.uint8), 3, cv2.COLOR_BGR2RGB),
    "8UC3": (np.dtype(np.uint8), 3, cv2.COLOR_BGR2RGB),
    "rgba8": (np.dtype(np.uint8), 4, cv2.COLOR_RGBA2RGB),
    "bgra8": (np.dtype(np.uint8), 4, cv2.COLOR_BGRA2RGB),
    "8UC4": (np.dtype(np.uint8), 4, cv2.COLOR_BGRA2RGB),
    "mono8": (np.dtype(np.uint8), 1, None),
    "8UC1": (np.dtype(np.uint8), 1, None),
    "mono16": (np.dtype(np.uint16), 1, None),
    "16UC1": (np.dtype(np.uint16), 1, None),  # depth cameras: millimetres
    "32FC1": (np.dtype(np.float32), 1, None),  # REP 118 depth: metres
}
_BY_LOWER = {k.lower(): k for k in ENCODINGS}


def as_uint8_buffer(data: Any) -> np.ndarray:
    """1-D uint8 view/copy of a message's ``data`` (bytes, array.array, list or numpy)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8) if data.dtype != np.uint8 else data.reshape(-1)
    if isinstance(data, (bytes, bytearray, memoryview)):
        return np.frombuffer(data, dtype=np.uint8)
    try:
        return np.frombuffer(memoryview(data), dtype=np.uint8)
    except TypeError:
        return np.asarray(data, dtype=np.uint8).reshape(-1)


def decode_raw_image(encoding: str, height: int, width: int, step: int, is_bigendian: bool,
                     data: Any) -> tuple[np.ndarray, str]:
    """Raw image fields -> (array owning its memory, encoding of the array).

    Colour encodings come out as RGB ``"rgb8"``; gray and depth keep their encoding name. Row padding
    (``step`` > width * pixel bytes) is removed and big-endian data swapped to host order.
    """
    name = _BY_LOWER.get(str(encoding).lower())
    if name is None:
        raise ImageDecodeError(f"image: unsupported encoding {encoding!r}; supported: {', '.join(ENCODINGS)}")
    dtype, channels, to_rgb = ENCODINGS[name]
    height, width, step = int(height), int(width), int(step)
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image: zero size ({width}x{height}, encoding {encoding})")
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ImageDecodeError(f"image: step {step} is smaller than width*bytes_per_pixel = {row_bytes} ({encoding})")
    buf = as_uint8_buffer(data)
    if buf.size != step * height:
        raise ImageDecodeError(
            f"image: data has {buf.size} bytes, expected step*height = {step}*{height} = {step * height}")
    # One copy that drops the row padding and detaches the result from the message buffer.
    rows = np.array(buf.reshape(height, step)[:, :row_bytes], order="C")
    pixels = rows.view(dtype.newbyteorder(">" if is_bigendian else "<")).reshape(height, width, channels)
    if pixels.dtype != dtype:
        pixels = pixels.astype(dtype)  # byte swap to host order
    if channels == 1:
        return pixels[..., 0], name
    if to_rgb is not None:  # cv2 swaps channels far faster than a numpy [..., ::-1] copy (docs/bench_ros.md)
        return cv2.cvtColor(pixels, to_rgb), "rgb8"
    return pixels, "rgb8"


def decode_compressed_image(data: Any, fmt: str = "") -> tuple[np.ndarray, str]:
    """Compressed bytes (jpeg / png / anything OpenCV decodes) -> (array, encoding).

    Colour comes out RGB (``"rgb8"``), gray as ``"mono8"`` or, for 16-bit PNG, ``"mono16"``.
    """
    buf = as_uint8_buffer(data)
    if buf.size == 0:
        raise ImageDecodeError(f"compressed image: empty data (format {fmt!r})")
    if "compresseddepth" in str(fmt).lower():
        raise ImageDecodeError(f"compressed image: format {fmt!r} (image_transport compressedDepth) is not supported")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageDecodeError(f"compressed image: cv2.imdecode could not decode {buf.size} bytes (format {fmt!r})")
    if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
        gray = img.reshape(img.shape[0], img.shape[1])
        if gray.dtype == np.uint8:
            return gray, "mono8"
        if gray.dtype == np.uint16:
            return gray, "mono16"
        raise ImageDecodeError(f"compressed image: unsupported gray dtype {gray.dtype}")
    if img.dtype != np.uint8:
        raise ImageDecodeError(f"compressed image: unsupported colour dtype {img.dtype}")
    if img.shape[2] == 3:
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), "rgb8"
    if img.shape[2] == 4:
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB), "rgb8"
    raise ImageDecodeError(f"compressed image: unsupported channel count {img.shape[2]}")
