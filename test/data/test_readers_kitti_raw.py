"""KITTI raw reader on a tiny hand-made drive: calibration, velodyne depth projection, Eigen split.

Calibration used (all hand-chosen so projections can be computed on paper):
velodyne -> camera 0: the usual axis swap (cam x = -velo y, cam y = -velo z, cam z = velo x), no
translation; R_rect_00 = identity; P_rect_02 = [[100, 0, 20, 0], [0, 100, 15, 0], [0, 0, 1, 0]];
P_rect_03 the same camera 0.5 m to the right; images 40 x 30.
A velodyne point (X, Y, Z) therefore lands at u = 100 * (-Y) / X + 20, v = 100 * (-Z) / X + 15,
depth X.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.kitti_raw import (
    KittiRaw,
    KittiRawSplit,
    parse_kitti_timestamp,
    read_eigen_split,
    read_raw_calibration,
    velodyne_depth_map,
)
from depth_pose_ros.data.source import open_source

W, H = 40, 30
DRIVE = "2011_09_26_drive_0002_sync"


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.12e}" for v in np.asarray(values, float).ravel())


def _write_calib(date_dir: Path, R_rect: np.ndarray | None = None, T: tuple = (0.0, 0.0, 0.0)) -> None:
    P2 = np.array([[100.0, 0, 20, 0], [0, 100, 15, 0], [0, 0, 1, 0]])
    P3 = P2.copy()
    P3[0, 3] = -100.0 * 0.5
    R_rect = np.eye(3) if R_rect is None else R_rect
    date_dir.mkdir(parents=True, exist_ok=True)
    (date_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\ncorner_dist: 9.950000e-02\n"
        f"S_rect_02: {W} {H}\nR_rect_00: {_fmt(R_rect)}\nP_rect_02: {_fmt(P2)}\n"
        f"S_rect_03: {W} {H}\nP_rect_03: {_fmt(P3)}\n")
    R = np.array([[0.0, -1, 0], [0, 0, -1], [1, 0, 0]])
    (date_dir / "calib_velo_to_cam.txt").write_text(
        f"calib_time: 15-Mar-2012 11:37:16\nR: {_fmt(R)}\nT: {_fmt(T)}\ndelta_f: 0 0\ndelta_c: 0 0\n")


# Points in velodyne coordinates, and where they must land (v, u) -> depth.
POINTS = np.array([
    [20.0, 0.0, 0.01, 0.3],   # (15, 20) depth 20, but hidden behind the next point
    [10.0, 0.0, 0.0, 0.5],    # (15, 20) depth 10: nearest wins
    [5.0, -1.0, 0.5, 0.1],    # u = 100*1/5 + 20 = 40: just outside the 40-wide image
    [4.0, 0.2, -0.12, 0.2],   # u = -5 + 20 = 15, v = 3 + 15 = 18, depth 4
    [-5.0, 0.0, 0.0, 0.9],    # behind the scanner (x < 0): dropped (would hit (15, 20) at "depth -5")
    [8.0, 1.6, 0.0, 0.9],     # u = -20 + 20 = 0: first column, depth 8
], dtype=np.float32)
EXPECTED = {(15, 20): 10.0, (18, 15): 4.0, (15, 0): 8.0}


def _write_drive(root: Path, n: int = 3, right: bool = True) -> Path:
    date = root / "2011_09_26"
    _write_calib(date)
    drive = date / DRIVE
    for cam in ("02", "03") if right else ("02",):
        d = drive / f"image_{cam}" / "data"
        d.mkdir(parents=True)
        for i in range(n):
            img = np.full((H, W, 3), (0, 0, 50 * i + (0 if cam == "02" else 1)), np.uint8)
            cv2.imwrite(str(d / f"{i:010d}.png"), img)
        (drive / f"image_{cam}" / "timestamps.txt").write_text(
            "2011-09-26 13:02:25.964389445\n2011-09-26 13:02:26.068083111\n2011-09-26 13:02:26.171758236\n")
    velo = drive / "velodyne_points" / "data"
    velo.mkdir(parents=True)
    for i in range(n):
        if i != 2:  # frame 2 has no scan
            (POINTS + np.array([0, 0, 0, 0], np.float32)).tofile(velo / f"{i:010d}.bin")
    return drive


def test_depth_projection_hand_computed(tmp_path: Path) -> None:
    _write_calib(tmp_path)
    calib = read_raw_calibration(tmp_path)
    depth = velodyne_depth_map(POINTS, calib.velo_to_image("02"), H, W)
    assert depth.shape == (H, W) and depth.dtype == np.float32
    got = {(int(v), int(u)): float(depth[v, u]) for v, u in zip(*np.nonzero(depth))}
    assert got == pytest.approx(EXPECTED)


def test_depth_projection_legacy_offset_shifts_by_one(tmp_path: Path) -> None:
    _write_calib(tmp_path)
    calib = read_raw_calibration(tmp_path)
    depth = velodyne_depth_map(POINTS, calib.velo_to_image("02"), H, W, legacy_pixel_offset=True)
    got = {(int(v), int(u)): float(depth[v, u]) for v, u in zip(*np.nonzero(depth))}
    # everything moves up-left by one pixel: the column-0 point falls off the image, the point just
    # right of it (u = 40, v = 5) comes in
    assert got == pytest.approx({(14, 19): 10.0, (17, 14): 4.0, (4, 39): 5.0})


def test_depth_projection_uses_translation_and_rectification(tmp_path: Path) -> None:
    # velo->cam translation T = (0, 0, -1): camera depth = X - 1
    _write_calib(tmp_path / "a", T=(0.0, 0.0, -1.0))
    calib = read_raw_calibration(tmp_path / "a")
    depth = velodyne_depth_map(np.array([[10.0, 0, 0, 1]]), calib.velo_to_image("02"), H, W)
    assert depth[15, 20] == pytest.approx(9.0) and np.count_nonzero(depth) == 1
    # R_rect_00 = 90 deg about the optical axis: camera point (1, 0, 10) -> rectified (0, 1, 10)
    Rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    _write_calib(tmp_path / "b", R_rect=Rz)
    calib = read_raw_calibration(tmp_path / "b")
    depth = velodyne_depth_map(np.array([[10.0, -1.0, 0, 1]]), calib.velo_to_image("02"), H, W)
    assert depth[25, 20] == pytest.approx(10.0) and np.count_nonzero(depth) == 1


def test_drive_reader(tmp_path: Path) -> None:
    drive = _write_drive(tmp_path)
    src = KittiRaw(drive, stereo=True)
    assert len(src) == 3 and src.has_gt_depth and src.has_stereo and not src.has_gt_pose
    np.testing.assert_allclose(src.K, [[100, 0, 20], [0, 100, 15], [0, 0, 1]])
    assert src.baseline == pytest.approx(0.5)
    f = src[1]
    assert f.index == 1 and f.image.shape == (H, W, 3)
    assert tuple(f.image[0, 0]) == (50, 0, 0)  # BGR (0, 0, 50) on disk -> RGB red 50
    assert tuple(f.stereo_image[0, 0]) == (51, 0, 0)
    got = {(int(v), int(u)): float(f.depth[v, u]) for v, u in zip(*np.nonzero(f.depth))}
    assert got == pytest.approx(EXPECTED)
    assert src[2].depth is None  # no scan for frame 2
    np.testing.assert_allclose(np.diff(src.stamps()), [0.103693666, 0.103675125], atol=1e-6)
    right = KittiRaw(drive, calib_dir=tmp_path / "2011_09_26", camera="right", stereo=True)
    assert right.baseline == pytest.approx(-0.5)
    assert tuple(right[0].image[0, 0]) == (1, 0, 0)
    assert isinstance(open_source(drive), KittiRaw)


def test_timestamp_parse() -> None:
    a = parse_kitti_timestamp("2011-09-26 13:02:25.964389445")
    b = parse_kitti_timestamp("2011-09-26 13:02:26.068083111")
    assert b - a == pytest.approx(0.103693666, abs=1e-6)
    assert a == pytest.approx(1317042145.964389445, abs=1e-5)  # UTC


def test_eigen_split(tmp_path: Path) -> None:
    _write_drive(tmp_path)
    split = tmp_path / "test_files.txt"
    split.write_text(f"2011_09_26/{DRIVE} 0000000001 l\n\n2011_09_26/{DRIVE} 0 r\n")
    entries = read_eigen_split(split)
    assert [(e.date, e.frame, e.side) for e in entries] == [("2011_09_26", 1, "l"), ("2011_09_26", 0, "r")]
    src = KittiRawSplit(tmp_path, split)
    assert len(src) == 2 and src.has_gt_depth
    a, b = src[0], src[1]
    assert a.index == 1 and tuple(a.image[0, 0]) == (50, 0, 0)
    assert b.index == 0 and tuple(b.image[0, 0]) == (1, 0, 0)  # right camera
    assert a.depth[15, 20] == pytest.approx(10.0)
    assert src.stamps()[0] > src.stamps()[1]
    split.write_text(f"2011_09_26/{DRIVE} 0000000001 x\n")
    with pytest.raises(ValueError, match="test_files.txt:1"):
        read_eigen_split(split)
    split.write_text(f"2011_09_26/{DRIVE} 7 l\n")
    with pytest.raises(IndexError, match="0000000007"):
        KittiRawSplit(tmp_path, split)[0]


def test_errors_name_the_file(tmp_path: Path) -> None:
    drive = _write_drive(tmp_path, right=False)
    with pytest.raises(FileNotFoundError, match="image_03"):
        KittiRaw(drive, stereo=True)
    (drive / "velodyne_points" / "data" / "0000000001.bin").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="0000000001.bin"):
        KittiRaw(drive)[1]
    with pytest.raises(FileNotFoundError, match="calib_cam_to_cam.txt"):
        KittiRaw(drive, calib_dir=tmp_path)
    (tmp_path / "2011_09_26" / "calib_velo_to_cam.txt").write_text("R: 1 0 0\n")
    with pytest.raises(ValueError, match="calib_velo_to_cam.txt"):
        KittiRaw(drive)
