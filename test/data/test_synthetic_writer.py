"""KITTI-layout writer of the synthetic world and the `depth-pose synth` command: read back with cv2."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.cli import main
from depth_pose_ros.data.kitti_flow import encode_kitti_flow
from depth_pose_ros.data.synthetic import SyntheticSequence, write_kitti_layout


def _read_matrix_lines(path: Path) -> dict[str, np.ndarray]:
    out = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = np.array(rest.split(), float).reshape(3, 4)
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSequence, Path]:
    seq = SyntheticSequence(seed=7, length=4, height=48, width=160, stereo_baseline=0.5)
    root = tmp_path_factory.mktemp("synth")
    seq_dir = write_kitti_layout(seq, root, sequence="03")
    assert seq_dir == root / "sequences" / "03"
    return seq, root


def test_layout_files(written: tuple[SyntheticSequence, Path]) -> None:
    _, root = written
    d = root / "sequences" / "03"
    names = [f"{i:06d}.png" for i in range(4)]
    for folder in ("image_2", "image_3", "depth", "moving"):
        assert sorted(p.name for p in (d / folder).iterdir()) == names, folder
    for folder in ("flow", "occlusion"):  # forward quantities: none for the last frame
        assert sorted(p.name for p in (d / folder).iterdir()) == names[:3], folder
    assert not (d / "image_0").exists()
    assert (root / "poses" / "03.txt").is_file()


def test_images_depth_masks_round_trip(written: tuple[SyntheticSequence, Path]) -> None:
    seq, root = written
    d = root / "sequences" / "03"
    for i in (0, 3):
        f = seq[i]
        img = cv2.cvtColor(cv2.imread(str(d / "image_2" / f"{i:06d}.png")), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(img, f.image)
        right = cv2.cvtColor(cv2.imread(str(d / "image_3" / f"{i:06d}.png")), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(right, f.stereo_image)
        raw = cv2.imread(str(d / "depth" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        assert raw.dtype == np.uint16 and raw.shape == f.depth.shape
        near = (f.depth > 0) & (f.depth < 65.0)
        np.testing.assert_allclose(raw[near] / 1000.0, f.depth[near], atol=0.0005 + 1e-6)
        assert np.all(raw[f.depth == 0] == 0) and np.all(raw[f.depth > 65.535] == 0)
        moving = cv2.imread(str(d / "moving" / f"{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(moving > 0, f.moving_mask)


def test_flow_png_round_trip(written: tuple[SyntheticSequence, Path]) -> None:
    seq, root = written
    f = seq[1]
    raw = cv2.imread(str(root / "sequences/03/flow/000001.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == f.depth.shape + (3,)
    valid = raw[..., 0] == 1  # cv2 gives B, G, R = valid, v, u
    flow = np.stack([raw[..., 2], raw[..., 1]], axis=-1).astype(np.float64)
    flow = (flow - 2**15) / 64.0
    in_range = (np.abs(f.flow_next) < 511).all(axis=-1)
    np.testing.assert_array_equal(valid, in_range)
    np.testing.assert_allclose(flow[valid], f.flow_next[valid], atol=0.5 / 64 + 1e-6)
    occ = cv2.imread(str(root / "sequences/03/occlusion/000001.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(occ > 0, f.occlusion_next)


def test_encode_kitti_flow_hand_computed() -> None:
    flow = np.array([[[1.5, -2.0], [600.0, 0.0], [np.nan, 1.0]]])
    enc, dropped = encode_kitti_flow(flow)
    assert dropped == 1  # 600 px does not fit; NaN is simply invalid
    assert enc.dtype == np.uint16
    np.testing.assert_array_equal(enc[0, 0], [1, 32768 - 128, 32768 + 96])  # (valid, v, u) in BGR
    np.testing.assert_array_equal(enc[0, 1:, 0], [0, 0])  # out of range / non-finite -> invalid


def test_calib_times_and_poses(written: tuple[SyntheticSequence, Path]) -> None:
    seq, root = written
    d = root / "sequences" / "03"
    calib = _read_matrix_lines(d / "calib.txt")
    assert list(calib) == ["P0", "P1", "P2", "P3", "Tr"]
    np.testing.assert_allclose(calib["P0"][:, :3], seq.K, rtol=1e-11)
    np.testing.assert_array_equal(calib["P0"], calib["P2"])
    np.testing.assert_array_equal(calib["P1"], calib["P3"])
    assert -calib["P1"][0, 3] / calib["P1"][0, 0] == pytest.approx(0.5)  # KITTI: baseline = -P1[0,3]/fx
    np.testing.assert_allclose(np.loadtxt(d / "times.txt"), [0.0, 0.1, 0.2, 0.3])
    rows = np.loadtxt(root / "poses" / "03.txt").reshape(-1, 3, 4)
    assert rows.shape == (4, 3, 4)
    np.testing.assert_allclose(rows[0], np.eye(4)[:3], atol=1e-12)  # frame 0 = identity
    poses = seq.poses()
    for i in range(4):
        expected = np.linalg.inv(poses[0]) @ poses[i]
        np.testing.assert_allclose(rows[i], expected[:3], atol=1e-8)
    # relative motion between written poses = relative motion between the frames' GT poses
    T01 = np.linalg.inv(np.vstack([rows[0], [0, 0, 0, 1]])) @ np.vstack([rows[1], [0, 0, 0, 1]])
    np.testing.assert_allclose(T01, np.linalg.inv(poses[0]) @ poses[1], atol=1e-8)
    assert 0.5 < np.linalg.norm(rows[1][:, 3]) < 1.5  # moved forward by one car step
    assert rows[3][2, 3] > 1.0  # along +z (forward) of frame 0


def test_gray_layout_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = main(["synth", str(tmp_path), "--seed", "2", "--length", "3", "--height", "32", "--width", "96",
               "--gray", "--sequence", "05", "-q"])
    assert rc == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    d = tmp_path / "sequences" / "05"
    img = cv2.imread(str(d / "image_0" / "000002.png"), cv2.IMREAD_UNCHANGED)
    assert img.shape == (32, 96) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, SyntheticSequence(seed=2, length=3, height=32, width=96, gray=True)[2].image)
    assert not (d / "image_2").exists() and not (d / "image_1").exists()
    calib = _read_matrix_lines(d / "calib.txt")
    np.testing.assert_array_equal(calib["P0"], calib["P1"])  # no stereo: P1 = P0


def test_cli_rejects_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["synth", str(tmp_path), "--length", "0", "-q"]) == 1
    assert "length" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sequence"):
        write_kitti_layout(SyntheticSequence(length=1, height=16, width=16), tmp_path, sequence="a/b")
