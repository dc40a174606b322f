"""``depth_pose_lifecycle_node``: ``depth_pose_node`` as a managed (lifecycle) node, same settings and outputs.

Robots bring perception up in steps (a lifecycle manager, or ``ros2 lifecycle set /depth_pose_node
configure``), so the node's work is split over the standard transitions:

* constructor (unconfigured): the parameters are declared (unknown names still stop the process);
* ``configure``: parameters parsed, model loaded and warmed up, publishers created (lifecycle
  publishers: silent until activated) with the TF broadcaster and ``~/reset``. A bad parameter or an
  unusable model (e.g. ``device: cuda`` without CUDA) fails the transition with one error line;
* ``activate``: publishers enabled, worker thread, diagnostics and path timers, static TF, then the
  image / camera_info subscriptions: frames are processed and every output appears;
* ``deactivate``: subscriptions and timers removed, worker stopped -- nothing is published; the model
  and the odometry stay, so a later ``activate`` continues (the stamp gap restarts the tracking only);
* ``cleanup``: publishers and services destroyed, the model released (back to unconfigured);
* ``shutdown``: whatever is running is stopped.

The node is named ``depth_pose_node`` like the plain one, so the same parameters files apply.
"""
from __future__ import annotations

import sys
from typing import Optional

from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from depth_pose_ros.ros.node_core import DepthPoseCore, run_node
from depth_pose_ros.ros.node_params import NODE_NAME

__all__ = ["DepthPoseLifecycleNode", "main"]


class DepthPoseLifecycleNode(DepthPoseCore, LifecycleNode):
    """The managed node; see the module docstring. Starts unconfigured."""

    def __init__(self, **node_kwargs) -> None:
        LifecycleNode.__init__(self, NODE_NAME, **node_kwargs)
        self._declare_node_parameters()
        self._configured = False
        self._active = False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
            self._create_outputs(lifecycle=True)
        except (ValueError, OSError) as exc:  # bad parameters / model: one line, stay unconfigured
            self.get_logger().error(f"configure failed: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self._configured = True
        self.get_logger().info("configured: model loaded; activate to start processing")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the lifecycle publishers
        if result != TransitionCallbackReturn.SUCCESS:
            return result
        self._start_processing()
        self._active = True
        return TransitionCallbackReturn.SUCCESS

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self.get_logger().info("deactivated: subscriptions removed, nothing is published")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.shutdown()
        return TransitionCallbackReturn.SUCCESS  # back to unconfigured, ready for a new configure

    def shutdown(self) -> None:
        """Stop everything that runs and release the model (process exit, shutdown transition)."""
        self._deactivate()
        self._release()

    def _deactivate(self) -> None:
        if self._active:
            self._active = False
            self._stop_processing()

    def _release(self) -> None:
        if getattr(self, "settings", None) is not None and hasattr(self, "_reset_service"):
            self._destroy_outputs()
        self.estimator = None
        self._configured = False


def main(args: Optional[list[str]] = None) -> int:
    """Entry point ``depth_pose_lifecycle_node``: an unconfigured managed node until SIGINT / SIGTERM."""
    return run_node(lambda context: DepthPoseLifecycleNode(context=context), args)


if __name__ == "__main__":
    sys.exit(main())
