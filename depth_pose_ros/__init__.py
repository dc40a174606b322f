"""depth_pose_ros: self-supervised monocular depth, flow and ego-motion, with ROS 2 nodes.

Everything but ``depth_pose_ros.ros`` (``utils``, ``geometry``, ``data``, ``nets``, ``losses``, ``eval``,
``pipeline``, ``commands``) imports no ROS package, so it runs and is tested without rclpy;
``depth_pose_ros.ros`` is the thin ROS 2 layer on top (layer rules: ``docs/architecture.md``, "Layers").
"""

__version__ = "0.1.0"
