"""eval layer of depth_pose_ros: depth, pose and flow metrics, trajectory IO, Umeyama alignment, and a
stereo (SGBM) pseudo ground-truth depth for real sequences without lidar.

Imports no network code and no ROS. The per-frame pose errors come from ``geometry.pose_error``
(one definition project-wide; it and ``geometry.se3_np`` import no torch).
"""
from depth_pose_ros.data.trajectory_io import (
    associate,
    read_kitti_poses,
    read_trajectory,
    read_tum_trajectory,
    write_kitti_poses,
    write_tum_trajectory,
)
from depth_pose_ros.eval.align import Sim3, least_squares_scale, umeyama
from depth_pose_ros.eval.depth_metrics import DepthMetricAccumulator, depth_metrics, garg_crop_mask
from depth_pose_ros.eval.flow_metrics import (
    FlowMetricAccumulator,
    flow_metrics,
    resize_flow,
    zero_flow_metrics,
)
from depth_pose_ros.eval.pose_metrics import (
    ate_gt_scale,
    ate_sim3,
    ate_snippets,
    kitti_odometry_errors,
    pose_summary,
    relative_pose_errors_deg,
    relative_rotation_errors_deg,
    rpe,
    translation_direction_errors_deg,
)
from depth_pose_ros.eval.stereo_pseudo_gt import StereoPseudoGT, StereoPseudoGTConfig, stereo_pseudo_gt

__all__ = [
    "DepthMetricAccumulator",
    "FlowMetricAccumulator",
    "Sim3",
    "StereoPseudoGT",
    "StereoPseudoGTConfig",
    "associate",
    "ate_gt_scale",
    "ate_sim3",
    "ate_snippets",
    "depth_metrics",
    "flow_metrics",
    "garg_crop_mask",
    "kitti_odometry_errors",
    "least_squares_scale",
    "pose_summary",
    "read_kitti_poses",
    "read_trajectory",
    "read_tum_trajectory",
    "relative_pose_errors_deg",
    "relative_rotation_errors_deg",
    "resize_flow",
    "rpe",
    "stereo_pseudo_gt",
    "translation_direction_errors_deg",
    "umeyama",
    "write_kitti_poses",
    "write_tum_trajectory",
    "zero_flow_metrics",
]
