"""Record camera topics into a rosbag2 with the project's ``bag_recorder``.

``ros2 launch depth_pose_ros record.launch.py [params_file:=/path/recorder.yaml]``

Thin on purpose: every recorder setting lives in ``config/recorder.yaml`` (one place for
defaults); this file only points the node at it. Needs ``launch`` and ``launch_ros`` (a sourced
ROS 2 install); without them run ``bag_recorder --ros-args --params-file config/recorder.yaml``.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    default_params = os.path.join(get_package_share_directory("depth_pose_ros"), "config", "recorder.yaml")
    params_file = LaunchConfiguration("params_file")
    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=default_params, description="bag_recorder parameters (YAML)."
        ),
        Node(
            package="depth_pose_ros",
            executable="bag_recorder",
            name="bag_recorder",
            parameters=[params_file],
            output="screen",
            emulate_tty=True,
        ),
    ])
