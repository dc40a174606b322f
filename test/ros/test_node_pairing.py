"""``ros/node_pairing.PairingMixin`` on a stand-in host, without a node or DDS.

Why here: the pairing rules (exact / nearest camera_info, size mismatch, invalid camera_info, the
``intrinsics.*`` fallback and when it may skip the wait, the stamp jump that empties the caches) decide
which K every frame gets; the DDS tests see them only through their outputs.
"""
from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from depth_pose_ros.ros.node_pairing import PairingMixin
from depth_pose_ros.ros.node_problems import ProblemLogMixin, SkipFrame

K = np.array([[100.0, 0.0, 32.0], [0.0, 100.0, 24.0], [0.0, 0.0, 1.0]])
FALLBACK_K = np.array([[50.0, 0.0, 16.0], [0.0, 50.0, 12.0], [0.0, 0.0, 1.0]])
T0 = 1_000 * 10**9
STEP = 10**8  # 10 Hz


class _Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def warn(self, message: str) -> None:
        self.lines.append(("warn", message))

    def error(self, message: str) -> None:
        self.lines.append(("error", message))


class _Host(PairingMixin):
    """The attributes PairingMixin expects of its node (see its docstring)."""

    def __init__(self, fallback_K: Optional[np.ndarray] = None, info_publishers: int = 0) -> None:
        self.settings = SimpleNamespace(camera_info_wait_s=0.0, camera_info_tolerance_s=0.01, fallback_K=fallback_K,
                                        camera_info_topic="camera_info", stereo_image_topic="stereo/image",
                                        estimator=SimpleNamespace(max_gap_s=1.0))
        self.stats = SimpleNamespace(resets=0, reset=self._count_reset)
        self._lock = threading.Lock()
        self._last_stamp_ns: Optional[int] = None
        self._warned: set[str] = set()
        self._throttle: dict[str, tuple[float, int]] = {}
        self.logger = _Logger()
        self.state_resets = 0
        self.info_publishers = info_publishers
        self._init_pairing()

    def _count_reset(self) -> None:
        self.stats.resets += 1

    def get_logger(self) -> _Logger:
        return self.logger

    def resolve_topic_name(self, name: str) -> str:
        return "/" + name

    def _reset_state(self) -> None:
        self.state_resets += 1
        self._last_stamp_ns = None

    def _camera_info_publishers(self) -> int:
        return self.info_publishers


def _info(stamp_ns: int, width: int = 64, height: int = 48, k: np.ndarray = K, model: str = "plumb_bob",
          d: tuple = (0.0, 0.0, 0.0, 0.0, 0.0)) -> CameraInfo:
    msg = CameraInfo(width=width, height=height, distortion_model=model, d=list(d), k=[float(v) for v in k.ravel()])
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 10**9)
    return msg


def test_exact_then_nearest_within_tolerance_else_skip():
    host = _Host()
    host._on_camera_info(_info(T0))
    K_found, _ = host._intrinsics(T0, 64, 48, "here")
    np.testing.assert_allclose(K_found, K)
    K_near, _ = host._intrinsics(T0 + 5 * 10**6, 64, 48, "here")  # 5 ms off, tolerance 10 ms
    np.testing.assert_allclose(K_near, K)
    with pytest.raises(SkipFrame) as skip:
        host._intrinsics(T0 + STEP, 64, 48, "here")
    assert skip.value.reason == "no_camera_info" and "nearest camera_info is 0.100 s away" in str(skip.value)
    assert "/camera_info" in str(skip.value) and "intrinsics.fx/fy/cx/cy are not set" in str(skip.value)


def test_camera_info_for_another_size_or_invalid_skips_the_frame():
    host = _Host(fallback_K=FALLBACK_K)
    host._on_camera_info(_info(T0, width=640, height=480))
    with pytest.raises(SkipFrame) as skip:
        host._intrinsics(T0, 64, 48, "here")
    assert skip.value.reason == "camera_info_size" and "camera_info is for 640x480 but the image is 64x48" in str(
        skip.value)
    host._on_camera_info(_info(T0 + STEP, k=np.zeros((3, 3))))
    with pytest.raises(SkipFrame) as skip:
        host._intrinsics(T0 + STEP, 64, 48, "here")
    assert skip.value.reason == "bad_camera_info"


def test_unknown_distortion_model_is_warned_once_and_ignored():
    host = _Host()
    for i in range(3):
        host._on_camera_info(_info(T0 + i * STEP, model="made_up", d=(0.1,)))
    K_found, distortion = host._intrinsics(T0 + STEP, 64, 48, "here")
    np.testing.assert_allclose(K_found, K)
    assert distortion is None
    assert [level for level, _ in host.logger.lines] == ["warn"]


def test_fallback_intrinsics_without_camera_info_and_throttled_warning_once_one_was_seen():
    host = _Host(fallback_K=FALLBACK_K)
    K_found, distortion = host._intrinsics(T0, 64, 48, "here")
    assert K_found is FALLBACK_K and distortion is None and not host.logger.lines  # no camera_info ever: silent
    host._on_camera_info(_info(T0))
    for i in range(1, 4):  # camera_info seen before, none for these stamps: warned, throttled
        assert host._intrinsics(T0 + i * STEP, 64, 48, "here")[0] is FALLBACK_K
    assert len(host.logger.lines) == 1 and "using the intrinsics.* parameters" in host.logger.lines[0][1]


def test_stamp_jump_back_resets_and_drops_cached_entries_from_before_the_jump():
    host = _Host()
    for i in range(20):
        host._on_camera_info(_info(T0 + 5 * 10**9 + i * STEP))  # the end of a first pass (5 s later)
    host._last_stamp_ns = T0 + 5 * 10**9 + 19 * STEP
    host._apply_stamp_policy(T0)  # the bag looped
    assert host.state_resets == 1 and host.stats.resets == 1
    assert any("jumped back by 6.900 s" in line and "20 cached camera_info" in line for _, line in host.logger.lines)
    with pytest.raises(SkipFrame):
        host._intrinsics(T0, 64, 48, "here")  # nothing of the old pass can be paired with the new frames
    host._last_stamp_ns = T0
    host._apply_stamp_policy(T0 + 2 * 10**9)  # a gap is the estimator's business: nothing reset here
    assert host.state_resets == 1


def test_throttled_log_counts_the_suppressed_lines():
    class _Logs(ProblemLogMixin):
        def __init__(self) -> None:
            self._warned, self._throttle, self.logger = set(), {}, _Logger()

        def get_logger(self) -> _Logger:
            return self.logger

    logs = _Logs()
    for _ in range(3):
        logs._log_throttled("key", "bad frame")
    logs._throttle["key"] = (logs._throttle["key"][0] - 10.0, logs._throttle["key"][1])  # the window passed
    logs._log_throttled("key", "bad frame")
    assert logs.logger.lines == [("error", "bad frame"),
                                 ("error", "bad frame (2 more like it in the last 5 s)")]
