"""QoS profiles of the project, chosen by name from node parameters.

Why names: parameters are strings in YAML; a node takes ``qos: sensor_data`` and calls
:func:`qos_from_name`, so every node spells and interprets QoS the same way.

* ``sensor_data`` (REP 2003, the default for camera subscriptions): best effort, volatile, keep last
  a few. A late frame is worthless to a streaming estimator, so we never want the middleware to stall
  or re-send for it; a best-effort subscription also matches both reliable and best-effort
  publishers, so it works with any camera driver.
* ``reliable``: reliable, volatile, keep last 10, for outputs where every message matters and the
  rate is low (odometry, paths, recorded playback).
* ``latched``: reliable + transient local, depth 1, for things a late joiner must still get
  (``/tf_static``, a one-off camera_info).
* ``system_default``: whatever the RMW's default is (only for interoperating with odd publishers).
* ``auto`` (subscriptions only, the node's camera default): the reliability the publishers offer --
  reliable when every publisher of the topic is reliable, else best effort -- chosen by
  :func:`matching_qos` and re-chosen when the publishers change. Why: a best-effort subscription gets
  best-effort delivery even from a reliable camera, and Fast DDS then loses every frame of which one
  fragment was lost on the way (a 640x480 colour frame is 0.9 MB, about 15 UDP fragments and more than the
  writer's 512 KB shared-memory segment): about half of such frames at 10 Hz on one machine
  (``benchmarks/bench_node_qos.py``, docs/bench_node.md). Reliable delivery re-sends the lost fragments,
  and with keep-last history a slow reader still never blocks the camera. Until a publisher is seen the
  profile is ``sensor_data``, which matches any publisher.
"""
from __future__ import annotations

from collections.abc import Iterable

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_system_default,
)

#: Names accepted by :func:`qos_from_name` (and by every ``qos`` parameter of the project's nodes).
QOS_NAMES: tuple[str, ...] = ("sensor_data", "reliable", "latched", "system_default")
#: Names of a subscription that follows its publishers (depth_pose_node's camera inputs): ``auto`` too.
SUBSCRIPTION_QOS_NAMES: tuple[str, ...] = ("auto",) + QOS_NAMES

#: Depth of the sensor-data profile (REP 2003 uses a small keep-last queue; rclpy's is 5).
SENSOR_DATA_DEPTH = 5
#: Depth of the reliable profile (rclpy's default for publishers and subscriptions).
RELIABLE_DEPTH = 10


def sensor_data_qos(depth: int = SENSOR_DATA_DEPTH) -> QoSProfile:
    """Best effort, volatile, keep last ``depth``: camera streams (REP 2003)."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=_check_depth(depth),
        reliability=ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.VOLATILE,
    )


def reliable_qos(depth: int = RELIABLE_DEPTH) -> QoSProfile:
    """Reliable, volatile, keep last ``depth``: odometry, paths, bag playback."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=_check_depth(depth),
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.VOLATILE,
    )


def latched_qos(depth: int = 1) -> QoSProfile:
    """Reliable + transient local: late subscribers still receive the last ``depth`` messages."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=_check_depth(depth),
        reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL,
    )


def system_default_qos(depth: int | None = None) -> QoSProfile:
    """The RMW's defaults; ``depth`` overrides the history depth when given."""
    profile = QoSProfile(**_profile_kwargs(qos_profile_system_default))
    if depth is not None:
        profile.history = HistoryPolicy.KEEP_LAST
        profile.depth = _check_depth(depth)
    return profile


def qos_from_name(name: str, depth: int | None = None, *, what: str = "qos", allow_auto: bool = False) -> QoSProfile:
    """The profile called ``name`` (one of :data:`QOS_NAMES`), with an optional depth override.

    ``what`` names the parameter in the error message, so a wrong YAML value says which key is wrong.
    ``allow_auto``: ``auto`` is accepted (a subscription that re-matches its publishers with
    :func:`matching_qos`; the profile returned is the one to start with).
    """
    key = str(name).strip().lower()
    if key == "sensor_data" or (allow_auto and key == "auto"):
        return sensor_data_qos(SENSOR_DATA_DEPTH if depth is None else depth)
    if key == "reliable":
        return reliable_qos(RELIABLE_DEPTH if depth is None else depth)
    if key == "latched":
        return latched_qos(1 if depth is None else depth)
    if key == "system_default":
        return system_default_qos(depth)
    names = SUBSCRIPTION_QOS_NAMES if allow_auto else QOS_NAMES
    raise ValueError(f"{what}: unknown QoS profile {name!r}; expected one of {', '.join(names)}")


def is_auto(name: str) -> bool:
    """True when the QoS name asks to follow the publishers (:func:`matching_qos`)."""
    return str(name).strip().lower() == "auto"


def matching_qos(publisher_reliabilities: Iterable[ReliabilityPolicy], depth: int = SENSOR_DATA_DEPTH) -> QoSProfile:
    """Subscription profile for ``auto``: reliable (keep last ``depth``) when there is at least one publisher
    and every one of them offers reliable delivery, else ``sensor_data`` (best effort matches every publisher,
    so a best-effort publisher among them is never cut off)."""
    offered = list(publisher_reliabilities)
    if offered and all(r == ReliabilityPolicy.RELIABLE for r in offered):
        return reliable_qos(depth)
    return sensor_data_qos(depth)


def describe_qos(profile: QoSProfile) -> str:
    """Short human-readable summary for logs, e.g. ``best_effort/volatile/keep_last(5)``."""
    history = profile.history.name.lower()
    if profile.history == HistoryPolicy.KEEP_LAST:
        history += f"({profile.depth})"
    return f"{profile.reliability.name.lower()}/{profile.durability.name.lower()}/{history}"


def _check_depth(depth: int) -> int:
    depth = int(depth)
    if depth < 1:
        raise ValueError(f"QoS depth must be >= 1, got {depth}")
    return depth


def _profile_kwargs(profile: QoSProfile) -> dict:
    """Copy of a profile's policies (rclpy profiles are mutable; never hand out the shared one)."""
    return {
        "history": profile.history,
        "depth": profile.depth,
        "reliability": profile.reliability,
        "durability": profile.durability,
        "lifespan": profile.lifespan,
        "deadline": profile.deadline,
        "liveliness": profile.liveliness,
        "liveliness_lease_duration": profile.liveliness_lease_duration,
    }
