"""ament_python / pip set-up for depth_pose_ros.

torch is deliberately not in ``install_requires``: pip would otherwise resolve the newest CUDA
build (several GB). ``scripts/setup.sh`` installs the pinned CPU build only when no torch imports,
so GPU users install their own build first. ROS 2 packages (rclpy, message packages) come from a
sourced ROS 2 or from the PyPI wheels installed by the same script.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_pose_ros"


def _tree(folder: str) -> list[tuple[str, list[str]]]:
    """data_files entries installing ``folder`` recursively under share/PACKAGE/folder."""
    entries: dict[str, list[str]] = {}
    for path in glob(f"{folder}/**/*", recursive=True):
        if "/__pycache__" in path or not _is_file(path):
            continue
        dest = f"share/{PACKAGE}/" + path.rsplit("/", 1)[0]
        entries.setdefault(dest, []).append(path)
    return sorted(entries.items())


def _is_file(path: str) -> bool:
    import os

    return os.path.isfile(path)


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*", "training", "training.*"]),
    package_data={"training": ["configs/*.yaml"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *_tree("launch"),
        *_tree("config"),
        *_tree("models"),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.26",
        "opencv-python-headless>=4.8",
        "pyyaml>=6",
        "scipy>=1.10",
        "rosbags>=0.10",
        "safetensors>=0.4",
        "tqdm>=4.60",
        "tensorboard>=2.14",
    ],
    extras_require={
        "dev": ["pytest>=8", "ruff>=0.6", "mypy==2.4.0", "onnx>=1.16", "onnxruntime>=1.18"],
        "export": ["onnx>=1.16", "onnxruntime>=1.18"],
    },
    zip_safe=True,
    maintainer="depth_pose_ros maintainers",
    maintainer_email="maintainers@depth-pose-ros.invalid",
    description="Self-supervised monocular depth, optical flow and ego-motion for ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "depth-pose = depth_pose_ros.cli:main",
            "depth_pose_node = depth_pose_ros.ros.depth_pose_node:main",
            "depth_pose_lifecycle_node = depth_pose_ros.ros.depth_pose_lifecycle_node:main",
            "bag_recorder = depth_pose_ros.ros.bag_recorder:main",
            "bag_player = depth_pose_ros.ros.bag_player:main",
        ],
    },
)
