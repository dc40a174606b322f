"""eval layer of depth_pose_ros."""
