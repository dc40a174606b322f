"""Where the project finds things on disk; one setting for the real data."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "depth_pose_ros"


def data_root() -> Path:
    """Root of the real datasets: ``$DEPTH_POSE_DATA``, default ``<repo>/../shared/data``."""
    env = os.environ.get("DEPTH_POSE_DATA")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data")


def share_dir(name: str) -> Path:
    """A data folder (``models``, ``config``, ``launch``) of the package.

    The source tree (``pip install -e .``) wins; then the install prefix's ``share/depth_pose_ros``
    (pip data_files, ``colcon build``); then the ament index of a sourced ROS workspace.
    """
    local = REPO_ROOT / name
    if local.is_dir():
        return local
    share = Path(sys.prefix) / "share" / PACKAGE / name
    if share.is_dir():
        return share
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory(PACKAGE)) / name
    except Exception:  # not in a ROS workspace (or not installed there): the source layout
        return local


def models_dir() -> Path:
    """Shipped checkpoints (``models/``)."""
    return share_dir("models")
