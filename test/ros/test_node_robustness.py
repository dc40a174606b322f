"""depth_pose_node in a child process fed bad input by this process: it skips, says why, and keeps going.

Each bad message (unsupported encoding, wrong buffer size, zero size, a depth image, an image too small
for the network, NaN in the camera_info K, camera_info of another size, no camera_info at all; garbage
and empty CompressedImage) must be counted as skipped under its reason in ``/diagnostics`` and logged,
and the next good frame must still produce depth and odometry. The good frames cycle through every
supported encoding. A camera_info with an unknown distortion model is used without undistortion after
one warning. The ``~/reset`` service and a backward stamp jump must both restart the odometry (one
warning per jump). ``device: cuda`` without CUDA stops the node with one error line.
"""
from __future__ import annotations

import array
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rclpy.node import Node
from ros_harness import node_follows, spin_until, start_child
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_pose_ros.geometry.camera import scale_intrinsics
from depth_pose_ros.nets.checkpoint import save_model
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.ros.convert import (
    camera_info_to_K,
    image_msg_to_numpy,
    make_camera_info,
    numpy_to_compressed_msg,
    numpy_to_image_msg,
    pose_msg_to_matrix,
    stamp_to_ns,
)
from depth_pose_ros.ros.qos import reliable_qos
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.ros

H, W = 120, 360
K = np.array([[300.0, 0.0, 180.0], [0.0, 300.0, 60.0], [0.0, 0.0, 1.0]])
K_NET = scale_intrinsics(K, 192 / W, 64 / H)  # pixel centres at integers: c' = (c + 0.5) s - 0.5
CAMERA_ENCODINGS_TEXT = "rgb8, bgr8, rgba8, bgra8, mono8, mono16, 8UC1, 8UC3, 8UC4, 16UC1"
SCENE = (np.random.default_rng(0).random((H, W + 200, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "seeded.safetensors"
    save_model(path, build_model(NetConfig.from_dict({"encoder": {"width": 0.25}})))
    return path


def _rgb(i: int) -> np.ndarray:
    """Frame i of a camera panning right over a random texture (2 px per frame)."""
    return np.ascontiguousarray(SCENE[:, 2 * i: 2 * i + W])


def _good_image(i: int, stamp: float) -> Image:
    """Frame i in one of the six supported encodings (cycled)."""
    rgb = _rgb(i)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    kind = ["rgb8", "bgr8", "mono8", "mono16", "rgba8", "bgra8"][i % 6]
    array_ = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": gray, "mono16": gray.astype(np.uint16) * 257,
              "rgba8": np.dstack([rgb, np.full((H, W), 255, np.uint8)]),
              "bgra8": np.dstack([rgb[..., ::-1], np.full((H, W), 255, np.uint8)])}[kind]
    return numpy_to_image_msg(np.ascontiguousarray(array_), kind, stamp, "test_cam")


class _Harness:
    """Publishers into the node, subscriptions to its outputs, and waits on its diagnostics."""

    def __init__(self, executor, node_proc, compressed: bool = False) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry, Path

        self.executor, self.proc = executor, node_proc
        self.node = Node("robustness_tester", context=executor.context)
        executor.add_node(self.node)
        kind, topic = (CompressedImage, "/image/compressed") if compressed else (Image, "/image")
        self.image_pub = self.node.create_publisher(kind, topic, reliable_qos())
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera_info", reliable_qos())
        self.odom, self.depth, self.depth_info, self.path, self.diag = [], [], [], [], []
        self.node.create_subscription(Odometry, "/odom", self.odom.append, reliable_qos(100))
        self.node.create_subscription(Image, "/depth", self.depth.append, reliable_qos(100))
        self.node.create_subscription(CameraInfo, "/depth/camera_info", self.depth_info.append, reliable_qos(100))
        self.node.create_subscription(Path, "/path", self.path.append, reliable_qos(100))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.diag.append, reliable_qos(100))

    def wait(self, condition, timeout: float = 30.0, what: str = "") -> None:
        ok = spin_until(self.executor, condition, timeout, children=[self.proc])
        assert ok, f"timed out waiting for {what}; node output:\n{self.proc.output()}"

    def odom_stamps(self) -> list[int]:
        return [stamp_to_ns(m.header.stamp) for m in self.odom]

    def diag_values(self) -> dict[str, str]:
        return {kv.key: kv.value for kv in self.diag[-1].status[0].values} if self.diag else {}

    def start(self, first_message) -> None:
        """Wait for the node, then resend a first good frame until it answers (discovery may eat it)."""
        self.wait(lambda: self.diag and node_follows(self.node, self.image_pub)
                  and node_follows(self.node, self.info_pub), 90.0, "the node (subscribed like the camera)")
        for attempt in range(10):
            msg, info = first_message(attempt)
            self.image_pub.publish(msg)
            if info is not None:
                self.info_pub.publish(info)
            if spin_until(self.executor, lambda: len(self.odom) > 0, 3.0, children=[self.proc]):
                return
        raise AssertionError(f"node never answered; output:\n{self.proc.output()}")

    def send_good(self, msg, info=None) -> None:
        stamp = stamp_to_ns(msg.header.stamp)
        if info is not None:
            self.info_pub.publish(info)
        self.image_pub.publish(msg)
        self.wait(lambda: stamp in self.odom_stamps() and len(self.depth) == len(self.path) == len(self.odom),
                  what=f"outputs @ {stamp}")

    def send_bad(self, msg, info=None, reason: str = "") -> None:
        """Publish, then wait until the diagnostics count one more skip of ``reason``."""
        before = int(self.diag_values().get(f"skipped_{reason}", 0))
        if info is not None:
            self.info_pub.publish(info)
        if msg is not None:
            self.image_pub.publish(msg)
        self.wait(lambda: int(self.diag_values().get(f"skipped_{reason}", 0)) > before, what=f"skip '{reason}'")


def _node(env, tmp_path: Path, checkpoint: Path, *params: str):
    args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
            str(REPO_ROOT / "config" / "default.yaml"), "-p", f"checkpoint:={checkpoint}",
            "-p", "input.height:=64", "-p", "input.width:=192", "-p", "num_threads:=1",
            "-p", "diagnostics.period_s:=0.2", "-p", "cloud.stride:=8", "-p", "path.period_s:=0.0",
            "-p", "qos_overrides./points.publisher.depth:=2"]  # a valid ROS 2 QoS override is accepted
    for p in params:
        args += ["-p", p]
    return start_child(args, env, tmp_path / "node.log")


def _raw(encoding: str, height: int, width: int, step: int, data: bytes, stamp: float) -> Image:
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=0)
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), round((stamp % 1) * 1e9)
    msg.data = array.array("B", data)
    return msg


def test_bad_raw_input_is_skipped_and_node_keeps_publishing_reset_and_time_jump(
        ros_env, executor, tmp_path, checkpoint):
    proc = _node(ros_env, tmp_path, checkpoint)
    try:
        h = _Harness(executor, proc)
        h.start(lambda a: (_good_image(0, 90.0 + a), make_camera_info(K, W, H, 90.0 + a, "test_cam")))
        t = [100.0]

        def stamp() -> float:
            t[0] += 0.1
            return t[0]

        def good(i: int) -> None:
            s = stamp()
            h.send_good(_good_image(i, s), make_camera_info(K, W, H, s, "test_cam"))

        good(1)
        bad_cases = [  # (image, camera_info, reason, text expected in the log)
            (lambda s: _raw("yuv422", H, W, 2 * W, bytes(2 * W * H), s), True, "bad_image",
             f"unsupported encoding 'yuv422'; camera encodings: {CAMERA_ENCODINGS_TEXT}"),
            (lambda s: _raw("rgb8", H, W, 3 * W, bytes(3 * W * H - 7), s), True, "bad_image",
             "expected step*height"),
            (lambda s: _raw("rgb8", 0, 0, 0, b"", s), True, "bad_image", "zero size"),
            (lambda s: numpy_to_image_msg(np.ones((H, W), np.float32), "32FC1", s, "test_cam"), True, "bad_image",
             f"encoding 32FC1 is not a camera image; camera encodings: {CAMERA_ENCODINGS_TEXT}"),
            (lambda s: numpy_to_image_msg(np.zeros((1, 1, 3), np.uint8), "rgb8", s, "test_cam"), "1x1", "bad_image",
             "image of 1x1 is too small: at least 32x32 pixels are needed"),
            (lambda s: _good_image(2, s), "nan", "bad_camera_info", "not a valid pinhole matrix"),
            (lambda s: _good_image(3, s), "size", "camera_info_size", "camera_info is for 640x480"),
            (lambda s: _good_image(4, s), None, "no_camera_info", "no camera_info within 0.01 s"),
        ]
        for i, (make, info_kind, reason, text) in enumerate(bad_cases):
            s = stamp()
            info = None
            if info_kind is True:
                info = make_camera_info(K, W, H, s, "test_cam")
            elif info_kind == "nan":
                info = make_camera_info(K, W, H, s, "test_cam")
                info.k = [float("nan")] + list(info.k)[1:]
            elif info_kind == "size":
                info = make_camera_info(K, 640, 480, s, "test_cam")
            elif info_kind == "1x1":
                info = make_camera_info(K, 1, 1, s, "test_cam")
            h.send_bad(make(s), info, reason)
            assert text in proc.output(), f"{text!r} not logged; output:\n{proc.output()}"
            good(5 + i)  # and the node still works
        skipped = {k: int(v) for k, v in h.diag_values().items() if k.startswith("skipped_")}
        assert skipped == {"skipped_bad_image": 5, "skipped_bad_camera_info": 1, "skipped_camera_info_size": 1,
                           "skipped_no_camera_info": 1}

        # an unknown distortion model: one warning, the frames are used as they are
        for i in range(2):
            s = stamp()
            info = make_camera_info(K, W, H, s, "test_cam", distortion=[0.1, 0.01, 0.0, 0.0], distortion_model="weird")
            h.send_good(_good_image(13 + i, s), info)
        assert proc.output().count("distortion model 'weird' is not supported") == 1, proc.output()

        # every published number is finite; depth registered to the camera image: its size and its K
        for m in h.odom:
            assert np.isfinite(pose_msg_to_matrix(m.pose.pose)).all() and np.isfinite(m.pose.covariance).all()
        for m in h.depth:
            d, _ = image_msg_to_numpy(m)
            assert d.shape == (H, W) and np.isfinite(d).all() and (d >= 0).all()
        np.testing.assert_allclose(camera_info_to_K(h.depth_info[-1]), K, rtol=1e-12)
        assert (h.depth_info[-1].width, h.depth_info[-1].height) == (W, H)
        n_good = len(h.odom)
        assert len(h.path[-1].poses) == n_good  # one trajectory since the start

        # ~/reset: success, then the next frame starts a new trajectory at the identity
        from std_srvs.srv import Trigger

        client = h.node.create_client(Trigger, "/depth_pose_node/reset")
        h.wait(client.service_is_ready, what="reset service")
        future = client.call_async(Trigger.Request())
        h.wait(future.done, what="reset response")
        assert future.result().success
        good(20)
        np.testing.assert_allclose(pose_msg_to_matrix(h.odom[-1].pose.pose), np.eye(4), atol=1e-12)
        assert len(h.path[-1].poses) == 1
        good(21)
        assert len(h.path[-1].poses) == 2

        # a backward stamp jump (bag loop): one warning, a new trajectory
        t[0] = 50.0
        good(22)
        np.testing.assert_allclose(pose_msg_to_matrix(h.odom[-1].pose.pose), np.eye(4), atol=1e-12)
        assert len(h.path[-1].poses) == 1
        good(23)
        assert proc.output().count("jumped back") == 1
    finally:
        rc = proc.stop()
    assert rc == 0, proc.output()


def test_compressed_input_intrinsics_from_parameters_and_stereo_scale(ros_env, executor, tmp_path, checkpoint):
    proc = _node(ros_env, tmp_path, checkpoint, "topics.use_compressed:=true", "output.size:=network",
                 "intrinsics.fx:=300.0",
                 "intrinsics.fy:=300.0", "intrinsics.cx:=180.0", "intrinsics.cy:=60.0",
                 "scale.source:=stereo", "scale.stereo_baseline_m:=0.5")
    try:
        h = _Harness(executor, proc, compressed=True)
        right_pub = h.node.create_publisher(Image, "/stereo/image", reliable_qos())

        def right(i: int, stamp: float) -> Image:
            """The right camera of a rectified pair: the scene 8 px further left (disparity 8 px)."""
            gray = cv2.cvtColor(np.ascontiguousarray(SCENE[:, 2 * i + 8: 2 * i + 8 + W]), cv2.COLOR_RGB2GRAY)
            return numpy_to_image_msg(gray, "mono8", stamp, "cam_right")

        def first(attempt: int):
            right_pub.publish(right(0, 90.0 + attempt))
            return numpy_to_compressed_msg(_rgb(0), 90.0 + attempt, "cam", format="jpeg"), None

        h.start(first)
        for i, (stamp, fmt) in enumerate([(100.1, "jpeg"), (100.2, "png")], start=1):
            right_pub.publish(right(i, stamp))
            image = _rgb(i) if fmt == "jpeg" else cv2.cvtColor(_rgb(i), cv2.COLOR_RGB2GRAY)
            h.send_good(numpy_to_compressed_msg(image, stamp, "cam", format=fmt))
        garbage = numpy_to_compressed_msg(_rgb(3), 100.3, "cam", format="jpeg")
        garbage.data = array.array("B", np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
        right_pub.publish(right(3, 100.3))
        h.send_bad(garbage, reason="bad_image")
        assert "could not decode 5000 bytes" in proc.output()
        empty = numpy_to_compressed_msg(_rgb(4), 100.4, "cam", format="jpeg")
        empty.data = array.array("B")
        right_pub.publish(right(4, 100.4))
        h.send_bad(empty, reason="bad_image")
        h.send_bad(numpy_to_compressed_msg(_rgb(5), 100.5, "cam", format="jpeg"), reason="no_stereo")  # no right
        assert "no right image on /stereo/image" in proc.output()
        right_pub.publish(right(6, 100.6))
        h.send_good(numpy_to_compressed_msg(_rgb(6), 100.6, "cam", format="png"))
        # K from the parameters (no camera_info was ever sent), at the network size (output.size: network)
        np.testing.assert_allclose(camera_info_to_K(h.depth_info[-1]), K_NET, rtol=1e-12)
        assert (h.depth_info[-1].width, h.depth_info[-1].height) == (192, 64)
        assert all(image_msg_to_numpy(m)[0].shape == (64, 192) for m in h.depth)
        assert {m.header.frame_id for m in h.depth} == {"cam"}
        h.wait(lambda: h.diag_values().get("total_processed") == str(len(h.odom)), what="diagnostics")
        values = h.diag_values()
        assert values["total_skipped"] == "3"
        assert abs(float(values["depth_factor"]) - 1.0) > 1e-3  # the stereo pair set a metric scale
    finally:
        rc = proc.stop()
    assert rc == 0, proc.output()


def test_node_exits_with_a_clear_error_on_bad_parameters(ros_env, tmp_path):
    """Unknown names and a missing checkpoint stop the node at start (value checks: test_node_units)."""
    cases = [
        (["input.heigth:=96"], "unknown parameter(s) for depth_pose_node: input.heigth"),
        ([f"checkpoint:={tmp_path / 'missing.safetensors'}"], "checkpoint: file not found"),
        # a QoS override must name one of the node's topics (the ROS 2 way); a typo is an unknown name
        (["qos_overrides./imag.subscription.reliability:=reliable"],
         "unknown QoS override(s) qos_overrides./imag.subscription.reliability"),
    ]
    if not torch.cuda.is_available():
        cases.append((["device:=cuda"], "depth_pose_node: error: device 'cuda': CUDA is not available"))
    children = []
    for i, (params, _) in enumerate(cases):
        args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
                str(REPO_ROOT / "config" / "default.yaml")]
        for p in params:
            args += ["-p", p]
        children.append(start_child(args, ros_env, tmp_path / f"bad{i}.log"))
    for child, (_, message) in zip(children, cases):
        assert child.wait(timeout=60) == 2, child.output()
        assert message in child.output() and "Traceback" not in child.output(), child.output()
