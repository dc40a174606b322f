"""What the node's mixins may assume of the node they are mixed into, for the type checker only.

``DepthPoseCore`` is assembled from role mixins (``node_inputs``, ``node_pairing``, ``node_outputs``,
``node_problems``) and becomes a real ``rclpy`` node only in ``depth_pose_node`` / ``depth_pose_lifecycle_node``
(``Node`` or ``LifecycleNode``). Each mixin calls node methods (``create_subscription``, ``get_clock``, ...) and
a few methods of its sibling mixins. :class:`NodeHost` states that contract once: under type checking it is a
``LifecycleNode`` (the richer of the two hosts) with the sibling callbacks declared; at run time it is
``object``, so the mixins add nothing to the real class hierarchy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rclpy.lifecycle import LifecycleNode

    class NodeHost(LifecycleNode):
        """The assembled node, as the mixins see it."""

        _parameters: dict[str, Any]  # rclpy.node.Node's declared parameters (not public API)

        def _on_image(self, msg: Any, compressed: bool) -> None: ...

        def _on_camera_info(self, msg: Any) -> None: ...

        def _on_stereo_image(self, msg: Any) -> None: ...
else:
    NodeHost = object
