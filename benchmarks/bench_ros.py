"""Measurements of the ROS layer (numbers go to docs/bench_ros.md with the command that made them).

``python benchmarks/bench_ros.py convert``  -- message <-> numpy conversion times (KITTI sizes)
``python benchmarks/bench_ros.py record --frames 300 --rate 30 --qos reliable --storage mcap``
    -- bag_recorder in a child process records KITTI 06 frames published from this process; reports
    frames recorded, receive latency (bag receive time - publish time, same host clock) and bag size.
``python benchmarks/bench_ros.py play --frames 150 --rate 30``
    -- bag_player plays a bag of KITTI frames; reports how far arrivals are from the bag's schedule.

Each DDS run uses its own random domain, localhost discovery and a temporary directory.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from depth_pose_ros.utils.paths import data_root

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "ros"))  # ros_harness


def _median_ms(fn: Callable[[], object], repeats: int = 50) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _kitti_gray(count: int) -> list[np.ndarray]:
    seq = data_root() / "kitti_odometry" / "sequences" / "06" / "image_0"
    frames = [cv2.imread(str(seq / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(51)]
    if any(f is None for f in frames):
        raise FileNotFoundError(f"KITTI odometry 06 frames not found under {seq}")
    return [frames[i % len(frames)] for i in range(count)]


def bench_convert() -> None:
    """Median time of each conversion on KITTI-sized data."""
    from depth_pose_ros.ros.convert import (
        cloud_msg_to_numpy,
        compressed_msg_to_numpy,
        depth_to_msg,
        image_msg_to_numpy,
        numpy_to_compressed_msg,
        numpy_to_image_msg,
        points_to_cloud_msg,
    )

    path = data_root() / "kitti_flow_2015" / "training" / "image_2" / "000000_10.png"
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise FileNotFoundError(f"cannot read {path}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    gray = _kitti_gray(1)[0]
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(0)
    depth = rng.uniform(1, 80, (h, w)).astype(np.float32)
    xyz = rng.normal(size=(122_880, 3)).astype(np.float32)
    colours = rng.integers(0, 256, (122_880, 3), dtype=np.uint8)
    msgs = {
        "rgb8": numpy_to_image_msg(rgb, "rgb8"),
        "bgr8": numpy_to_image_msg(bgr, "bgr8"),
        "mono8": numpy_to_image_msg(gray, "mono8"),
        "jpeg": numpy_to_compressed_msg(rgb, format="jpeg", quality=90),
        "cloud": points_to_cloud_msg(xyz, colours),
    }
    rows = [
        (f"numpy_to_image_msg rgb8 {w}x{h}", lambda: numpy_to_image_msg(rgb, "rgb8")),
        (f"image_msg_to_numpy rgb8 {w}x{h}", lambda: image_msg_to_numpy(msgs["rgb8"])),
        (f"image_msg_to_numpy bgr8 {w}x{h}", lambda: image_msg_to_numpy(msgs["bgr8"])),
        (f"image_msg_to_numpy mono8 {gray.shape[1]}x{gray.shape[0]}", lambda: image_msg_to_numpy(msgs["mono8"])),
        (f"depth_to_msg 32FC1 {w}x{h}", lambda: depth_to_msg(depth)),
        (f"numpy_to_compressed_msg jpeg q90 {w}x{h}", lambda: numpy_to_compressed_msg(rgb, format="jpeg")),
        (f"compressed_msg_to_numpy jpeg {w}x{h}", lambda: compressed_msg_to_numpy(msgs["jpeg"])),
        ("points_to_cloud_msg 122,880 pts + rgb", lambda: points_to_cloud_msg(xyz, colours)),
        ("cloud_msg_to_numpy 122,880 pts + rgb", lambda: cloud_msg_to_numpy(msgs["cloud"])),
    ]
    print("| conversion | median ms |\n|---|---|")
    for name, fn in rows:
        print(f"| {name} | {_median_ms(fn):.2f} |")


def _isolate(tmp: Path) -> dict[str, str]:
    from ros_harness import ISOLATION_KEYS, isolated_ros_env

    env = isolated_ros_env(tmp / "log")
    for key in ISOLATION_KEYS:
        os.environ[key] = env[key]
    return env


def bench_record(frames: int, rate: float, qos: str, storage: str) -> None:
    """Publish KITTI frames at ``rate`` to a bag_recorder child; report what it recorded."""
    with tempfile.TemporaryDirectory(prefix="bench_record_") as tmp:
        _bench_record(Path(tmp), frames, rate, qos, storage)


def _bench_record(tmp: Path, frames: int, rate: float, qos: str, storage: str) -> None:
    env = _isolate(tmp)
    from rclpy.duration import Duration
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from ros_harness import ros_context, spin_until, start_child
    from sensor_msgs.msg import Image

    from depth_pose_ros.data.rosbag_io import BagReader
    from depth_pose_ros.ros.convert import numpy_to_image_msg, stamp_to_ns
    from depth_pose_ros.ros.qos import qos_from_name

    images = _kitti_gray(frames)
    sent: dict[int, int] = {}
    with ros_context() as context:
        executor = SingleThreadedExecutor(context=context)
        node = Node("bench_publisher", context=context)
        executor.add_node(node)
        pub = node.create_publisher(Image, "/bench/image", qos_from_name(qos, 100))
        recorder = start_child([
            "-m", "depth_pose_ros.ros.bag_recorder", "--ros-args", "-p", f"output_dir:={tmp}",
            "-p", "bag_name:=bag", "-p", "topics:=['/bench/image:sensor_msgs/msg/Image']",
            "-p", f"qos:={qos}", "-p", "qos_depth:=100", "-p", f"storage:={storage}",
        ], env, tmp / "recorder.log")
        try:
            if not spin_until(executor, lambda: pub.get_subscription_count() > 0, 30.0, children=[recorder]):
                raise RuntimeError(f"recorder did not subscribe:\n{recorder.output()}")
            time.sleep(0.5)
            start = time.perf_counter()
            for i, image in enumerate(images):
                while time.perf_counter() < start + i / rate:
                    time.sleep(0.0005)
                msg = numpy_to_image_msg(image, "mono8", 1000 + 0.1 * i, "camera")
                sent[stamp_to_ns(msg.header.stamp)] = time.time_ns()
                pub.publish(msg)
            send_s = time.perf_counter() - start
            if qos == "reliable":
                pub.wait_for_all_acked(Duration(seconds=10))
            else:
                time.sleep(1.0)
        finally:
            recorder.stop()
    from rclpy.serialization import deserialize_message

    latency = []
    with BagReader(tmp / "bag") as bag:
        for m in bag.messages():
            header_ns = stamp_to_ns(deserialize_message(m.cdr, Image).header.stamp)
            latency.append((m.timestamp_ns - sent[header_ns]) / 1e6)
    lat = np.array(latency)
    size_mb = sum(f.stat().st_size for f in (tmp / "bag").iterdir()) / 1e6
    print(f"record {frames} frames {images[0].shape[1]}x{images[0].shape[0]} mono8 at {rate:g} Hz, qos {qos}, "
          f"{storage}: recorded {len(lat)}/{frames} in {send_s:.2f} s; receive latency ms median "
          f"{np.median(lat):.2f} p95 {np.percentile(lat, 95):.2f} max {lat.max():.2f}; bag {size_mb:.1f} MB")


def bench_play(frames: int, rate: float) -> None:
    """Play a bag of KITTI frames recorded at ``rate`` Hz; compare arrivals with the bag schedule."""
    with tempfile.TemporaryDirectory(prefix="bench_play_") as tmp:
        _bench_play(Path(tmp), frames, rate)


def _bench_play(tmp: Path, frames: int, rate: float) -> None:
    env = _isolate(tmp)
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.serialization import serialize_message
    from ros_harness import ros_context, spin_until, start_child
    from sensor_msgs.msg import Image

    from depth_pose_ros.data.rosbag_io import SplitBagWriter
    from depth_pose_ros.ros.convert import numpy_to_image_msg
    from depth_pose_ros.ros.qos import reliable_qos

    period_ns = int(round(1e9 / rate))
    with SplitBagWriter(tmp, "bag", "mcap") as writer:
        for i, image in enumerate(_kitti_gray(frames)):
            msg = numpy_to_image_msg(image, "mono8", 1000 + i / rate, "camera")
            writer.write("/bench/image", "sensor_msgs/msg/Image", 10**18 + i * period_ns, serialize_message(msg))
    arrivals: list[float] = []
    with ros_context() as context:
        executor = SingleThreadedExecutor(context=context)
        node = Node("bench_listener", context=context)
        executor.add_node(node)
        node.create_subscription(Image, "/bench/image", lambda m: arrivals.append(time.perf_counter()),
                                 reliable_qos(100))
        player = start_child(["-m", "depth_pose_ros.ros.bag_player", "--ros-args", "-p", f"bag:={tmp / 'bag'}",
                              "-p", "topics:=['/bench/image']", "-p", "wait_for_subscribers:=true"],
                             env, tmp / "player.log")
        try:
            spin_until(executor, lambda: len(arrivals) == frames, frames / rate + 30.0, children=[player])
        finally:
            player.stop()
    t = np.array(arrivals)
    offset = t - np.arange(len(t)) / rate  # arrival minus the bag schedule (up to a constant)
    jitter_ms = np.abs(offset - np.median(offset)) * 1e3
    gaps_ms = np.diff(t) * 1e3
    print(f"play {frames} frames at {rate:g} Hz: received {len(t)}/{frames}; |arrival - schedule| ms "
          f"(schedule aligned on the median) median {np.median(jitter_ms):.2f} "
          f"p95 {np.percentile(jitter_ms, 95):.2f} max {jitter_ms.max():.2f}; first frame "
          f"{(offset[0] - np.median(offset)) * 1e3:+.1f} ms vs the median (+ = late); inter-arrival ms "
          f"mean {gaps_ms[1:].mean():.2f} (bag {1e3 / rate:.2f}) std {gaps_ms[1:].std():.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/bench_ros.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("convert")
    rec = sub.add_parser("record")
    rec.add_argument("--frames", type=int, default=300)
    rec.add_argument("--rate", type=float, default=30.0)
    rec.add_argument("--qos", default="reliable", choices=["reliable", "sensor_data"])
    rec.add_argument("--storage", default="mcap", choices=["mcap", "sqlite3"])
    play = sub.add_parser("play")
    play.add_argument("--frames", type=int, default=150)
    play.add_argument("--rate", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.what == "convert":
        bench_convert()
    elif args.what == "record":
        bench_record(args.frames, args.rate, args.qos, args.storage)
    else:
        bench_play(args.frames, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
