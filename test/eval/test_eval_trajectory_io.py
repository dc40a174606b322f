"""KITTI / TUM trajectory files: round trips, the real KITTI 06 poses, malformed lines, association."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from depth_pose_ros.data.trajectory_io import (
    associate,
    read_kitti_poses,
    read_trajectory,
    read_tum_trajectory,
    write_kitti_poses,
    write_tum_trajectory,
)


def _random_poses(rng: np.random.Generator, n: int) -> np.ndarray:
    T = np.tile(np.eye(4), (n, 1, 1))
    T[:, :3, :3] = Rotation.random(n, random_state=1).as_matrix()
    T[:, :3, 3] = rng.normal(scale=20, size=(n, 3))
    return T


def test_kitti_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    T = _random_poses(rng, 7)
    write_kitti_poses(tmp_path / "sub" / "traj.txt", T)
    lines = (tmp_path / "sub" / "traj.txt").read_text().splitlines()
    assert len(lines) == 7 and len(lines[0].split()) == 12
    np.testing.assert_allclose(read_kitti_poses(tmp_path / "sub" / "traj.txt"), T, atol=1e-7)


def test_tum_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    T = _random_poses(rng, 5)
    stamps = 1305031102.175304 + 0.033 * np.arange(5)
    write_tum_trajectory(tmp_path / "traj.tum", stamps, T)
    s2, T2 = read_tum_trajectory(tmp_path / "traj.tum")
    np.testing.assert_allclose(s2, stamps, atol=1e-6)
    np.testing.assert_allclose(T2, T, atol=1e-8)
    s3, T3 = read_trajectory(tmp_path / "traj.tum", "tum")
    np.testing.assert_array_equal(T3, T2)


def test_tum_hand_written_line_quaternion_order(tmp_path: Path) -> None:
    # 90 deg about z, scalar last: (0, 0, sin 45, cos 45); a comment and a blank line are skipped
    q = np.sqrt(0.5)
    (tmp_path / "t.txt").write_text(f"# stamp tx ty tz qx qy qz qw\n\n1.5 1 2 3 0 0 {q} {q}\n")
    stamps, T = read_tum_trajectory(tmp_path / "t.txt")
    assert stamps.tolist() == [1.5]
    np.testing.assert_allclose(T[0, :3, 3], [1, 2, 3])
    np.testing.assert_allclose(T[0, :3, :3] @ [1.0, 0, 0], [0, 1, 0], atol=1e-12)


def test_real_kitti_06_poses(kitti_odometry_dir: Path) -> None:
    stamps, T = read_trajectory(kitti_odometry_dir / "poses" / "06.txt", "kitti")
    assert stamps is None and T.shape == (51, 4, 4)
    np.testing.assert_allclose(T[0], np.eye(4), atol=1e-9)
    assert T[1, 2, 3] == pytest.approx(1.198998)  # second line, tz (driving forward)


def test_malformed_lines_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(ValueError, match=r"bad\.txt:2: expected 12 numbers, got 11"):
        read_kitti_poses(bad)
    bad.write_text("1 0 0 0 0 1 0 0 0 0 1 x\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: not a number"):
        read_kitti_poses(bad)
    bad.write_text("0.0 1 2 3 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: zero quaternion"):
        read_tum_trajectory(bad)
    bad.write_text("1 2 3 0 0 0 1\n")  # stamp missing
    with pytest.raises(ValueError, match=r"bad\.txt:1: expected 8 numbers, got 7"):
        read_tum_trajectory(bad)
    bad.write_text("# only a comment\n")
    with pytest.raises(ValueError, match="no poses"):
        read_kitti_poses(bad)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_kitti_poses(tmp_path / "missing.txt")
    with pytest.raises(ValueError, match="unknown trajectory format"):
        read_trajectory(bad, "euroc")
    with pytest.raises(ValueError, match="stamps for"):
        write_tum_trajectory(tmp_path / "x.txt", [0.0], np.tile(np.eye(4), (2, 1, 1)))


def test_associate_greedy_one_to_one() -> None:
    ia, ib = associate([0.0, 1.0, 2.0], [0.01, 1.5, 2.005], max_dt=0.02)
    assert ia.tolist() == [0, 2] and ib.tolist() == [0, 2]
    # two stamps compete for one: the closer wins, the other stays unmatched
    ia, ib = associate([0.0, 0.012], [0.01], max_dt=0.02)
    assert ia.tolist() == [1] and ib.tolist() == [0]
    ia, ib = associate([], [1.0])
    assert ia.size == 0 and ib.size == 0
