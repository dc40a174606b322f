"""A 640x480 colour camera at 10 Hz into depth_pose_node, over DDS, for every QoS pairing of its two topics.

The node runs as a user starts it (``config/default.yaml``, the shipped model, ``qos.*: auto``); this
process is the camera: 100 bgr8 frames with their camera_info, image first, at 10 Hz, for each pairing
of image / camera_info publisher reliability, one after the other (new publishers each time, as a
restarted driver with other settings). The node must follow each camera's reliability (its subscriptions,
as the graph reports them), and of the frames that reach it, process every one: none skipped for a
missing camera_info, none dropped. A reliable camera must lose nothing at all. A best-effort camera's
0.9 MB frames lose fragments in the DDS transport before any subscriber sees them (measured with a plain
listener in docs/bench_node.md), so there only "every frame that arrived was processed" can be asked.
A camera that changes its resolution mid-stream loses no frame either (each change: one log line).
"""
from __future__ import annotations

import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.qos import ReliabilityPolicy
from ros_harness import (
    BackgroundSpin,
    node_follows,
    panning_frames,
    play_camera,
    spin_until,
    start_child,
    subscription_reliability,
)
from sensor_msgs.msg import CameraInfo, Image

from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.ros

H, W, FRAMES, RATE_HZ = 480, 640, 100, 10.0
K = np.array([[520.0, 0.0, 320.0], [0.0, 520.0, 240.0], [0.0, 0.0, 1.0]])
REL, BE = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
PAIRINGS = [(REL, REL), (REL, BE), (BE, REL), (BE, BE)]  # (image, camera_info) publisher reliability
COUNTERS = ("received", "processed", "dropped", "skipped")


class _Camera:
    """The camera side: publishers of one QoS pairing, the node's diagnostics totals."""

    def __init__(self, executor, proc) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.executor, self.proc = executor, proc
        self.node = Node("qos_camera", context=executor.context)
        executor.add_node(self.node)
        self.diag: list[dict[str, str]] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics",
                                      lambda m: self.diag.append({kv.key: kv.value for kv in m.status[0].values}),
                                      reliable_qos(100))

    def totals(self) -> dict[str, int]:
        last = self.diag[-1] if self.diag else {}
        return {k: int(last.get(f"total_{k}", 0)) for k in COUNTERS}

    def spin_until(self, condition, timeout: float) -> bool:
        return spin_until(self.executor, condition, timeout, children=[self.proc])

    def play(self, image_rel, info_rel, segments: list) -> dict[str, int]:
        """Publish each ``(frames, K)`` of ``segments`` in turn with a new camera of this QoS pairing once the
        node follows it; the node's counters over the run (after every received frame is accounted for)."""
        qos = {REL: reliable_qos(), BE: sensor_data_qos()}
        image_pub = self.node.create_publisher(Image, "/image", qos[image_rel])
        info_pub = self.node.create_publisher(CameraInfo, "/camera_info", qos[info_rel])

        def followed() -> bool:
            return node_follows(self.node, image_pub) and node_follows(self.node, info_pub)

        assert self.spin_until(followed, 20.0), (
            f"node did not follow the camera's QoS {image_rel.name}/{info_rel.name}: "
            f"{subscription_reliability(self.node, '/image')} / {subscription_reliability(self.node, '/camera_info')}"
            f"\n{self.proc.output()}")
        self.spin_until(lambda: False, 0.5)  # the matched readers are ready on both sides
        before = self.totals()
        with BackgroundSpin(self.executor):
            for frames, K_frames in segments:
                play_camera(image_pub, info_pub, frames, K_frames, RATE_HZ, "bgr8")
            time.sleep(1.0)
        state = {"last": self.totals(), "since": time.monotonic()}

        def settled() -> bool:  # every received frame accounted for, and no change for a second
            now = self.totals()
            if now != state["last"]:
                state.update(last=now, since=time.monotonic())
            done = now["processed"] + now["skipped"] + now["dropped"] >= now["received"]
            return done and time.monotonic() - state["since"] > 1.0

        assert self.spin_until(settled, 30.0), self.proc.output()
        self.node.destroy_publisher(image_pub)
        self.node.destroy_publisher(info_pub)
        after = self.totals()
        return {k: after[k] - before[k] for k in COUNTERS}


def test_vga_colour_at_10hz_every_qos_pairing_nothing_lost_in_the_node(ros_env, executor, tmp_path) -> None:
    args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
            str(REPO_ROOT / "config" / "default.yaml"), "-p", "num_threads:=1", "-p", "diagnostics.period_s:=0.25"]
    frames = panning_frames(FRAMES, H, W)
    with start_child(args, ros_env, tmp_path / "node.log") as proc:
        camera = _Camera(executor, proc)
        assert camera.spin_until(lambda: bool(camera.diag), 120.0), proc.output()
        results = [((image_rel.name, info_rel.name), camera.play(image_rel, info_rel, [(frames, K)]))
                   for image_rel, info_rel in PAIRINGS]
        log = proc.output()
    summary = "\n".join(f"{pairing}: {delta}" for pairing, delta in results)
    print(summary)
    for (image_rel, _), delta in results:
        assert delta["skipped"] == 0 and delta["dropped"] == 0, f"frames lost in the node:\n{summary}\n{log}"
        assert delta["processed"] == delta["received"] > 0, summary
        if image_rel == "RELIABLE":
            assert delta["received"] == FRAMES, f"a reliable camera lost frames:\n{summary}"
    assert "is now reliable" in log  # the node said when it followed a reliable camera


def test_a_camera_changing_resolution_mid_stream_loses_no_frame(ros_env, executor, tmp_path) -> None:
    """640x480 -> 320x240 -> 640x480 on one reliable camera: every frame processed, each change one log line."""
    args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
            str(REPO_ROOT / "config" / "default.yaml"), "-p", "num_threads:=1", "-p", "diagnostics.period_s:=0.25"]
    large = panning_frames(15, H, W)
    small = [np.ascontiguousarray(f[::2, ::2]) for f in panning_frames(15, H, W, step=4)]
    K_small = K.copy()
    K_small[:2] *= 0.5
    K_small[:2, 2] -= 0.25  # pixel centres of a 2x decimation: c' = (c + 0.5) / 2 - 0.5
    with start_child(args, ros_env, tmp_path / "node.log") as proc:
        camera = _Camera(executor, proc)
        assert camera.spin_until(lambda: bool(camera.diag), 120.0), proc.output()
        delta = camera.play(REL, REL, [(large, K), (small, K_small), (large, K)])
        log = proc.output()
    assert delta == {"received": 45, "processed": 45, "dropped": 0, "skipped": 0}, f"{delta}\n{log}"
    assert log.count("image size changed from 640x480 to 320x240") == 1, log
    assert log.count("image size changed from 320x240 to 640x480") == 1, log
