"""The camera subscriptions of ``depth_pose_node`` (image, camera_info, stereo right image) and their QoS.

Why a module of its own: subscribing is more than one ``create_subscription`` call. With ``qos.*: auto``
(the default) a subscription follows the reliability its publishers offer (``qos.matching_qos``: a
best-effort subscription gets best-effort delivery even from a reliable camera, which loses whole large
frames) and is re-created whenever that changes -- a camera that starts after the node, a driver
restarted with other QoS -- checked every :data:`QOS_MATCH_PERIOD_S` on the steady clock. The standard
ROS 2 ``qos_overrides.*`` parameters apply on top (:data:`QOS_OVERRIDES`); a subscription whose
reliability the user set that way is never changed, and an override naming none of the node's topics is
an error like any unknown parameter. :class:`CameraInputsMixin` keeps that bookkeeping away from the run
loop (``node_core``), which only sees the callbacks: ``_on_image`` (core), ``_on_camera_info`` and
``_on_stereo_image`` (``node_pairing``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rclpy.clock import Clock, ClockType
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from depth_pose_ros.ros.node_host import NodeHost
from depth_pose_ros.ros.node_params import NodeSettings
from depth_pose_ros.ros.qos import describe_qos, is_auto, matching_qos, qos_from_name

#: QoS of the camera subscriptions and the outputs can be overridden with the standard ROS 2 parameters
#: (``qos_overrides./image.subscription.reliability:=reliable``), on top of the qos.* profiles.
QOS_OVERRIDES = QoSOverridingOptions.with_default_policies()

#: How often (steady clock, s) ``qos.*: auto`` subscriptions compare their reliability with the publishers'.
QOS_MATCH_PERIOD_S = 1.0


@dataclass
class CameraSubscription:
    """A camera input subscription the node may re-create (``qos.*: auto``)."""

    kind: type
    topic: str
    callback: Callable[[Any], None]
    auto: bool
    subscription: Any = None

    @property
    def reliability(self) -> Any:
        """The reliability the subscription was created with (None before it exists)."""
        return None if self.subscription is None else self.subscription.qos_profile.reliability


class CameraInputsMixin(NodeHost):
    """Creates, re-creates (``qos.*: auto``) and destroys the camera subscriptions of the host node.

    The host provides ``settings``, ``_timers_`` and the callbacks ``_on_image``, ``_on_camera_info`` and
    ``_on_stereo_image``; this mixin sets ``_camera_subs``, ``_image_sub``, ``_info_sub`` and
    ``_image_best_effort`` (read by the diagnostics).
    """

    settings: NodeSettings
    _camera_subs: dict[str, CameraSubscription]
    _timers_: list
    _image_sub: Any
    _info_sub: Any
    _image_best_effort: bool

    def _image_topic_name(self) -> str:
        s = self.settings
        return f"{s.image_topic.rstrip('/')}/compressed" if s.use_compressed else s.image_topic

    def _subscribe_cameras(self) -> QoSProfile:
        """Subscribe to the image, its camera_info and (``scale.source: stereo``) the right image, and
        start following the publishers' QoS where it is ``auto``; returns the image subscription's
        configured profile (for the node's ready line)."""
        s = self.settings
        qos_image = qos_from_name(s.qos_image, what="qos.image", allow_auto=True)
        qos_info = qos_from_name(s.qos_camera_info, what="qos.camera_info", allow_auto=True)
        kind = CompressedImage if s.use_compressed else Image
        self._camera_subs = {
            "image": CameraSubscription(kind, self._image_topic_name(), lambda m: self._on_image(m, s.use_compressed),
                                        is_auto(s.qos_image)),
            "camera_info": CameraSubscription(CameraInfo, s.camera_info_topic, self._on_camera_info,
                                              is_auto(s.qos_camera_info)),
        }
        self._image_sub = self._subscribe("image", qos_image, overridable=True)
        self._info_sub = self._subscribe("camera_info", qos_info, overridable=True)
        self._check_qos_overrides()
        if s.estimator.scale.source == "stereo":  # a second camera: the camera_info QoS setting (may be auto)
            self._camera_subs["stereo"] = CameraSubscription(Image, s.stereo_image_topic, self._on_stereo_image,
                                                             is_auto(s.qos_camera_info))
            self._subscribe("stereo", qos_info)
        if any(sub.auto for sub in self._camera_subs.values()):
            self._match_publishers_qos()
            self._timers_.append(self.create_timer(QOS_MATCH_PERIOD_S, self._match_publishers_qos,
                                                   clock=Clock(clock_type=ClockType.STEADY_TIME)))
        return qos_image

    def _unsubscribe_cameras(self) -> None:
        """Destroy every camera subscription (no callback of them runs afterwards)."""
        for sub in [c.subscription for c in self._camera_subs.values() if c.subscription]:
            self.destroy_subscription(sub)
        self._camera_subs = {}
        self._image_sub = self._info_sub = None

    def _subscribe(self, name: str, qos: QoSProfile, overridable: bool = False):
        """(Re)create the camera subscription ``name`` (``image`` / ``camera_info``) with ``qos``.

        ``overridable``: accept the ROS 2 ``qos_overrides.*`` parameters (declared once, at the first
        creation; a re-creation by :meth:`_match_publishers_qos` keeps the profile it was given)."""
        sub = self._camera_subs[name]
        if sub.subscription is not None:
            self.destroy_subscription(sub.subscription)
        sub.subscription = self.create_subscription(sub.kind, sub.topic, sub.callback, qos,
                                                    qos_overriding_options=QOS_OVERRIDES if overridable else None)
        if sub.auto and overridable and self._overridden_reliability(sub.subscription.topic_name):
            sub.auto = False  # the user set this subscription's reliability: not ours to change
        if name == "image":
            self._image_sub = sub.subscription
            self._image_best_effort = sub.reliability == ReliabilityPolicy.BEST_EFFORT
        elif name == "camera_info":
            self._info_sub = sub.subscription
        return sub.subscription

    def _overridden_reliability(self, topic: str) -> bool:
        return f"qos_overrides.{topic}.subscription.reliability" in getattr(self, "_parameter_overrides", {})

    def _check_qos_overrides(self) -> None:
        """``qos_overrides.<topic>.<publisher|subscription>.<policy>`` given to the node must name one of its
        topics (the camera subscriptions and the outputs accept them, the ROS 2 way); anything else is an
        unknown parameter, as a typo in any other name is."""
        given = sorted(n for n in getattr(self, "_parameter_overrides", {}) if n.startswith("qos_overrides."))
        unknown = [n for n in given if not self.has_parameter(n)]
        if unknown:
            declared = sorted({n.rsplit(".", 1)[0] for n in self._parameters if n.startswith("qos_overrides.")})
            raise ValueError(f"unknown QoS override(s) {', '.join(unknown)}; this node accepts "
                             f"qos_overrides.<entity>.<policy> for: {', '.join(declared)}")

    def _match_publishers_qos(self) -> None:
        """``qos.*: auto``: subscribe with the reliability the publishers offer (``qos.matching_qos``), and
        again whenever that changes (a camera that starts later, a driver restarted with other QoS)."""
        for name, sub in self._camera_subs.items():
            if not sub.auto or sub.subscription is None:
                continue
            infos = self.get_publishers_info_by_topic(sub.subscription.topic_name)
            wanted = matching_qos([i.qos_profile.reliability for i in infos])
            if wanted.reliability == sub.reliability:
                continue
            self._subscribe(name, wanted)
            offered = "all reliable" if wanted.reliability == ReliabilityPolicy.RELIABLE else "not all reliable"
            self.get_logger().info(f"{name} subscription on {sub.subscription.topic_name} is now "
                                   f"{describe_qos(wanted)} (qos auto: {len(infos)} publisher(s), {offered})")

    def _camera_info_publishers(self) -> int:
        sub = self._info_sub
        return sub.get_publisher_count() if sub is not None else 0
