#!/usr/bin/env python3
"""depth_pose_node latency and throughput: image published -> depth received, against bare Estimator.step.

One run, all on this machine (numbers go to docs/bench_node.md with the command):

1. the bare :meth:`Estimator.step` time on the same frames, the same parameters files and the same
   weights as the node (in this process, before the node starts, so the two never share the CPU);
2. ``depth_pose_node`` in a child process (``config/default.yaml`` + a small overrides file: input
   ``--height`` x ``--width``, outputs at ``--output-size`` (camera: depth, colour map and cloud at the
   1226x370 camera size), a seeded untrained default network unless ``--checkpoint``); this
   process publishes KITTI 06 left gray frames (1226x370 mono8, frames 0-50 played back and forth so
   the motion stays continuous) with camera_info at each ``--rates`` Hz for ``--duration`` s, stamped
   with the wall clock, and receives ``depth``. Latency = depth receive time - image publish time
   (one monotonic clock; every other output is subscribed too, raw, unless ``--outputs depth``: the node
   builds only subscribed outputs); throughput = depth messages per second; node overhead = median latency -
   median bare step time. The node's own ``/diagnostics`` split its time per frame into waiting for the
   previous frame, decoding + camera_info pairing, ``Estimator.step`` and publishing (odometry, building
   and publishing every output), averaged over the run;
3. a ``--long`` s run at ``--long-rate`` Hz printed in ``--window`` s windows, with the node's own
   publish stage per window from its diagnostics, to show whether latency or publishing cost grows with
   the run length (neither may: the node works on the newest frames only, and the path -- the one output
   that grows -- is published from a timer, not with every frame).

The bare step runs with the same allocator setting as the node (:func:`reuse_large_allocations`), so the
difference is the node's work, not how the two processes allocate.

Example (the numbers in docs/bench_node.md):
    .venv/bin/python benchmarks/bench_node.py --rates 5 10 30 --duration 20 --long 600 --threads 1
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "test" / "ros"))  # ros_harness
from depth_pose_ros.utils.paths import data_root  # noqa: E402


def _kitti(count: int) -> tuple[list[np.ndarray], np.ndarray]:
    """KITTI 06 frames 0..50..1 repeated (back and forth, so consecutive frames stay neighbours) and K."""
    seq = data_root() / "kitti_odometry" / "sequences" / "06"
    frames = [cv2.imread(str(seq / "image_0" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(51)]
    if any(f is None for f in frames):
        raise FileNotFoundError(f"KITTI odometry 06 frames not found under {seq}")
    order = list(range(51)) + list(range(49, 0, -1))
    p0 = next(line for line in (seq / "calib.txt").read_text().splitlines() if line.startswith("P0:"))
    K = np.array(p0.split()[1:], dtype=np.float64).reshape(3, 4)[:, :3]
    return [frames[order[i % len(order)]] for i in range(count)], K


def _stats(values_ms: list[float]) -> str:
    if not values_ms:
        return "n/a"
    a = np.asarray(values_ms)
    return f"{np.median(a):.1f} / {np.percentile(a, 95):.1f} / {a.max():.1f}"


def bare_step_ms(settings, frames: list[np.ndarray], K: np.ndarray, count: int) -> list[float]:
    """Estimator.step times (ms) over ``count`` frames at 10 Hz stamps (the first two are warm-up)."""
    from depth_pose_ros.ros.node_params import make_estimator

    estimator, _ = make_estimator(settings, warn=lambda text: None)
    times = []
    for i in range(count + 2):
        t0 = time.perf_counter()
        estimator.step(frames[i % len(frames)], K, 1000.0 + 0.1 * i)
        times.append((time.perf_counter() - t0) * 1e3)
    return times[2:]


class _Bench:
    """Publisher of frames + camera_info, subscriber of depth and diagnostics, spun in a thread."""

    def __init__(self, context, all_outputs: bool = True) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image

        from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos

        self.node = Node("bench_node_camera", context=context)
        self.image_pub = self.node.create_publisher(Image, "/image", sensor_data_qos())
        self.info_pub = self.node.create_publisher(CameraInfo, "/camera_info", sensor_data_qos())
        self.lock = threading.Lock()
        self.sent: dict[int, float] = {}
        self.received: dict[int, float] = {}
        self.diagnostics: list[dict[str, str]] = []
        self.depth_sub = self.node.create_subscription(Image, "/depth", self._on_depth, reliable_qos(50))
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, reliable_qos(50))
        if all_outputs:  # the node builds only what is subscribed: take every output (raw: no Python decoding)
            from nav_msgs.msg import Odometry, Path
            from sensor_msgs.msg import PointCloud2
            from tf2_msgs.msg import TFMessage

            for kind, topic in ((CameraInfo, "/depth/camera_info"), (Image, "/depth/colored"),
                                (PointCloud2, "/points"), (Odometry, "/odom"), (Path, "/path"), (TFMessage, "/tf")):
                self.node.create_subscription(kind, topic, lambda msg: None, reliable_qos(50), raw=True)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_depth(self, msg) -> None:
        now = time.monotonic()
        from depth_pose_ros.ros.convert import stamp_to_ns

        with self.lock:
            self.received[stamp_to_ns(msg.header.stamp)] = now

    def _on_diag(self, msg) -> None:
        now = time.monotonic()
        with self.lock:
            self.diagnostics.append({"received_s": str(now), **{kv.key: kv.value for kv in msg.status[0].values}})

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.executor.shutdown(timeout_sec=0)
        self.node.destroy_node()

    def diagnostics_since(self, start: int) -> list[dict[str, str]]:
        with self.lock:
            return list(self.diagnostics[start:])

    def run(self, frames: list[np.ndarray], K: np.ndarray, rate: float, duration: float) -> list[tuple[float, float]]:
        """Publish at ``rate`` for ``duration`` s; returns (publish time, latency ms or nan) per frame."""
        from depth_pose_ros.ros.convert import make_camera_info, ns_to_stamp, numpy_to_image_msg

        h, w = frames[0].shape
        n = int(round(rate * duration))
        # messages built beforehand so the publish loop only publishes
        start = time.monotonic() + 0.5
        stamps = [time.time_ns() + int(0.5e9) + int(i * 1e9 / rate) for i in range(n)]
        msgs = []
        for i in range(n):
            stamp = ns_to_stamp(stamps[i])
            msgs.append((numpy_to_image_msg(frames[i % len(frames)], "mono8", stamp, "camera_0"),
                         make_camera_info(K, w, h, stamp, "camera_0")))
        sent = []
        for i, (image, info) in enumerate(msgs):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.monotonic()
            self.image_pub.publish(image)
            self.info_pub.publish(info)
            sent.append(t)
        time.sleep(1.5)  # the last frames' depth
        with self.lock:
            return [(t, (self.received[s] - t) * 1e3 if s in self.received else float("nan"))
                    for t, s in zip(sent, stamps)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", type=float, nargs="+", default=[5.0, 10.0, 30.0])
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    ap.add_argument("--long", type=float, default=60.0, help="seconds of the growth check (0: skip)")
    ap.add_argument("--long-rate", type=float, default=10.0, help="camera rate of the growth check (Hz)")
    ap.add_argument("--window", type=float, default=10.0, help="window of the growth check table (s)")
    ap.add_argument("--output-size", choices=["camera", "network"], default="camera")
    ap.add_argument("--outputs", choices=["all", "depth"], default="all",
                    help="subscribe every output (all: the node builds everything) or only depth")
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--checkpoint", type=Path, default=None, help="weights (default: seeded untrained network)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads of node and bare run (0: torch default)")
    ap.add_argument("--bare-frames", type=int, default=60)
    opts = ap.parse_args()

    import torch
    from ros_harness import ISOLATION_KEYS, isolated_ros_env, ros_context, start_child

    from depth_pose_ros.nets.checkpoint import save_model
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.ros.node_params import params_from_yaml, settings_from_params_file
    from depth_pose_ros.ros.node_runner import reuse_large_allocations

    reuse_large_allocations()  # as the node does

    frames, K = _kitti(200)
    print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs); torch {torch.__version__}, "
          f"num_threads {opts.threads or torch.get_num_threads()}")
    with tempfile.TemporaryDirectory(prefix="bench_node_") as tmp_name:
        tmp = Path(tmp_name)
        checkpoint = opts.checkpoint
        if checkpoint is None:
            torch.manual_seed(0)
            checkpoint = tmp / "seeded_default_net.safetensors"
            save_model(checkpoint, build_model())
        overrides = tmp / "bench.yaml"
        overrides.write_text(yaml.safe_dump({"depth_pose_node": {"ros__parameters": {
            "checkpoint": str(checkpoint), "input": {"height": opts.height, "width": opts.width},
            "num_threads": opts.threads, "diagnostics": {"period_s": 1.0},
            "output": {"size": opts.output_size}}}}))
        default_yaml = REPO / "config" / "default.yaml"
        settings = settings_from_params_file(default_yaml, params_from_yaml(overrides))

        bare = bare_step_ms(settings, frames, K, opts.bare_frames)
        bare_median = float(np.median(bare))
        print(f"outputs at the {opts.output_size} size, subscribed: {opts.outputs}; "
              f"bare Estimator.step {opts.height}x{opts.width} ({checkpoint.name}, flow "
              f"{settings.estimator.flow_source}): median / p95 / max ms = {_stats(bare)} over {len(bare)} frames")

        env = isolated_ros_env(tmp / "ros_log")
        for key in ISOLATION_KEYS:
            os.environ[key] = env[key]
        node = start_child(["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
                            str(default_yaml), "--params-file", str(overrides)], env, tmp / "node.log")
        try:
            with ros_context() as context:
                bench = _Bench(context, all_outputs=opts.outputs == "all")
                try:
                    deadline = time.monotonic() + 120
                    while bench.depth_sub.get_publisher_count() == 0 or bench.image_pub.get_subscription_count() == 0:
                        if time.monotonic() > deadline or not node.running():
                            raise RuntimeError(f"node did not come up:\n{node.output()}")
                        time.sleep(0.1)
                    time.sleep(1.0)
                    print("\n| camera rate | frames published | depth received | throughput Hz | latency median / "
                          "p95 / max ms | latency - bare step (medians) | in the node, mean ms: wait / decode+pair / "
                          "step / publish / total |")
                    print("|---|---|---|---|---|---|---|")
                    for rate in opts.rates:
                        n_diag = len(bench.diagnostics)
                        rows = bench.run(frames, K, rate, opts.duration)
                        lat = [x for _, x in rows if np.isfinite(x)]
                        stages = []
                        for stage in ("queue", "pair", "step", "publish", "total"):
                            means = [float(d[f"{stage}_ms_mean"]) for d in bench.diagnostics[n_diag:]
                                     if d.get(f"{stage}_ms_mean", "n/a") != "n/a"]
                            stages.append(f"{np.mean(means):.1f}" if means else "n/a")
                        print(f"| {rate:g} Hz | {len(rows)} | {len(lat)} ({100 * len(lat) / len(rows):.0f} %) | "
                              f"{len(lat) / opts.duration:.2f} | {_stats(lat)} | "
                              f"{np.median(lat) - bare_median:+.1f} ms | {' / '.join(stages)} |")
                        time.sleep(1.0)
                    if opts.long > 0:
                        n_diag = len(bench.diagnostics)
                        rows = bench.run(frames, K, opts.long_rate, opts.long)
                        diags = bench.diagnostics_since(n_diag)
                        t0 = rows[0][0]
                        print(f"\n{opts.long_rate:g} Hz for {opts.long:g} s, by {opts.window:g} s window (by publish "
                              "time; node publish stage from its diagnostics, one report per second):\n")
                        print("| window | published | received | latency median / p95 / max ms | "
                              "node publish stage, mean ms |")
                        print("|---|---|---|---|---|")
                        for w0 in np.arange(0, opts.long, opts.window):
                            part = [x for t, x in rows if w0 <= t - t0 < w0 + opts.window]
                            got = [x for x in part if np.isfinite(x)]
                            pub = [float(d["publish_ms_mean"]) for d in diags
                                   if w0 < float(d["received_s"]) - t0 <= w0 + opts.window
                                   and d.get("publish_ms_mean", "n/a") != "n/a"]
                            pub_text = f"{np.mean(pub):.1f}" if pub else "n/a"
                            print(f"| {w0:.0f}-{w0 + opts.window:.0f} s | {len(part)} | {len(got)} | {_stats(got)} | "
                                  f"{pub_text} |")
                finally:
                    bench.close()
        finally:
            node.stop()
        log = node.output()
        errors = [line for line in log.splitlines() if "[ERROR]" in line]
        print(f"\nnode log: {len(errors)} error line(s)" + (f", first: {errors[0]}" if errors else ""))
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
