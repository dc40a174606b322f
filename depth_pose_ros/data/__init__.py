"""data layer of depth_pose_ros: frame sources (KITTI, TUM, folders, video, bags, synthetic) -> Frame.

Only the light-weight entry points are re-exported here; readers and the torch clip dataset
(``depth_pose_ros.data.clips``) are imported from their modules so that importing this package
pulls in neither torch nor rosbags.
"""
from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import FrameSource, open_source

__all__ = ["Frame", "FrameSource", "open_source"]
