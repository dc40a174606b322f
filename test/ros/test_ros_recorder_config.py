"""config/recorder.yaml and launch/record.launch.py agree with the node's declared parameters."""
from __future__ import annotations

import ast

import pytest
import yaml

from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.ros

CONFIG = REPO_ROOT / "config" / "recorder.yaml"
LAUNCH = REPO_ROOT / "launch" / "record.launch.py"


def test_params_file_is_read_by_the_node_through_rcl(ros_env, tmp_path):
    from depth_pose_ros.ros.bag_recorder import BagRecorder
    from depth_pose_ros.ros.node_runner import ros_session

    params = yaml.safe_load(CONFIG.read_text())["bag_recorder"]["ros__parameters"]
    args = ["bag_recorder", "--ros-args", "--params-file", str(CONFIG), "-p", f"output_dir:={tmp_path / 'out'}"]
    with ros_session(args) as (context, _stop):
        node = BagRecorder(context=context)
        try:
            from rclpy.node import Node

            builtin = set(Node("probe", context=context).get_parameters_by_prefix(""))
            declared = set(node.get_parameters_by_prefix("")) - builtin
            assert declared == set(params), "recorder.yaml and the node's parameters differ"
            for name, value in params.items():
                expected = str(tmp_path / "out") if name == "output_dir" else value
                assert node.get_parameter(name).value == expected, name
            for name in declared:  # every parameter explains itself (ros2 param describe)
                assert node.describe_parameter(name).description, name
        finally:
            node.close()
            node.destroy_node()
    assert not (tmp_path / "out").exists()  # nothing received, so no empty bag is left behind


def test_launch_file_is_valid_python_and_only_points_at_the_yaml():
    tree = ast.parse(LAUNCH.read_text(), filename=str(LAUNCH))
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert "generate_launch_description" in functions
    compile(tree, str(LAUNCH), "exec")
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"recorder.yaml", "bag_recorder", "depth_pose_ros"} <= strings
    # Thin: parameters come from the YAML only, none are set inline.
    assert not any(isinstance(n, ast.Dict) for n in ast.walk(tree))
