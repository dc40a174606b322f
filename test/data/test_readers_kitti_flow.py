"""KITTI flow PNG codec (hand-checked bytes) and the KITTI 2015 pair reader on the real pairs."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.kitti_flow import (
    FlowPair,
    KittiFlow2015,
    read_kitti_flow_png,
    write_kitti_flow_png,
)


def test_write_gives_kitti_bytes_in_bgr_order(tmp_path: Path) -> None:
    flow = np.array([[[1.0, -2.0], [0.015625, 100.5]], [[-512.0, 511.0], [3.0, 4.0]]], np.float32)
    valid = np.array([[True, True], [True, False]])
    path = tmp_path / "f.png"
    write_kitti_flow_png(path, flow, valid)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (2, 2, 3)
    # on disk through cv2: [valid, v, u] with value = flow * 64 + 32768
    assert raw[0, 0].tolist() == [1, 32768 - 128, 32768 + 64]
    assert raw[0, 1].tolist() == [1, 32768 + 6432, 32768 + 1]
    assert raw[1, 0].tolist() == [1, 32768 + 32704, 0]
    assert raw[1, 1, 0] == 0
    back, v = read_kitti_flow_png(path)
    np.testing.assert_array_equal(v, valid)
    np.testing.assert_allclose(back[valid], flow[valid])
    np.testing.assert_array_equal(back[1, 1], [0, 0])  # invalid pixels read as 0


def test_roundtrip_quantisation_nan_and_range(tmp_path: Path, rng: np.random.Generator) -> None:
    flow = rng.uniform(-300, 300, (30, 40, 2)).astype(np.float32)
    flow[3, 4] = np.nan
    path = tmp_path / "sub" / "r.png"
    write_kitti_flow_png(path, flow)  # valid defaults to "finite"
    back, valid = read_kitti_flow_png(path)
    assert not valid[3, 4] and valid.sum() == 30 * 40 - 1
    assert np.abs(back[valid] - flow[valid]).max() <= 0.5 / 64 + 1e-6
    big = np.zeros((2, 2, 2), np.float32)
    big[0, 0, 0] = 600.0
    with pytest.warns(UserWarning, match="beyond the KITTI PNG range"):
        write_kitti_flow_png(tmp_path / "big.png", big)
    _, valid = read_kitti_flow_png(tmp_path / "big.png")
    assert valid.tolist() == [[False, True], [True, True]]


def test_codec_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_kitti_flow_png(tmp_path / "missing.png")
    bad = tmp_path / "eight_bit.png"
    cv2.imwrite(str(bad), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="eight_bit.png"):
        read_kitti_flow_png(bad)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG garbage")
    with pytest.raises(ValueError, match="junk.png"):
        read_kitti_flow_png(junk)
    with pytest.raises(ValueError, match="HxWx2"):
        write_kitti_flow_png(tmp_path / "x.png", np.zeros((4, 4)))


@pytest.mark.data
def test_real_pairs(kitti_flow_dir: Path) -> None:
    ds = KittiFlow2015(kitti_flow_dir)
    assert len(ds) == 5 and ds.names[0] == "000000_10"
    assert KittiFlow2015(kitti_flow_dir / "training").names == ds.names
    for pair in ds:
        assert isinstance(pair, FlowPair)
        assert pair.image1.shape == (375, 1242, 3) and pair.image1.dtype == np.uint8
        assert pair.flow.shape == (375, 1242, 2) and pair.flow.dtype == np.float32
        assert 0.1 < pair.valid.mean() < 0.35  # LiDAR-based GT covers about 19% of pixels
        assert np.abs(pair.flow[pair.valid]).max() < 512


def _warp_error(pair: FlowPair, flow: np.ndarray) -> float:
    """Mean |image1(x) - image2(x + flow)| over valid pixels, gray."""
    g1 = cv2.cvtColor(pair.image1, cv2.COLOR_RGB2GRAY).astype(np.float32)
    g2 = cv2.cvtColor(pair.image2, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = g1.shape
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    warped = cv2.remap(g2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=np.nan)
    m = pair.valid & np.isfinite(warped)
    return float(np.abs(g1[m] - warped[m]).mean())


@pytest.mark.data
def test_real_flow_channels_are_u_then_v(kitti_flow_dir: Path) -> None:
    """GT flow must explain image2 -> image1; swapping u/v (a BGR mistake) or zero flow must not."""
    pair = KittiFlow2015(kitti_flow_dir)[0]
    good = _warp_error(pair, pair.flow)
    swapped = _warp_error(pair, pair.flow[..., ::-1].copy())
    zero = _warp_error(pair, np.zeros_like(pair.flow))
    assert good < 0.5 * swapped and good < 0.5 * zero


def test_noc_selection(tmp_path: Path) -> None:
    train = tmp_path / "training"
    (train / "image_2").mkdir(parents=True)
    for k in ("10", "11"):
        cv2.imwrite(str(train / "image_2" / f"000007_{k}.png"), np.zeros((6, 8, 3), np.uint8))
    occ = np.ones((6, 8, 2), np.float32)
    write_kitti_flow_png(train / "flow_occ" / "000007_10.png", occ)
    noc_valid = np.zeros((6, 8), bool)
    noc_valid[:3] = True
    write_kitti_flow_png(train / "flow_noc" / "000007_10.png", 2 * occ, noc_valid)
    a = KittiFlow2015(tmp_path)[0]
    b = KittiFlow2015(tmp_path, occ=False)[0]
    assert a.name == "000007_10" and a.valid.all() and a.flow[0, 0, 0] == 1.0
    assert b.valid.sum() == 24 and b.flow[0, 0, 0] == 2.0
    (train / "image_2" / "000007_11.png").unlink()
    with pytest.raises(FileNotFoundError, match="000007_11.png"):
        KittiFlow2015(tmp_path)[0]
