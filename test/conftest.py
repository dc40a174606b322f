"""Shared fixtures: the real-data root and seeded RNGs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from depth_pose_ros.utils.paths import data_root


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the real data ($DEPTH_POSE_DATA, default ../shared/data); skips when absent."""
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set DEPTH_POSE_DATA to its location)")
    return root


@pytest.fixture(scope="session")
def kitti_odometry_dir(data_dir: Path) -> Path:
    path = data_dir / "kitti_odometry"
    if not (path / "sequences" / "06").is_dir():
        pytest.skip(f"KITTI odometry 06 not found under {path}")
    return path


@pytest.fixture(scope="session")
def kitti_flow_dir(data_dir: Path) -> Path:
    path = data_dir / "kitti_flow_2015"
    if not (path / "training").is_dir():
        pytest.skip(f"KITTI 2015 flow not found under {path}")
    return path


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
