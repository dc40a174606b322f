"""The shared raw/compressed image decoder (used by the ROS layer and the bag reader)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_pose_ros.utils.image_codec import ImageDecodeError, decode_compressed_image, decode_raw_image


def test_padded_big_endian_mono16():
    img = np.arange(12, dtype=np.uint16).reshape(3, 4) * 1000
    rows = img.astype(">u2").view(np.uint8).reshape(3, 8)
    padded = np.concatenate([rows, np.zeros((3, 4), np.uint8)], axis=1)  # step 12 > 8
    out, enc = decode_raw_image("mono16", 3, 4, 12, True, padded.tobytes())
    assert enc == "mono16" and out.dtype == np.uint16
    np.testing.assert_array_equal(out, img)


def test_bgr_and_bgra_come_out_rgb():
    rgb = np.random.default_rng(0).integers(0, 255, (2, 3, 3), dtype=np.uint8)
    out, enc = decode_raw_image("bgr8", 2, 3, 9, False, rgb[..., ::-1].copy().tobytes())
    assert enc == "rgb8"
    np.testing.assert_array_equal(out, rgb)
    bgra = np.concatenate([rgb[..., ::-1], np.full((2, 3, 1), 7, np.uint8)], axis=2)
    out, _ = decode_raw_image("bgra8", 2, 3, 12, False, bgra.tobytes())
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    "args, match",
    [
        (("yuv422", 2, 2, 4, False, bytes(8)), "unsupported encoding"),
        (("mono8", 0, 2, 2, False, b""), "zero size"),
        (("rgb8", 2, 2, 5, False, bytes(10)), "step 5 is smaller"),
        (("mono8", 2, 2, 2, False, bytes(3)), "expected step\\*height"),
    ],
)
def test_bad_raw_images(args, match):
    with pytest.raises(ImageDecodeError, match=match):
        decode_raw_image(*args)


def test_compressed_round_trip_and_garbage():
    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    ok, png = cv2.imencode(".png", rgb[..., ::-1])
    out, enc = decode_compressed_image(png.tobytes(), "png")
    assert enc == "rgb8"
    np.testing.assert_array_equal(out, rgb)
    with pytest.raises(ImageDecodeError, match="could not decode"):
        decode_compressed_image(b"\x00garbage\xff" * 5, "jpeg")
    with pytest.raises(ImageDecodeError, match="empty"):
        decode_compressed_image(b"", "jpeg")
