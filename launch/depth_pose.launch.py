"""Run ``depth_pose_node`` on a camera, optionally with rviz2.

``ros2 launch depth_pose_ros depth_pose.launch.py image:=/camera/image_raw camera_info:=/camera/camera_info
[params_file:=/path/params.yaml] [checkpoint:=/path/models/my_car] [rviz:=true] [lifecycle:=true]``

Thin on purpose: every node setting lives in the params file (default ``config/default.yaml``, the file
the node tests run with); this file only remaps the camera topics, points rviz2 at
``config/depth_pose.rviz`` and, when ``checkpoint`` is given (a model folder such as ``depth-pose finetune``
writes, or its weights), sets that one parameter over the params file -- left empty, the params file's
``checkpoint`` stands. With ``topics.use_compressed: true`` in the params file the node
subscribes ``<image>/compressed``, remapped here too. ``lifecycle:=true`` starts the managed variant
(``depth_pose_lifecycle_node``, same name, parameters and outputs), which waits unconfigured for a
lifecycle manager or ``ros2 lifecycle set /depth_pose_node configure`` / ``activate``. Needs ``launch``
and ``launch_ros`` (a sourced
ROS 2 install); without them run ``depth_pose_node --ros-args --params-file config/default.yaml
-r image:=... -r camera_info:=...``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def _depth_pose_nodes(context, *args, **kwargs) -> list:
    """The node (plain or managed, by ``lifecycle``), built at launch time so that an empty ``checkpoint``
    adds no parameter at all (an empty string would override the params file's model)."""
    image = LaunchConfiguration("image")
    checkpoint = LaunchConfiguration("checkpoint").perform(context).strip()
    parameters = [LaunchConfiguration("params_file")] + ([{"checkpoint": checkpoint}] if checkpoint else [])
    return [Node(
        package="depth_pose_ros",
        executable=executable,
        name="depth_pose_node",
        parameters=parameters,
        remappings=[("image", image), ("image/compressed", [image, "/compressed"]),
                    ("camera_info", LaunchConfiguration("camera_info"))],
        condition=condition(LaunchConfiguration("lifecycle")),
        output="screen",
        emulate_tty=True,
    ) for executable, condition in (("depth_pose_node", UnlessCondition), ("depth_pose_lifecycle_node", IfCondition))]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("depth_pose_ros")
    return LaunchDescription([
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="sensor_msgs/Image topic of the camera (its /compressed with "
                                          "topics.use_compressed)."),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="sensor_msgs/CameraInfo topic of the camera."),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "default.yaml"),
                              description="depth_pose_node parameters (YAML), e.g. config/kitti.yaml."),
        DeclareLaunchArgument("checkpoint", default_value="",
                              description="Model folder or weights (e.g. models/my_car from depth-pose finetune); "
                                          "empty: the params file's checkpoint."),
        DeclareLaunchArgument("rviz", default_value="false", description="Start rviz2 with depth_pose.rviz."),
        DeclareLaunchArgument("lifecycle", default_value="false",
                              description="Start depth_pose_lifecycle_node (managed, starts unconfigured)."),
        OpaqueFunction(function=_depth_pose_nodes),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(share, "config", "depth_pose.rviz")],
            condition=IfCondition(LaunchConfiguration("rviz")),
            output="screen",
        ),
    ])
