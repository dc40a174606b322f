"""Helpers to run small, isolated DDS graphs in tests (and in ``benchmarks/bench_node.py`` /
``bench_ros.py``, which put this folder on ``sys.path``). Test-only: not part of the installed package.

Why each piece exists:
* :func:`isolated_ros_env` -- several test runs share one machine; a random ``ROS_DOMAIN_ID`` and
  ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` keep their graphs apart, ``ROS_LOG_DIR`` keeps logs
  in the test's tmp dir, and ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` lets best-effort point
  clouds through (without it most never arrive). ``_ROS_WHEELS_BOOTSTRAP_COMPLETE`` is removed: the
  PyPI wheels' bootstrapper must run again in a child, or the child can fail to load
  ``librcl_action.so``.
* :class:`ChildProcess` -- a node in a separate process (the venv's own Python), output captured
  to a file (a pipe could fill up and block the child), stopped by SIGINT -> SIGTERM -> SIGKILL, so
  a failing test never leaves a process behind.
* :func:`ros_context` / :func:`spin_until` -- a private rclpy context for the test process and a
  bounded wait that keeps spinning, so a missing message fails after a timeout instead of hanging.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Optional, Union

#: Environment variables set by :func:`isolated_ros_env` (what a test must also set in-process).
ISOLATION_KEYS: tuple[str, ...] = (
    "ROS_DOMAIN_ID",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_LOG_DIR",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def random_domain_id(low: int = 1, high: int = 200) -> int:
    """A domain id in [low, high] drawn from OS entropy (independent of seeded RNGs in tests)."""
    return random.SystemRandom().randint(low, high)


def isolated_ros_env(
    log_dir: Union[str, Path],
    domain_id: Optional[int] = None,
    *,
    large_data: bool = True,
    base: Optional[Mapping[str, str]] = None,
) -> dict[str, str]:
    """Environment for a process on its own DDS domain, discovering only this host.

    ``base`` defaults to ``os.environ``. The returned dict is meant for ``subprocess`` (children)
    and for ``monkeypatch.setenv`` of :data:`ISOLATION_KEYS` (the test process itself).
    """
    env = dict(os.environ if base is None else base)
    env.pop("_ROS_WHEELS_BOOTSTRAP_COMPLETE", None)
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range
    env.pop("ROS_STATIC_PEERS", None)
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    env["ROS_DOMAIN_ID"] = str(random_domain_id() if domain_id is None else int(domain_id))
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["ROS_LOG_DIR"] = str(log_dir)
    if large_data:
        env["FASTDDS_BUILTIN_TRANSPORTS"] = "LARGE_DATA"
    else:
        env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    # children may run ``python -m ros_harness`` (this module): make its folder importable there
    here = str(Path(__file__).resolve().parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env["RCUTILS_COLORIZED_OUTPUT"] = "0"
    return env


class ChildProcess:
    """A child process (started with the venv's Python) whose output goes to ``log_path``."""

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        log_path: Union[str, Path],
        cwd: Optional[Union[str, Path]] = None,
    ) -> None:
        self.args = [sys.executable, *map(str, args)]
        self.log_path = Path(log_path)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            self.args,
            env=dict(env),
            cwd=None if cwd is None else str(cwd),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        """Everything the child printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        """Wait for a normal exit; on timeout the child is stopped and ``TimeoutError`` raised."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise TimeoutError(
                f"child {' '.join(self.args[1:3])} still running after {timeout} s; output:\n{self.output()}"
            ) from None

    def stop(self, timeout: float = 10.0) -> int:
        """SIGINT, then SIGTERM, then SIGKILL (each given ``timeout`` / 2 s); returns the exit code."""
        for sig, grace in ((signal.SIGINT, timeout), (signal.SIGTERM, timeout / 2), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_child(
    args: Sequence[str],
    env: Mapping[str, str],
    log_path: Union[str, Path],
    cwd: Optional[Union[str, Path]] = None,
) -> ChildProcess:
    """Start ``python <args>`` (e.g. ``["-m", "depth_pose_ros.ros.bag_player", "--ros-args", ...]``)."""
    return ChildProcess(args, env, log_path, cwd)


@contextmanager
def ros_context(domain_id: Optional[int] = None) -> Iterator[object]:
    """A private, initialised ``rclpy.Context`` (no signal handlers); shut down on exit.

    ``domain_id`` defaults to ``$ROS_DOMAIN_ID`` (set it with :func:`isolated_ros_env` first).
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    if domain_id is None and os.environ.get("ROS_DOMAIN_ID"):
        domain_id = int(os.environ["ROS_DOMAIN_ID"])
    context = Context()
    rclpy.init(args=[], context=context, domain_id=domain_id, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


def spin_until(
    executor: object,
    condition: Callable[[], bool],
    timeout: float,
    *,
    period: float = 0.02,
    children: Sequence[ChildProcess] = (),
) -> bool:
    """Spin ``executor`` until ``condition()`` is true (True) or ``timeout`` s pass (False).

    When a child in ``children`` exits while waiting, a ``RuntimeError`` carrying its output is
    raised at once (a crashed publisher explains a missing message better than a timeout).
    """
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        for child in children:
            if not child.running() and child.proc.returncode != 0:
                name = " ".join(child.args[1:3])
                raise RuntimeError(f"child {name} exited with {child.proc.returncode}:\n{child.output()}")
        executor.spin_once(timeout_sec=period)


def node_follows(node: object, publisher: object, subscriber: str = "depth_pose_node") -> bool:
    """True once ``subscriber`` (a node on the graph) subscribes ``publisher``'s topic with the publisher's
    reliability and they matched. depth_pose_node's ``qos: auto`` starts best effort and re-subscribes
    reliable within a second of seeing a reliable publisher; a message sent during that swap is lost, so
    a test that must not lose one waits for this first. ``node``: any node of this process (graph queries)."""
    return (subscription_reliability(node, publisher.topic_name, subscriber) == publisher.qos_profile.reliability
            and publisher.get_subscription_count() > 0)


def subscription_reliability(node: object, topic: str, subscriber: str = "depth_pose_node") -> object:
    """The reliability policy of ``subscriber``'s subscription(s) on ``topic`` as the graph reports it; None
    when it has none, or several that differ."""
    policies = {i.qos_profile.reliability for i in node.get_subscriptions_info_by_topic(topic)
                if i.node_name == subscriber}
    return policies.pop() if len(policies) == 1 else None


class NodeOutputs:
    """Subscriptions to every output topic of ``depth_pose_node`` in the test process, messages kept by topic.

    ``colored``: also subscribe ``/depth/colored`` (the node builds it only while someone listens).
    """

    def __init__(self, executor: object, depth: int = 100, colored: bool = True) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry, Path
        from rclpy.node import Node
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from tf2_msgs.msg import TFMessage

        from depth_pose_ros.ros.qos import latched_qos, reliable_qos

        self.node = Node("outputs_listener", context=executor.context)
        executor.add_node(self.node)
        topics = [("/depth", Image), ("/depth/camera_info", CameraInfo)]
        topics += [("/depth/colored", Image)] if colored else []
        topics += [("/points", PointCloud2), ("/points/triangulated", PointCloud2), ("/odom", Odometry),
                   ("/path", Path), ("/tf", TFMessage), ("/tf_static", TFMessage), ("/diagnostics", DiagnosticArray)]
        self.msgs: dict[str, list] = {}
        self.subs = {}
        for topic, kind in topics:
            qos = latched_qos() if topic == "/tf_static" else reliable_qos(depth)
            self.msgs[topic] = []
            self.subs[topic] = self.node.create_subscription(kind, topic, self.msgs[topic].append, qos)

    def stamps(self, topic: str) -> list[int]:
        from depth_pose_ros.ros.convert import stamp_to_ns

        return [stamp_to_ns(m.header.stamp) for m in self.msgs[topic]]

    def total(self) -> int:
        return sum(len(v) for v in self.msgs.values())

    def diag(self) -> dict[str, str]:
        """Key -> value of the last diagnostics message ({} before the first)."""
        d = self.msgs["/diagnostics"]
        return {kv.key: kv.value for kv in d[-1].status[0].values} if d else {}


def panning_frames(count: int, height: int, width: int, step: int = 3) -> list:
    """``count`` RGB uint8 frames of a camera panning ``step`` px per frame over a smooth random texture."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    coarse = (rng.random((height // 8 + 1, (width + step * count) // 8 + 1, 3)) * 255).astype(np.uint8)
    texture = cv2.resize(coarse, (coarse.shape[1] * 8, coarse.shape[0] * 8), interpolation=cv2.INTER_LINEAR)
    return [np.ascontiguousarray(texture[:height, step * i: step * i + width]) for i in range(count)]


def play_camera(image_pub: object, info_pub: object, frames: Sequence, K: object, rate_hz: float,
                encoding: str = "bgr8", frame_id: str = "camera") -> list[int]:
    """Publish ``frames`` (RGB) as a camera driver does: image then its camera_info, same stamp (wall clock),
    at ``rate_hz``, from the calling thread; every message is built before the first is sent, so the loop
    only publishes. Returns the stamps (ns). Spin the receiving executor in another thread meanwhile."""
    import numpy as np

    from depth_pose_ros.ros.convert import make_camera_info, ns_to_stamp, numpy_to_image_msg

    h, w = frames[0].shape[:2]
    t0 = time.time_ns()
    stamps = [t0 + int(i * 1e9 / rate_hz) for i in range(len(frames))]
    msgs = []
    for rgb, stamp_ns in zip(frames, stamps):
        stamp = ns_to_stamp(stamp_ns)
        data = np.ascontiguousarray(rgb[..., ::-1]) if encoding == "bgr8" else rgb
        msgs.append((numpy_to_image_msg(data, encoding, stamp, frame_id), make_camera_info(K, w, h, stamp, frame_id)))
    start = time.monotonic()
    for i, (image, info) in enumerate(msgs):
        delay = start + i / rate_hz - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        image_pub.publish(image)
        info_pub.publish(info)
    return stamps


class BackgroundSpin:
    """Spin ``executor`` in a thread (``with BackgroundSpin(ex): ...``) while this thread publishes."""

    def __init__(self, executor: object, period: float = 0.02) -> None:
        import threading

        self.executor, self.period = executor, period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=self.period)

    def __enter__(self) -> BackgroundSpin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5.0)


# ---------------------------------------------------------------------------------- smoke check
#: Topics of the smoke publisher (below a prefix, default ``/smoke``).
SMOKE_IMAGE, SMOKE_CLOUD, SMOKE_TF = "image", "cloud", "tf"
#: Points in the smoke cloud: 16 bytes each, ~0.8 MB, large enough to need LARGE_DATA when best effort.
SMOKE_CLOUD_POINTS = 50_000


def smoke_payload() -> tuple:
    """Deterministic (image HxWx3 RGB uint8, xyz Nx3 float32, rgb Nx3 uint8, T 4x4) for the smoke check.

    Both sides compute the same payload, so the receiver can compare every pixel, point and
    transform value exactly.
    """
    import numpy as np

    ys, xs = np.mgrid[0:48, 0:64]
    image = np.stack([(3 * xs + ys) % 256, (5 * ys) % 256, (xs * ys) % 256], axis=2).astype(np.uint8)
    i = np.arange(SMOKE_CLOUD_POINTS, dtype=np.float64)
    xyz = np.stack([np.sin(i * 0.01) * 5.0, np.cos(i * 0.013) * 2.0, 1.0 + i * 1e-3], axis=1)
    xyz = xyz.astype(np.float32)
    rgb = np.stack([i % 256, (i // 256) % 256, (7 * i) % 256], axis=1).astype(np.uint8)
    c, s = np.cos(0.3), np.sin(0.3)
    T = np.array([[c, -s, 0.0, 1.0], [s, c, 0.0, -2.0], [0.0, 0.0, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0]])
    return image, xyz, rgb, T


def run_smoke_publisher(
    prefix: str = "/smoke", rate_hz: float = 10.0, args: Optional[list[str]] = None
) -> int:
    """Publish the smoke payload until SIGINT / SIGTERM: Image and TFMessage reliable, the cloud
    best effort (sensor data). Message ``i`` is stamped ``1000 + i`` s. Returns 0."""
    from rclpy.node import Node
    from sensor_msgs.msg import Image, PointCloud2
    from tf2_msgs.msg import TFMessage

    from depth_pose_ros.ros.convert import numpy_to_image_msg, points_to_cloud_msg, tf_message, transform_msg
    from depth_pose_ros.ros.node_runner import ros_session
    from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos

    image, xyz, rgb, T = smoke_payload()
    with ros_session(args) as (context, stop):
        node = Node("smoke_publisher", context=context)
        image_pub = node.create_publisher(Image, f"{prefix}/{SMOKE_IMAGE}", reliable_qos())
        cloud_pub = node.create_publisher(PointCloud2, f"{prefix}/{SMOKE_CLOUD}", sensor_data_qos())
        tf_pub = node.create_publisher(TFMessage, f"{prefix}/{SMOKE_TF}", reliable_qos())
        count = 0
        while not stop.is_set():
            stamp = 1000.0 + count
            image_pub.publish(numpy_to_image_msg(image, "rgb8", stamp, "smoke_camera"))
            cloud_pub.publish(points_to_cloud_msg(xyz, rgb, stamp, "smoke_camera"))
            tf_pub.publish(tf_message([transform_msg(T, stamp, "smoke_world", "smoke_camera")]))
            count += 1
            stop.wait(1.0 / rate_hz)
        node.destroy_node()
    return 0


def run_counting_listener(topic: str, reliable: bool, args: Optional[list[str]] = None) -> int:
    """Count the ``sensor_msgs/Image`` messages arriving on ``topic`` (raw: no Python decoding, so the
    count is DDS delivery alone) until SIGINT / SIGTERM; print ``received N`` then. Returns 0."""
    from rclpy.node import Node
    from sensor_msgs.msg import Image

    from depth_pose_ros.ros.node_runner import ros_session, spin_until_stopped
    from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos

    count = [0]
    with ros_session(args) as (context, stop):
        node = Node("counting_listener", context=context)
        node.create_subscription(Image, topic, lambda msg: count.__setitem__(0, count[0] + 1),
                                 reliable_qos() if reliable else sensor_data_qos(), raw=True)
        print("listening", flush=True)
        spin_until_stopped(node, stop, period_s=0.02)
        node.destroy_node()
    print(f"received {count[0]}", flush=True)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m ros_harness smoke_publisher [--prefix P] [--rate HZ] [--ros-args ...]``:
    a DDS check for a real machine (subscribe to ``/smoke/*`` from another process);
    ``python -m ros_harness count_listener --topic /image [--reliable]``: count the images that arrive."""
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index("--ros-args"):] if "--ros-args" in argv else []
    own = argv[: len(argv) - len(ros_args)]
    parser = argparse.ArgumentParser(prog="python -m ros_harness")
    parser.add_argument("command", choices=["smoke_publisher", "count_listener"])
    parser.add_argument("--topic", default="/image", help="count_listener: image topic")
    parser.add_argument("--reliable", action="store_true", help="count_listener: reliable (default best effort)")
    parser.add_argument("--prefix", default="/smoke", help="topic prefix (default /smoke)")
    parser.add_argument("--rate", type=float, default=10.0, help="messages per second per topic")
    opts = parser.parse_args(own)
    if opts.command == "count_listener":
        return run_counting_listener(opts.topic, opts.reliable, [sys.argv[0], *ros_args])
    return run_smoke_publisher(opts.prefix, opts.rate, [sys.argv[0], *ros_args])


if __name__ == "__main__":
    sys.exit(main())
