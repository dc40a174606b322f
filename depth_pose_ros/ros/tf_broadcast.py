"""Publishing transforms on ``/tf`` and ``/tf_static``, with tf2_ros when it imports, without it otherwise.

tf2_ros is part of every ROS 2 install but has no PyPI wheel, so the fallback publishes
``tf2_msgs/TFMessage`` directly with the QoS tf2_ros uses: ``/tf`` reliable, volatile, keep last 100;
``/tf_static`` reliable, transient local, keep last 1 -- one message holding *every* static transform
of this node (re-sent whole when one changes), so a late-joining listener still gets them all.
"""
from __future__ import annotations

from collections.abc import Sequence

from geometry_msgs.msg import TransformStamped
from rclpy.node import Node
from tf2_msgs.msg import TFMessage

from depth_pose_ros.ros.qos import latched_qos, reliable_qos

#: History depth of tf2_ros's dynamic broadcaster.
TF_DEPTH = 100


class TfBroadcaster:
    """``send`` for /tf and ``send_static`` for /tf_static (static transforms accumulate by child frame)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._static: dict[str, TransformStamped] = {}
        try:  # a sourced ROS 2 install: behave exactly like everyone else's broadcasters
            import tf2_ros

            self._tf2_dynamic = tf2_ros.TransformBroadcaster(node)
            self._tf2_static = tf2_ros.StaticTransformBroadcaster(node)
            self.backend = "tf2_ros"
        except ImportError:
            self._tf2_dynamic = self._tf2_static = None
            self._pub = node.create_publisher(TFMessage, "/tf", reliable_qos(TF_DEPTH))
            self._pub_static = node.create_publisher(TFMessage, "/tf_static", latched_qos(1))
            self.backend = "tf2_msgs"

    def send(self, transforms: Sequence[TransformStamped]) -> None:
        if self._tf2_dynamic is not None:
            self._tf2_dynamic.sendTransform(list(transforms))
        else:
            self._pub.publish(TFMessage(transforms=list(transforms)))

    def send_static(self, transforms: Sequence[TransformStamped]) -> None:
        if self._tf2_static is not None:
            self._tf2_static.sendTransform(list(transforms))
            return
        for t in transforms:
            self._static[t.child_frame_id] = t
        self._pub_static.publish(TFMessage(transforms=list(self._static.values())))

    def destroy(self) -> None:
        """Destroy the publishers (a lifecycle node's cleanup); the broadcaster is unusable afterwards."""
        publishers = [getattr(b, "pub_tf", None) for b in (self._tf2_dynamic, self._tf2_static) if b is not None]
        publishers += [getattr(self, name, None) for name in ("_pub", "_pub_static")]
        for pub in publishers:
            if pub is not None:
                self._node.destroy_publisher(pub)
        self._static.clear()
