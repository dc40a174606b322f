"""Relative-pose error definitions shared by the VO, the two-view tests and eval."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from depth_pose_ros.geometry.pose_error import (
    relative_pose,
    relative_pose_errors,
    relative_poses,
    rotation_error_deg,
    trajectory_relative_errors,
    translation_direction_error_deg,
)
from depth_pose_ros.geometry.se3 import make_pose_np


def test_relative_pose_convention():
    """Camera 2 is 1 m ahead of camera 1: a point 5 m ahead of camera 1 is 4 m ahead of camera 2."""
    T_w1 = np.eye(4)
    T_w2 = make_pose_np(np.eye(3), [0.0, 0.0, 1.0])
    T_21 = relative_pose(T_w1, T_w2)
    assert (T_21 @ [0.0, 0.0, 5.0, 1.0])[:3] == pytest.approx([0.0, 0.0, 4.0])
    traj = np.stack([T_w1, T_w2, T_w2 @ T_w2])
    assert relative_poses(traj).shape == (2, 4, 4)
    assert relative_poses(traj)[1] == pytest.approx(T_21)
    with pytest.raises(ValueError, match="Nx4x4"):
        relative_poses(np.eye(4))


def test_rotation_error_hand_values_and_tiny_angles():
    R1 = Rotation.from_euler("x", 1.0, degrees=True).as_matrix()
    assert rotation_error_deg(R1, np.eye(3)) == pytest.approx(1.0)
    tiny = Rotation.from_rotvec([0.0, 1e-7, 0.0]).as_matrix()  # 5.7e-6 deg: arccos would give 0
    assert rotation_error_deg(tiny, np.eye(3)) == pytest.approx(np.degrees(1e-7), rel=1e-6)
    big = Rotation.from_euler("z", 179.0, degrees=True).as_matrix()
    assert rotation_error_deg(np.eye(3), big) == pytest.approx(179.0)
    stack = np.stack([R1, tiny])
    assert rotation_error_deg(stack, np.eye(3)).shape == (2,)


def test_translation_direction_error():
    assert translation_direction_error_deg([1.0, 0, 0], [1.0, 1.0, 0]) == pytest.approx(45.0)
    assert translation_direction_error_deg([0, 0, 2.0], [0, 0, -0.1]) == pytest.approx(180.0)
    assert np.isnan(translation_direction_error_deg([0.0, 0, 0], [1.0, 0, 0]))


def test_relative_and_trajectory_errors():
    T_gt = make_pose_np(np.eye(3), [0.0, 0.0, 1.0])
    T_est = make_pose_np(Rotation.from_euler("y", 0.5, degrees=True).as_matrix(), [0.0, 1.0, 1.0])
    rot, tdir = relative_pose_errors(T_est, T_gt)
    assert rot == pytest.approx(0.5) and tdir == pytest.approx(45.0)
    gt = np.stack([np.eye(4), np.linalg.inv(T_gt)])  # T_world_cam of the frame 1 m ahead
    pred = np.stack([np.eye(4), np.linalg.inv(T_est)])
    rot, tdir = trajectory_relative_errors(pred, gt)
    assert rot[0] == pytest.approx(0.5) and tdir[0] == pytest.approx(45.0)
    with pytest.raises(ValueError, match="shape"):
        trajectory_relative_errors(pred, gt[:1])


def test_pose_error_and_se3_np_do_not_import_torch():
    """Evaluation code uses these; they must stay importable without torch (fast, light)."""
    import subprocess
    import sys

    code = ("import sys, depth_pose_ros.geometry.pose_error, depth_pose_ros.geometry.se3_np; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
