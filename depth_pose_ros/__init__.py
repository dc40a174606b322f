"""depth_pose_ros: self-supervised monocular depth, flow and ego-motion, with ROS 2 nodes.

The core (``geometry``, ``data``, ``eval``, ``nets``, ``estimator``) imports no ROS package, so it
runs and is tested without rclpy; ``depth_pose_ros.ros`` is the thin ROS 2 layer on top.
"""

__version__ = "0.1.0"
