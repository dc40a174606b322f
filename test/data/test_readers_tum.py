"""TUM RGB-D reader: the real pairs layout, and a hand-made standard layout (association, GT slerp)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.source import open_source
from depth_pose_ros.data.tum import TumRgbd, associate_nearest, pose_from_tum


@pytest.fixture(scope="module")
def pairs_dir(data_dir: Path) -> Path:
    path = data_dir / "tum_fr1_xyz_pairs"
    if not (path / "case_1").is_dir():
        pytest.skip(f"TUM pairs not found under {path}")
    return path


@pytest.mark.data
def test_real_pairs_layout(pairs_dir: Path) -> None:
    src = open_source(pairs_dir)
    assert isinstance(src, TumRgbd)
    assert len(src) == 4 and src.has_gt_depth and src.has_gt_pose and src.fps == 30.0
    np.testing.assert_allclose(src.stamps(), [0.0, 1 / 30, 1000.0, 1000.0 + 1 / 30])
    f = src[0]
    assert f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8
    np.testing.assert_allclose(f.K, [[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
    raw = cv2.imread(str(pairs_dir / "case_1" / "dep_prev.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_allclose(f.depth, raw / 5000.0, rtol=1e-6)
    assert 0.3 < np.median(f.depth[f.depth > 0]) < 4.0  # an indoor desk scene
    bgr = cv2.imread(str(pairs_dir / "case_1" / "img_prev.png"))
    np.testing.assert_array_equal(f.image, bgr[..., ::-1])
    # pose_prev.txt of case_1: 1.3303 0.6256 1.6464 0.6579 0.6161 -0.2932 -0.3189
    np.testing.assert_allclose(f.T_world_cam[:3, 3], [1.3303, 0.6256, 1.6464])
    assert np.linalg.det(f.T_world_cam[:3, :3]) == pytest.approx(1.0)
    # one case on its own: prev then curr
    case = TumRgbd(pairs_dir / "case_2")
    assert len(case) == 2
    np.testing.assert_allclose(case[1].T_world_cam[:3, 3], [1.3084, 0.6254, 1.6221])


def test_pose_from_tum_hand_values() -> None:
    s = np.sqrt(0.5)
    T = pose_from_tum([1, 2, 3, 0, 0, s, s])  # 90 deg about z
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [1, 2, 3])
    T2 = pose_from_tum([0, 0, 0, 0, 0, 2 * s, 2 * s])  # not normalised: same rotation
    np.testing.assert_allclose(T2[:3, :3], T[:3, :3], atol=1e-12)
    with pytest.raises(ValueError, match="7 numbers"):
        pose_from_tum([1, 2, 3])


def test_associate_nearest() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([4.03, 2.01, 0.995, 3.05])
    np.testing.assert_array_equal(associate_nearest(a, b, 0.02), [2, 1, -1, -1])
    np.testing.assert_array_equal(associate_nearest(a, np.array([]), 0.02), [-1] * 4)


def _write_standard(root: Path) -> None:
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    rgb_t = [10.0, 10.1, 10.2, 10.3]
    depth_t = [10.01, 10.095, 10.25, 10.29]  # frame at 10.2 has no depth within 0.02 s
    lines_rgb = ["# color images", "# file: 'x.bag'", "# timestamp filename"]
    lines_depth = ["# depth maps"]
    for i, (tr, td) in enumerate(zip(rgb_t, depth_t)):
        img = np.zeros((6, 8, 3), np.uint8)
        img[..., 1] = 20 * i + 1  # green channel tags the frame
        cv2.imwrite(str(root / "rgb" / f"{tr:.6f}.png"), img)
        lines_rgb.append(f"{tr:.6f} rgb/{tr:.6f}.png")
        dep = np.full((6, 8), 5000 * (i + 1), np.uint16)
        cv2.imwrite(str(root / "depth" / f"{td:.6f}.png"), dep)
        lines_depth.append(f"{td:.6f} depth/{td:.6f}.png")
    # shuffled order in the list file must not matter
    (root / "rgb.txt").write_text("\n".join(lines_rgb[:3] + lines_rgb[3:][::-1]) + "\n")
    (root / "depth.txt").write_text("\n".join(lines_depth) + "\n")
    s = np.sin(np.pi / 4)
    c = np.cos(np.pi / 4)
    # motion capture: identity at 9.95, 90 deg about z and x = 1 at 10.05 (frame 10.0 is halfway)
    (root / "groundtruth.txt").write_text(
        "# timestamp tx ty tz qx qy qz qw\n"
        "9.95 0 0 0 0 0 0 1\n"
        f"10.05 1 0 0 0 0 {s} {c}\n"
        f"10.29 1 0 0 0 0 {s} {c}\n")


def test_standard_layout(tmp_path: Path) -> None:
    _write_standard(tmp_path)
    src = open_source(tmp_path)
    assert isinstance(src, TumRgbd)
    assert len(src) == 3  # 10.2 dropped: no depth within 0.02 s
    np.testing.assert_allclose(src.stamps(), [10.0, 10.1, 10.3])
    f0, f1, f2 = src[0], src[1], src[2]
    assert [int(f.image[0, 0, 1]) for f in (f0, f1, f2)] == [1, 21, 61]
    assert f0.depth[0, 0] == pytest.approx(1.0) and f2.depth[0, 0] == pytest.approx(4.0)
    # 10.0 is halfway between GT samples 0.1 s apart: x = 0.5, rotation 45 deg about z
    np.testing.assert_allclose(f0.T_world_cam[:3, 3], [0.5, 0, 0], atol=1e-12)
    c = np.cos(np.pi / 4)
    np.testing.assert_allclose(f0.T_world_cam[:3, :3], [[c, -c, 0], [c, c, 0], [0, 0, 1]], atol=1e-9)
    # 10.1 lies between samples 0.24 s apart (> max_gt_gap 0.1) and 0.05 s from the nearest: unknown
    assert f1.T_world_cam is None
    # 10.3 is 0.01 s after the last sample: nearest within 0.02 s
    np.testing.assert_allclose(f2.T_world_cam[:3, 3], [1, 0, 0])
    everything = TumRgbd(tmp_path, require_depth=False)
    assert len(everything) == 4 and everything[2].depth is None


def test_intrinsics_by_name_and_override(tmp_path: Path) -> None:
    root = tmp_path / "rgbd_dataset_freiburg2_desk"
    _write_standard(root)
    np.testing.assert_allclose(TumRgbd(root).K[0], [520.9, 0, 325.1])
    np.testing.assert_allclose(TumRgbd(root, K=(1, 2, 3, 4)).K, [[1, 0, 3], [0, 2, 4], [0, 0, 1]])


def test_errors_name_the_file(tmp_path: Path) -> None:
    _write_standard(tmp_path)
    bad = sorted((tmp_path / "depth").glob("*.png"))[0]
    bad.write_bytes(b"garbage")
    with pytest.raises(ValueError, match=bad.name):
        TumRgbd(tmp_path)[0]
    (tmp_path / "groundtruth.txt").write_text("10.0 1 2 3\n")
    with pytest.raises(ValueError, match="groundtruth.txt"):
        TumRgbd(tmp_path)
    (tmp_path / "rgb.txt").write_text("abc rgb/x.png\n")
    with pytest.raises(ValueError, match="rgb.txt:1"):
        TumRgbd(tmp_path)
