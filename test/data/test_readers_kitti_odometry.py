"""KITTI odometry reader: the real sequence 06 snippet and a hand-made layout like the synthetic writer's."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.kitti_flow import read_kitti_flow_png, write_kitti_flow_png
from depth_pose_ros.data.kitti_odometry import KittiOdometry, read_kitti_calib, read_kitti_poses
from depth_pose_ros.data.source import FrameSource, open_source
from depth_pose_ros.data.synthetic import SyntheticSequence, write_kitti_layout


# ---- real data ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seq06(kitti_odometry_dir: Path) -> KittiOdometry:
    return KittiOdometry(kitti_odometry_dir, sequence="06")


@pytest.mark.data
def test_real_sequence_basics(seq06: KittiOdometry, kitti_odometry_dir: Path) -> None:
    assert isinstance(seq06, FrameSource)
    assert len(seq06) == 51
    assert seq06.has_gt_pose and not seq06.has_gt_depth and not seq06.has_stereo
    assert seq06.fps == 10.0
    f = seq06[7]
    assert f.image.shape == (370, 1226) and f.image.dtype == np.uint8
    assert f.index == 7 and f.stamp == pytest.approx(0.7)
    assert f.K.dtype == np.float64
    np.testing.assert_allclose(f.K, [[707.0912, 0, 601.8873], [0, 707.0912, 183.1104], [0, 0, 1]])
    # pixels equal a direct cv2 read of the file
    direct = cv2.imread(str(kitti_odometry_dir / "sequences/06/image_0/000007.png"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(f.image, direct)
    # GT pose = line 8 of poses/06.txt
    line = (kitti_odometry_dir / "poses/06.txt").read_text().splitlines()[7]
    expected = np.vstack([np.array(line.split(), float).reshape(3, 4), [0, 0, 0, 1]])
    np.testing.assert_allclose(f.T_world_cam, expected)
    np.testing.assert_allclose(seq06[0].T_world_cam, np.eye(4), atol=1e-9)


@pytest.mark.data
def test_real_stereo_baseline_and_right_camera(kitti_odometry_dir: Path) -> None:
    left = KittiOdometry(kitti_odometry_dir / "sequences" / "06", stereo=True)
    assert left.has_stereo
    f = left[3]
    assert f.stereo_baseline == pytest.approx(0.537, abs=1e-3)  # -P1[0,3]/P1[0,0] = 379.8145/707.0912
    assert f.stereo_baseline == pytest.approx(379.8145 / 707.0912, rel=1e-6)
    assert f.stereo_image.shape == f.image.shape and not np.array_equal(f.stereo_image, f.image)

    right = KittiOdometry(kitti_odometry_dir, sequence="6", camera="right", stereo=True)
    g = right[3]
    np.testing.assert_array_equal(g.image, f.stereo_image)
    np.testing.assert_array_equal(g.stereo_image, f.image)
    assert g.stereo_baseline == pytest.approx(-f.stereo_baseline)  # partner (left) sits at -x
    # right camera centre = left centre + R_world_left @ (0.537, 0, 0)
    expected_t = f.T_world_cam[:3, 3] + f.T_world_cam[:3, :3] @ np.array([f.stereo_baseline, 0, 0])
    np.testing.assert_allclose(g.T_world_cam[:3, 3], expected_t, atol=1e-9)
    np.testing.assert_allclose(g.T_world_cam[:3, :3], f.T_world_cam[:3, :3])


@pytest.mark.data
def test_real_frames_selection_and_indexing(kitti_odometry_dir: Path, seq06: KittiOdometry) -> None:
    sub = KittiOdometry(kitti_odometry_dir, sequence="06", frames=slice(10, 20))
    assert len(sub) == 10
    assert sub[0].index == 10 and sub[-1].index == 19
    np.testing.assert_allclose(sub[0].T_world_cam, seq06[10].T_world_cam)
    np.testing.assert_allclose(sub.stamps(), np.arange(10, 20) / 10.0)
    with pytest.raises(IndexError, match="out of range"):
        sub[10]
    stepped = KittiOdometry(kitti_odometry_dir, sequence="06", frames=range(0, 51, 25))
    assert [f.index for f in stepped] == [0, 25, 50]
    with pytest.raises(ValueError, match="out of range"):
        KittiOdometry(kitti_odometry_dir, sequence="06", frames=[0, 60])[0]


@pytest.mark.data
def test_real_open_source_detection(kitti_odometry_dir: Path) -> None:
    a = open_source(str(kitti_odometry_dir / "sequences" / "06"))
    b = open_source(kitti_odometry_dir, sequence="06", frames="0:5")
    assert isinstance(a, KittiOdometry) and isinstance(b, KittiOdometry)
    assert len(a) == 51 and len(b) == 5
    with pytest.raises(ValueError, match="sequence"):  # 03 and 06 in the shared data: the root is ambiguous
        open_source(kitti_odometry_dir)
    with pytest.raises(FileNotFoundError, match="'07'"):
        open_source(kitti_odometry_dir, sequence="07")


# ---- a hand-made KITTI layout (what the synthetic writer produces) ----------------------------------
def _write_layout(root: Path, n: int = 3, with_right: bool = True) -> dict:
    seq = root / "sequences" / "00"
    (seq / "image_2").mkdir(parents=True)
    fx, cx, cy = 50.0, 15.5, 9.5
    P0 = np.array([[fx, 0, cx, 0], [0, fx, cy, 0], [0, 0, 1, 0]])
    P2 = P0.copy()
    P2[0, 3] = fx * 0.06  # colour camera 6 cm to the left of camera 0 (t = +0.06 -> centre at -0.06)
    P3 = P0.copy()
    P3[0, 3] = fx * (0.06 - 0.5)  # 0.5 m right of camera 2
    lines = [f"P{i}: " + " ".join(f"{v:.12e}" for v in P.ravel()) for i, P in enumerate([P0, P0, P2, P3])]
    (seq / "calib.txt").write_text("\n".join(lines) + "\n")
    (seq / "times.txt").write_text("\n".join(f"{0.05 + 0.1 * i:.6f}" for i in range(n)) + "\n")
    if with_right:
        (seq / "image_3").mkdir()
    poses = []
    for i in range(n):
        img = np.zeros((20, 32, 3), np.uint8)
        img[..., 2] = 200  # BGR on disk: pure red
        img[0, 0] = (10 * i, 0, 0)
        cv2.imwrite(str(seq / "image_2" / f"{i:06d}.png"), img)
        if with_right:
            cv2.imwrite(str(seq / "image_3" / f"{i:06d}.png"), img // 2)
        T = np.eye(4)
        T[2, 3] = 1.5 * i
        poses.append(T)
    (root / "poses").mkdir()
    (root / "poses" / "00.txt").write_text(
        "\n".join(" ".join(f"{v:.9e}" for v in T[:3].ravel()) for T in poses) + "\n")
    (seq / "depth").mkdir()
    depth_mm = np.full((20, 32), 12345, np.uint16)
    depth_mm[0, :] = 0
    cv2.imwrite(str(seq / "depth" / "000000.png"), depth_mm)
    flow = np.zeros((20, 32, 2), np.float32)
    flow[..., 0] = 1.25
    flow[..., 1] = -0.5
    valid = np.ones((20, 32), bool)
    valid[5, 5] = False
    write_kitti_flow_png(seq / "flow" / "000000.png", flow, valid)
    return {"seq": seq, "fx": fx}


def test_layout_colour_times_depth_flow(tmp_path: Path) -> None:
    _write_layout(tmp_path)
    src = KittiOdometry(tmp_path, sequence="00")  # color=None: only image_2 exists
    assert isinstance(open_source(tmp_path), KittiOdometry)
    with pytest.raises(FileNotFoundError, match="'06' not found"):
        KittiOdometry(tmp_path)  # the class default is sequence "06"
    assert src.color and src.cam_id == 2
    assert src.has_gt_depth and src.has_gt_flow and src.has_gt_pose
    np.testing.assert_allclose(src.stamps(), [0.05, 0.15, 0.25])
    assert src.fps == pytest.approx(10.0)
    f0, f1 = src[0], src[1]
    assert f0.image.shape == (20, 32, 3)
    assert tuple(f0.image[5, 5]) == (200, 0, 0)  # red stays red: RGB order
    assert tuple(f1.image[0, 0]) == (0, 0, 10)  # BGR (10,0,0) on disk = blue
    np.testing.assert_allclose(f0.K, [[50, 0, 15.5], [0, 50, 9.5], [0, 0, 1]])
    assert f0.depth.dtype == np.float32
    assert f0.depth[3, 3] == pytest.approx(12.345) and f0.depth[0, 3] == 0
    assert f1.depth is None and f1.flow_next is None  # no files for frame 1
    assert f0.flow_next.shape == (20, 32, 2)
    np.testing.assert_allclose(f0.flow_next[1, 1], [1.25, -0.5])
    assert np.isnan(f0.flow_next[5, 5]).all()  # invalid in the PNG -> NaN
    # camera 2 centre sits 6 cm left (-x) of camera 0: T_world_cam2 = T_world_cam0 @ [I | (-0.06, 0, 0)]
    np.testing.assert_allclose(f1.T_world_cam[:3, 3], [-0.06, 0.0, 1.5], atol=1e-12)


def test_layout_stereo_colour_right_camera(tmp_path: Path) -> None:
    _write_layout(tmp_path)
    left = KittiOdometry(tmp_path / "sequences" / "00", stereo=True)
    assert left.baseline == pytest.approx(0.5)
    f = left[2]
    np.testing.assert_array_equal(f.stereo_image, f.image // 2)
    right = KittiOdometry(tmp_path, sequence="00", camera="right")
    g = right[2]
    np.testing.assert_allclose(g.T_world_cam[:3, 3], [0.44, 0.0, 3.0], atol=1e-12)  # -0.06 + 0.5
    assert not right.has_gt_depth and g.depth is None  # depth/ belongs to the left camera
    gray = KittiOdometry(tmp_path, sequence="00", gray=True)
    assert gray[0].image.shape == (20, 32)


def test_layout_errors_name_the_file(tmp_path: Path) -> None:
    info = _write_layout(tmp_path, with_right=False)
    seq = info["seq"]
    with pytest.raises(FileNotFoundError, match="image_3"):
        KittiOdometry(seq, stereo=True)
    with pytest.raises(FileNotFoundError, match="image_0"):
        KittiOdometry(seq, color=False)
    (seq / "image_2" / "000001.png").write_bytes(b"not a png")
    src = KittiOdometry(seq)
    with pytest.raises(ValueError, match="000001.png"):
        src[1]
    # truncated pose file
    (tmp_path / "poses" / "00.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0\n")
    with pytest.raises(ValueError, match="00.txt"):
        KittiOdometry(seq)
    (seq / "calib.txt").write_text("P0: 1 2 3\n")
    with pytest.raises(ValueError, match="calib.txt"):
        read_kitti_calib(seq / "calib.txt")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        KittiOdometry(tmp_path / "nowhere")


def test_read_kitti_poses_hand_values(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text("1 0 0 1 0 1 0 2 0 0 1 3\n\n0 -1 0 0 1 0 0 0 0 0 1 0\n")
    poses = read_kitti_poses(p)
    assert poses.shape == (2, 4, 4)
    np.testing.assert_allclose(poses[0][:3, 3], [1, 2, 3])
    np.testing.assert_allclose(poses[1][:2, :2], [[0, -1], [1, 0]])
    np.testing.assert_allclose(poses[:, 3], [[0, 0, 0, 1]] * 2)
    p.write_text("1 0 0\n")
    with pytest.raises(ValueError, match=r"p\.txt:1"):
        read_kitti_poses(p)


def test_flow_png_written_by_layout_matches(tmp_path: Path) -> None:
    _write_layout(tmp_path)
    flow, valid = read_kitti_flow_png(tmp_path / "sequences/00/flow/000000.png")
    assert valid.sum() == 20 * 32 - 1
    np.testing.assert_allclose(flow[valid], np.tile([1.25, -0.5], (valid.sum(), 1)))


def test_reads_what_the_synthetic_writer_writes(tmp_path: Path) -> None:
    seq = SyntheticSequence(seed=2, length=3, height=40, width=96, stereo_baseline=0.4)
    write_kitti_layout(seq, tmp_path, sequence="03")
    src = open_source(tmp_path, stereo=True)
    assert src.sequence == "03" and len(src) == 3 and src.has_gt_depth and src.has_gt_flow
    T0_inv = np.linalg.inv(seq[0].T_world_cam)
    np.testing.assert_allclose(src.stamps(), seq.stamps(), atol=1e-6)
    for i in range(3):
        got, ref = src[i], seq[i]
        np.testing.assert_array_equal(got.image, ref.image)
        np.testing.assert_array_equal(got.stereo_image, ref.stereo_image)
        assert got.stereo_baseline == pytest.approx(0.4)
        np.testing.assert_allclose(got.K, ref.K, rtol=1e-9)
        np.testing.assert_allclose(got.T_world_cam, T0_inv @ ref.T_world_cam, atol=1e-6)
        ok = (ref.depth > 0) & (ref.depth < 65.0)
        np.testing.assert_allclose(got.depth[ok], ref.depth[ok], atol=5e-4 + 1e-6)
        assert np.all(got.depth[ref.depth == 0] == 0)
        np.testing.assert_array_equal(got.moving_mask, ref.moving_mask)
        if i < 2:
            finite = np.isfinite(got.flow_next).all(axis=2)
            assert finite.mean() > 0.9
            assert np.abs(got.flow_next[finite] - ref.flow_next[finite]).max() <= 0.5 / 64 + 1e-4
            np.testing.assert_array_equal(got.occlusion_next, ref.occlusion_next)
        else:
            assert got.flow_next is None and got.occlusion_next is None
