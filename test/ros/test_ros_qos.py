"""QoS profiles by name (what node parameters select)."""
from __future__ import annotations

import pytest

pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy  # noqa: E402

from depth_pose_ros.ros.qos import (  # noqa: E402
    QOS_NAMES,
    SUBSCRIPTION_QOS_NAMES,
    describe_qos,
    is_auto,
    matching_qos,
    qos_from_name,
    sensor_data_qos,
)


def test_sensor_data_is_rep2003_best_effort_volatile_keep_last():
    q = qos_from_name("sensor_data")
    assert q.reliability == ReliabilityPolicy.BEST_EFFORT
    assert q.durability == DurabilityPolicy.VOLATILE
    assert (q.history, q.depth) == (HistoryPolicy.KEEP_LAST, 5)
    assert describe_qos(q) == "best_effort/volatile/keep_last(5)"


def test_reliable_latched_and_depth_override():
    r = qos_from_name("Reliable", depth=42)
    assert (r.reliability, r.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    assert r.depth == 42
    latched = qos_from_name("latched")
    assert (latched.durability, latched.depth) == (DurabilityPolicy.TRANSIENT_LOCAL, 1)
    assert qos_from_name("system_default").reliability == ReliabilityPolicy.SYSTEM_DEFAULT
    assert qos_from_name("system_default", depth=3).depth == 3
    assert set(QOS_NAMES) == {"sensor_data", "reliable", "latched", "system_default"}


def test_profiles_are_fresh_objects():
    a, b = sensor_data_qos(), sensor_data_qos()
    a.depth = 99
    assert b.depth == 5


def test_bad_names_and_depths_say_which_parameter():
    with pytest.raises(ValueError, match=r"image_qos: unknown QoS profile 'fast'; expected one of sensor_"):
        qos_from_name("fast", what="image_qos")
    with pytest.raises(ValueError, match="depth must be >= 1"):
        qos_from_name("reliable", depth=0)


def test_auto_follows_the_publishers_reliability():
    """auto: reliable only when every publisher is reliable (a best-effort one would not match), best effort
    before any publisher is known; only where a subscription can re-match (allow_auto)."""
    rel, be = ReliabilityPolicy.RELIABLE, ReliabilityPolicy.BEST_EFFORT
    assert matching_qos([rel]).reliability == rel
    assert matching_qos([rel, rel], depth=3).depth == 3
    assert matching_qos([rel, be]).reliability == be
    assert matching_qos([be]).reliability == be
    assert matching_qos([]).reliability == be
    assert qos_from_name("AUTO", allow_auto=True).reliability == be
    assert is_auto(" auto ") and not is_auto("reliable")
    assert SUBSCRIPTION_QOS_NAMES == ("auto",) + QOS_NAMES
    with pytest.raises(ValueError, match=r"qos: unknown QoS profile 'auto'; expected one of sensor_data"):
        qos_from_name("auto")
    with pytest.raises(ValueError, match=r"expected one of auto, sensor_data"):
        qos_from_name("fast", allow_auto=True)
