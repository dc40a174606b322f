"""The node's parameter files, launch file and rviz config agree with the node.

``launch`` / ``launch_ros`` are not installable here, so the launch file is compiled, checked on its
AST, and executed against small stand-ins of the launch classes that only record their arguments.
"""
from __future__ import annotations

import ast
import py_compile
import re
import sys
import types

import pytest
import yaml

from depth_pose_ros.ros.node_params import (
    ESTIMATOR_PARAMS,
    NODE_NAME,
    PARAMETER_NAMES,
    defaults,
    params_from_yaml,
    settings_from_params_file,
)
from depth_pose_ros.utils.paths import REPO_ROOT

CONFIG = REPO_ROOT / "config"
LAUNCH = REPO_ROOT / "launch" / "depth_pose.launch.py"


def test_default_yaml_lists_every_parameter_with_its_default():
    """Node parameters are set with their defaults; estimator settings are listed in a comment block with
    EstimatorConfig's defaults but left unset, so loading the file never overrides a model's estimator.yaml."""
    values = params_from_yaml(CONFIG / "default.yaml")
    assert set(values) == PARAMETER_NAMES - set(ESTIMATOR_PARAMS)
    for name, default in defaults().items():
        if name not in ESTIMATOR_PARAMS:
            assert values[name] == pytest.approx(default, abs=1e-9), name
    text = (CONFIG / "default.yaml").read_text()
    block = text[text.index("(ESTIMATOR-SETTINGS)"):text.index("(end of ESTIMATOR-SETTINGS)")]
    listed = {}
    for line in block.splitlines():
        m = re.match(r"\s*#\s+([a-z_.]+): (\S+)", line)
        if m:
            listed[m.group(1)] = yaml.safe_load(m.group(2))
    assert set(listed) == set(ESTIMATOR_PARAMS)
    for name, value in listed.items():
        assert value == pytest.approx(defaults()[name]) if isinstance(value, float) else value == defaults()[name], name
    settings_from_params_file(CONFIG / "default.yaml")


def test_kitti_yaml_is_valid_and_gives_kitti_intrinsics():
    values = params_from_yaml(CONFIG / "kitti.yaml")
    assert set(values) <= PARAMETER_NAMES
    s = settings_from_params_file(CONFIG / "kitti.yaml")
    assert s.fallback_K[0, 0] == pytest.approx(707.0912) and s.fallback_K[1, 2] == pytest.approx(183.1104)
    assert s.estimator.scale.source == "camera_height" and s.camera_frame == "camera_0"


class _Recorder:
    """Stand-in for a launch class: keeps its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _Unless(_Recorder):
    """Stand-in for UnlessCondition (told apart from IfCondition by its class)."""


class _Config(str):
    """Stand-in for LaunchConfiguration: ``$(name)``, and ``perform(context)`` looks the name up."""

    def __new__(cls, name: str) -> _Config:
        obj = super().__new__(cls, f"$({name})")
        obj.name = name
        return obj

    def perform(self, context: dict) -> str:
        return context[self.name]


def _launch_stubs() -> dict[str, types.ModuleType]:
    mods = {}
    for name, attrs in {
        "launch": {"LaunchDescription": _Recorder},
        "launch.actions": {"DeclareLaunchArgument": _Recorder, "OpaqueFunction": _Recorder},
        "launch.conditions": {"IfCondition": _Recorder, "UnlessCondition": _Unless},
        "launch.substitutions": {"LaunchConfiguration": _Config},
        "launch_ros": {},
        "launch_ros.actions": {"Node": _Recorder},
        "ament_index_python": {},
        "ament_index_python.packages": {"get_package_share_directory": lambda pkg: f"/share/{pkg}"},
    }.items():
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        mods[name] = mod
    return mods


def test_launch_file_compiles_and_wires_node_params_and_rviz(monkeypatch, tmp_path):
    py_compile.compile(str(LAUNCH), cfile=str(tmp_path / "launch.pyc"), doraise=True)
    tree = ast.parse(LAUNCH.read_text())
    assert "generate_launch_description" in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}

    for name, mod in _launch_stubs().items():
        monkeypatch.setitem(sys.modules, name, mod)
    namespace: dict = {}
    exec(compile(LAUNCH.read_text(), str(LAUNCH), "exec"), namespace)
    entities = namespace["generate_launch_description"]().args[0]
    arguments = {e.args[0]: e.kwargs["default_value"] for e in entities if "default_value" in e.kwargs}
    assert arguments == {"image": "/camera/image_raw", "camera_info": "/camera/camera_info",
                         "params_file": "/share/depth_pose_ros/config/default.yaml", "checkpoint": "", "rviz": "false",
                         "lifecycle": "false"}
    (rviz,) = [e for e in entities if "executable" in e.kwargs]
    (opaque,) = [e for e in entities if "function" in e.kwargs]
    for checkpoint, parameters in (("", ["$(params_file)"]),  # everything else comes from the YAML
                                   (" /m/my_car ", ["$(params_file)", {"checkpoint": "/m/my_car"}])):
        node, managed = opaque.kwargs["function"]({"checkpoint": checkpoint})
        for n, executable in ((node, "depth_pose_node"), (managed, "depth_pose_lifecycle_node")):
            assert (n.kwargs["executable"], n.kwargs["name"]) == (executable, NODE_NAME)
            assert n.kwargs["parameters"] == parameters
            assert dict(n.kwargs["remappings"]) == {"image": "$(image)", "camera_info": "$(camera_info)",
                                                    "image/compressed": ["$(image)", "/compressed"]}
        # exactly one of the two runs: the plain node unless lifecycle:=true
        assert isinstance(node.kwargs["condition"], _Unless) and node.kwargs["condition"].args == ("$(lifecycle)",)
        assert not isinstance(managed.kwargs["condition"], _Unless) and managed.kwargs["condition"].args == \
            ("$(lifecycle)",)
    assert rviz.kwargs["executable"] == "rviz2"
    assert rviz.kwargs["arguments"] == ["-d", "/share/depth_pose_ros/config/depth_pose.rviz"]
    assert rviz.kwargs["condition"].args == ("$(rviz)",)
    assert (REPO_ROOT / "config" / "default.yaml").is_file() and (REPO_ROOT / "config" / "depth_pose.rviz").is_file()


def test_rviz_config_shows_the_node_outputs_in_odom():
    cfg = yaml.safe_load((CONFIG / "depth_pose.rviz").read_text())
    manager = cfg["Visualization Manager"]
    assert manager["Global Options"]["Fixed Frame"] == "odom"
    displays = {d["Name"]: d for d in manager["Displays"]}
    kinds = {d["Class"] for d in displays.values()}
    assert {"rviz_default_plugins/TF", "rviz_default_plugins/Image", "rviz_default_plugins/PointCloud2",
            "rviz_default_plugins/Odometry", "rviz_default_plugins/Path"} <= kinds
    topics = {d["Class"].split("/")[-1] + ":" + d["Topic"]["Value"] for d in displays.values() if "Topic" in d}
    assert topics == {"Image:/camera/image_raw", "Image:/depth/colored", "PointCloud2:/points",
                      "PointCloud2:/points/triangulated", "Odometry:/odom", "Path:/path"}
    assert displays["Cloud"]["Color Transformer"] == "RGB8"  # the cloud carries packed rgb
    assert all(d["Enabled"] for d in displays.values())
