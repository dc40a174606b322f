"""Bag source: rosbag2 (sqlite3, mcap) and ROS 1 bags written here with the rosbags writers."""
from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from depth_pose_ros.data.rosbag_io import image_msg_to_numpy
from depth_pose_ros.data.rosbag_source import RosbagSource
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.distortion import Distortion

TS2 = get_typestore(Stores.ROS2_JAZZY)
TS1 = get_typestore(Stores.ROS1_NOETIC)
H, W = 4, 6
K1 = np.array([[100.0, 0, 3], [0, 101, 2], [0, 0, 1]])
K2 = np.array([[200.0, 0, 3], [0, 201, 2], [0, 0, 1]])


def rgb_pattern(i: int) -> np.ndarray:
    """HxWx3 RGB test image: red = 10 i, green = column * 40, blue = row * 60."""
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 10 * i
    img[..., 1] = np.arange(W)[None, :] * 40
    img[..., 2] = np.arange(H)[:, None] * 60
    return img


class Msgs:
    """Message builders for one typestore (ROS 2 jazzy or ROS 1 noetic field names)."""

    def __init__(self, ts: Any, ros1: bool) -> None:
        self.ts, self.ros1 = ts, ros1
        self.t = ts.types

    def header(self, stamp: float) -> Any:
        sec = int(np.floor(stamp))
        st = self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=int(round((stamp - sec) * 1e9)))
        if self.ros1:
            return self.t["std_msgs/msg/Header"](seq=0, stamp=st, frame_id="cam")
        return self.t["std_msgs/msg/Header"](stamp=st, frame_id="cam")

    def image(self, stamp: float, rgb: np.ndarray, encoding: str = "rgb8", pad: int = 0,
              bigendian: bool = False) -> Any:
        arr = {
            "rgb8": lambda: rgb,
            "bgr8": lambda: rgb[..., ::-1],
            "rgba8": lambda: np.dstack([rgb, np.full((H, W), 255, np.uint8)]),
            "bgra8": lambda: np.dstack([rgb[..., ::-1], np.full((H, W), 7, np.uint8)]),
            "mono8": lambda: rgb[..., 1],
            "mono16": lambda: rgb[..., 1].astype(np.uint16) * 257,
        }[encoding]()
        arr = np.ascontiguousarray(arr)
        if encoding == "mono16":
            arr = arr.astype(">u2" if bigendian else "<u2")
        rows = arr.reshape(H, -1).view(np.uint8)
        step = rows.shape[1] + pad
        data = np.zeros((H, step), np.uint8)
        data[:, : rows.shape[1]] = rows
        return self.t["sensor_msgs/msg/Image"](header=self.header(stamp), height=H, width=W, encoding=encoding,
                                               is_bigendian=int(bigendian), step=step, data=data.ravel())

    def compressed(self, stamp: float, rgb: np.ndarray, fmt: str = "png") -> Any:
        ok, buf = cv2.imencode(f".{fmt}", rgb[..., ::-1])
        assert ok
        return self.t["sensor_msgs/msg/CompressedImage"](
            header=self.header(stamp), format=f"rgb8; {fmt} compressed bgr8", data=buf.ravel())

    def info(self, stamp: float, K: np.ndarray, width: int = W, height: int = H, d: Any = None,
             model: str = "plumb_bob") -> Any:
        roi = self.t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        d = np.zeros(5) if d is None else np.asarray(d, dtype=float)
        arrays = {"d": d, "k": K.ravel().astype(float), "r": np.eye(3).ravel(), "p": np.zeros(12)}
        if self.ros1:
            arrays = {key.upper(): v for key, v in arrays.items()}
        return self.t["sensor_msgs/msg/CameraInfo"](header=self.header(stamp), height=height, width=width,
                                                    distortion_model=model, binning_x=0, binning_y=0,
                                                    roi=roi, **arrays)


def write_bag(path: Path, kind: str, fill: Callable[[Callable[[str, str, float, Any], None], Msgs], None]) -> Path:
    """Write a bag of ``kind`` (sqlite3 | mcap | ros1); ``fill(write, msgs)`` adds the messages."""
    ros1 = kind == "ros1"
    ts = TS1 if ros1 else TS2
    msgs = Msgs(ts, ros1)
    conns: dict[str, Any] = {}
    if ros1:
        writer: Any = Writer1(path)
    else:
        plugin = StoragePlugin.SQLITE3 if kind == "sqlite3" else StoragePlugin.MCAP
        writer = Writer2(path, version=9, storage_plugin=plugin)
    with writer:
        def write(topic: str, msgtype: str, log_time: float, msg: Any) -> None:
            if topic not in conns:
                conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
            raw = ts.serialize_ros1(msg, msgtype) if ros1 else ts.serialize_cdr(msg, msgtype)
            writer.write(conns[topic], int(round(log_time * 1e9)), raw)

        fill(write, msgs)
    return path


IMG, COMP, INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo"


def basic_fill(write: Callable, m: Msgs) -> None:
    """6 rgb8 frames at 10 Hz from t=100 s; CameraInfo K1 with each frame, K2 from frame 3 on."""
    for i in range(6):
        t = 100.0 + 0.1 * i
        write("/cam/image_raw", IMG, t + 0.01, m.image(t, rgb_pattern(i)))
        write("/cam/camera_info", INFO, t + 0.01, m.info(t, K1 if i < 3 else K2))


def bag_path(tmp_path: Path, kind: str) -> Path:
    return tmp_path / ("b.bag" if kind == "ros1" else f"b_{kind}")


@pytest.mark.parametrize("kind", ["sqlite3", "mcap", "ros1"])
def test_storage_kinds_roundtrip(tmp_path: Path, kind: str) -> None:
    path = write_bag(bag_path(tmp_path, kind), kind, basic_fill)
    src = open_source(path)
    assert isinstance(src, RosbagSource)
    assert len(src) == 6 and src.image_topic == "/cam/image_raw" and src.info_topic == "/cam/camera_info"
    assert src.fps == pytest.approx(10.0)
    np.testing.assert_allclose(src.stamps(), 100.0 + 0.1 * np.arange(6), atol=1e-9)
    for i in [4, 0, 5, 2]:  # random access
        f = src[i]
        np.testing.assert_array_equal(f.image, rgb_pattern(i))
        assert f.stamp == pytest.approx(100.0 + 0.1 * i, abs=1e-9) and f.index == i
        np.testing.assert_allclose(f.K, K1 if i < 3 else K2)
    assert [int(f.image[0, 0, 0]) for f in src] == [0, 10, 20, 30, 40, 50]
    src.close()
    if kind != "ros1":  # the storage file alone (.db3 / .mcap) opens too
        (storage,) = [p for p in path.iterdir() if p.suffix in (".db3", ".mcap")]
        assert len(open_source(storage)) == 6


def test_encodings_and_compressed(tmp_path: Path) -> None:
    def fill(write: Callable, m: Msgs) -> None:
        for i in range(3):
            t = 10.0 + i / 30
            rgb = rgb_pattern(i)
            for enc in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16"):
                write(f"/{enc}", IMG, t, m.image(t, rgb, enc, pad=3 if enc == "bgr8" else 0))
            write("/mono16_be", IMG, t, m.image(t, rgb, "mono16", bigendian=True))
            write("/png/compressed", COMP, t, m.compressed(t, rgb, "png"))
            write("/jpg/compressed", COMP, t, m.compressed(t, rgb, "jpg"))
        write("/camera_info", INFO, 9.0, m.info(9.0, K1))  # published once, before the images

    path = write_bag(tmp_path / "enc", "mcap", fill)
    with pytest.raises(ValueError, match="several image topics"):
        RosbagSource(path)
    for topic in ("/rgb8", "/bgr8", "/rgba8", "/bgra8", "/png/compressed"):
        src = RosbagSource(path, image_topic=topic)
        for i in range(3):
            np.testing.assert_array_equal(src[i].image, rgb_pattern(i), err_msg=topic)
            np.testing.assert_allclose(src[i].K, K1)  # the single CameraInfo is reused
    for topic in ("/mono8", "/mono16", "/mono16_be"):
        img = RosbagSource(path, image_topic=topic)[1].image
        assert img.shape == (H, W)
        np.testing.assert_array_equal(img, rgb_pattern(1)[..., 1], err_msg=topic)
    jpg = RosbagSource(path, image_topic="/jpg/compressed", gray=False)[2].image
    assert jpg.shape == (H, W, 3) and np.abs(jpg.astype(int) - rgb_pattern(2)).mean() < 12
    gray = RosbagSource(path, image_topic="/rgb8", gray=True)[0].image
    assert gray.shape == (H, W)


def test_camera_info_pairing_and_stamp_order(tmp_path: Path) -> None:
    def fill(write: Callable, m: Msgs) -> None:
        # images arrive out of stamp order; CameraInfo only at 0.0 (K1) and 0.42 (K2)
        for log_t, stamp in [(11.0, 10.2), (11.1, 10.1), (11.2, 10.3), (11.3, 10.4), (11.4, 10.5), (11.5, 10.0)]:
            write("/camera/image", IMG, log_t, m.image(stamp, rgb_pattern(int(round(stamp * 10)) - 100)))
        write("/camera/info", INFO, 10.9, m.info(10.0, K1))
        write("/camera/info", INFO, 11.6, m.info(10.42, K2))
        write("/other/info", INFO, 11.6, m.info(10.42, np.eye(3)))

    path = write_bag(tmp_path / "pair", "sqlite3", fill)
    src = RosbagSource(path)  # two CameraInfo topics: the one beside /camera/image is chosen
    assert src.info_topic == "/camera/info"
    np.testing.assert_allclose(src.stamps(), [10.0, 10.1, 10.2, 10.3, 10.4, 10.5], atol=1e-9)
    assert [int(f.image[0, 0, 0]) for f in src] == [0, 10, 20, 30, 40, 50]
    Ks = [f.K[0, 0] for f in src]
    # 10.0: exact K1; 10.1-10.3: no info within 0.05 s -> latest before (K1); 10.4: K2 (10.42) is
    # within 0.05 s; 10.5: latest before is K2
    assert Ks == [100.0, 100.0, 100.0, 100.0, 200.0, 200.0]
    assert RosbagSource(path, info_topic="/other/info")[0].K[0, 0] == 1.0


@pytest.mark.parametrize("kind", ["sqlite3", "ros1"])
def test_frames_carry_the_camera_info_distortion(tmp_path: Path, kind: str) -> None:
    d1, d2 = [0.1, -0.05, 0.001, 0.002, 0.01], [0.2, 0, 0, 0, 0, 0.3, 0, 0]

    def fill(write: Callable, m: Msgs) -> None:
        for i in range(4):
            t = 100.0 + 0.1 * i
            write("/cam/image_raw", IMG, t, m.image(t, rgb_pattern(i)))
            info = m.info(t, K1, d=d1) if i < 2 else m.info(t, K2, d=d2, model="rational_polynomial")
            write("/cam/camera_info", INFO, t, info)

    path = write_bag(bag_path(tmp_path, kind), kind, fill)
    src = open_source(path)
    assert src[0].distortion == Distortion("plumb_bob", tuple(d1))
    assert src[3].distortion == Distortion("rational_polynomial", tuple(float(v) for v in d2))
    np.testing.assert_allclose(src[3].K, K2)
    assert pickle.loads(pickle.dumps(src))[1].distortion == src[1].distortion
    assert open_source(path, K=K1)[0].distortion is None  # a K override is a pinhole camera
    src.close()


def test_camera_info_distortion_unknown_model_and_bad_coefficients(tmp_path: Path) -> None:
    def fill(write: Callable, m: Msgs) -> None:
        for i in range(3):
            t = 100.0 + 0.1 * i
            write("/cam/image_raw", IMG, t, m.image(t, rgb_pattern(i)))
        write("/cam/camera_info", INFO, 100.0, m.info(100.0, K1, d=[0.1, 0, 0, 0], model="mystery"))
        write("/cam/camera_info", INFO, 100.2, m.info(100.2, K2, d=[np.inf, 0, 0, 0, 0]))

    path = write_bag(tmp_path / "b_sqlite3", "sqlite3", fill)
    with pytest.warns(UserWarning) as record:
        src = open_source(path)
    text = " ".join(str(w.message) for w in record)
    assert "mystery" in text and "skipped" in text
    # the unknown model: images used as they are (as the node does); the invalid one is not used at all
    assert [f.distortion for f in src] == [None] * 3
    np.testing.assert_allclose(src[2].K, K1)
    src.close()


def test_duplicate_receive_times_and_pickle(tmp_path: Path) -> None:
    def fill(write: Callable, m: Msgs) -> None:
        for i in range(4):  # two images share each receive time
            write("/img", IMG, 5.0 + (i // 2), m.image(5.0 + 0.1 * i, rgb_pattern(i)))

    path = write_bag(tmp_path / "dup.bag", "ros1", fill)
    src = RosbagSource(path, K=(50, 50, 3, 2))  # no CameraInfo: K given
    assert [int(src[i].image[0, 0, 0]) for i in (3, 1, 2, 0)] == [30, 10, 20, 0]
    np.testing.assert_allclose(src[0].K, [[50, 0, 3], [0, 50, 2], [0, 0, 1]])
    clone = pickle.loads(pickle.dumps(src))  # what a DataLoader worker gets
    np.testing.assert_array_equal(clone[3].image, rgb_pattern(3))


def test_missing_camera_info_and_bad_topics(tmp_path: Path) -> None:
    def fill(write: Callable, m: Msgs) -> None:
        write("/img", IMG, 1.0, m.image(1.0, rgb_pattern(0)))
        write("/depth/image", IMG, 1.0, m.image(1.0, rgb_pattern(0), "mono16"))
        write("/zero_info", INFO, 1.0, m.info(1.0, np.zeros((3, 3))))

    path = write_bag(tmp_path / "noinfo", "mcap", fill)
    with pytest.raises(ValueError, match=r"noinfo.*K=") as err:
        RosbagSource(path)  # depth topic skipped; the CameraInfo is uncalibrated (all zeros)
    assert "no calibrated CameraInfo" in str(err.value)
    assert RosbagSource(path, K=K1).image_topic == "/img"
    with pytest.raises(ValueError, match="no topic '/nope'"):
        RosbagSource(path, image_topic="/nope", K=K1)
    with pytest.raises(ValueError, match="is sensor_msgs/msg/CameraInfo"):
        RosbagSource(path, image_topic="/zero_info", K=K1)

    def fill_mismatch(write: Callable, m: Msgs) -> None:
        write("/img", IMG, 1.0, m.image(1.0, rgb_pattern(0)))
        write("/info", INFO, 1.0, m.info(1.0, K1, width=640, height=480))

    src = RosbagSource(write_bag(tmp_path / "mismatch", "sqlite3", fill_mismatch))
    with pytest.raises(ValueError, match="640x480"):
        src[0]


@pytest.mark.parametrize("name", ["garbage.mcap", "garbage.db3", "garbage.bag"])
def test_garbage_files_name_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a bag" * 50)
    with pytest.raises(ValueError, match=name):
        open_source(path)


@pytest.mark.parametrize("kind", ["mcap", "ros1", "sqlite3"])
def test_truncated_bags_name_the_file(tmp_path: Path, kind: str) -> None:
    path = write_bag(bag_path(tmp_path, kind), kind, basic_fill)
    storage = path if kind == "ros1" else next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=path.name):  # the bag (directory or file) is named
        src = RosbagSource(path)
        for _ in src:  # a reader that indexes lazily must still fail with the name
            pass


def test_image_msg_rejects_bad_messages() -> None:
    m = Msgs(TS2, ros1=False)
    msg = m.image(0.0, rgb_pattern(0))
    msg.encoding = "bayer_rggb8"
    with pytest.raises(ValueError, match="bayer_rggb8"):
        image_msg_to_numpy(msg)
    msg = m.image(0.0, rgb_pattern(0))
    msg.data = msg.data[:10]
    with pytest.raises(ValueError, match=r"expected step\*height"):
        image_msg_to_numpy(msg)
