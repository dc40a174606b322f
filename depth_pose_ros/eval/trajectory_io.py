"""Trajectory files (KITTI / TUM), re-exported from :mod:`depth_pose_ros.data.trajectory_io`.

The readers and writers live in the data layer because a data reader (``data.kitti_odometry``) needs them
and data may not import eval (``docs/architecture.md``, "Layers"); this module keeps the evaluation's
import path working.
"""
from depth_pose_ros.data.trajectory_io import (
    TRAJECTORY_FORMATS,
    associate,
    read_kitti_poses,
    read_trajectory,
    read_tum_trajectory,
    write_kitti_poses,
    write_tum_trajectory,
)

__all__ = ["TRAJECTORY_FORMATS", "associate", "read_kitti_poses", "read_trajectory", "read_tum_trajectory",
           "write_kitti_poses", "write_tum_trajectory"]
