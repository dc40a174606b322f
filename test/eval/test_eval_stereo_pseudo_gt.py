"""Stereo pseudo ground truth (SGBM + left-right check): known-disparity synthetic pairs, the masks,
the left-right check on a region made inconsistent on purpose, and `eval depth --stereo` on KITTI 06."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.cli import main
from depth_pose_ros.data.kitti_odometry import KittiOdometry
from depth_pose_ros.data.source import read_depth_png
from depth_pose_ros.eval.depth_metrics import depth_metrics
from depth_pose_ros.eval.stereo_pseudo_gt import (
    StereoPseudoGTConfig,
    constant_depth_like,
    disparity_to_depth,
    left_right_consistent,
    stereo_pseudo_gt,
)

H, W, FX, BASELINE = 200, 400, 700.0, 0.5
BOX = (slice(60, 160), slice(220, 320))  # foreground square in left-image coordinates
D_FG = 40.0  # foreground disparity (px): 8.75 m


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur(rng.uniform(0, 255, (h, w)).astype(np.float32), (0, 0), 1.2)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left, right, true left depth, occluded mask): a textured ground-like plane whose disparity grows
    from 8 px (top) to 32 px (bottom) and a fronto-parallel square at 40 px in front of it."""
    rng = np.random.default_rng(seed)
    bg, fg = _texture(rng, H, W + 100), _texture(rng, H, W + 100)
    ys = np.arange(H, dtype=np.float32)[:, None].repeat(W, 1)
    xs = np.arange(W, dtype=np.float32)[None, :].repeat(H, 0)
    d_bg = 8.0 + 24.0 * ys / (H - 1)
    in_box = np.zeros((H, W), dtype=bool)
    in_box[BOX] = True
    left = np.where(in_box, fg[:, :W], bg[:, :W])
    # right pixel x sees left pixel x + d: the square where that lands inside it, else the plane
    xf = xs + D_FG
    fg_right = (ys >= BOX[0].start) & (ys < BOX[0].stop) & (xf >= BOX[1].start) & (xf < BOX[1].stop)
    right = np.where(fg_right, cv2.remap(fg, xf, ys, cv2.INTER_LINEAR),
                     cv2.remap(bg, xs + d_bg, ys, cv2.INTER_LINEAR))
    disparity = np.where(in_box, D_FG, d_bg)
    xr = np.clip(np.round(xs - d_bg), 0, W - 1).astype(np.intp)
    occluded = ~in_box & fg_right[np.arange(H)[:, None], xr]
    as_u8 = (lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8))
    return as_u8(left), as_u8(right), FX * BASELINE / disparity, occluded


def _cfg(**kw: object) -> StereoPseudoGTConfig:
    base = {"num_disparities": 64, "top_fraction": 0.0, "min_depth": 1.0, "max_depth": 100.0}
    return StereoPseudoGTConfig(**{**base, **kw})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------- synthetic
def test_recovers_known_depth_of_a_synthetic_pair() -> None:
    left, right, depth, occluded = _scene()
    gt = stereo_pseudo_gt(left, right, FX, BASELINE, _cfg())
    assert gt.depth.shape == (H, W) and gt.depth.dtype == np.float32
    assert np.all(gt.depth[~gt.valid] == 0) and np.all(gt.depth[gt.valid] > 0)
    rel = np.abs(gt.depth[gt.valid] - depth[gt.valid]) / depth[gt.valid]
    assert np.median(rel) < 0.01
    assert np.percentile(rel, 95) < 0.03
    # most of what can be matched is kept, the square included, and most occluded pixels are not
    eligible = ~occluded
    eligible[:, :64] = False
    assert gt.valid[eligible].mean() > 0.9
    assert gt.valid[BOX].mean() > 0.9
    assert np.median(gt.depth[BOX][gt.valid[BOX]]) == pytest.approx(FX * BASELINE / D_FG, rel=0.01)
    assert gt.valid[occluded].mean() < 0.2
    # the right edge is checked too (the mirrored search is padded), not lost to the check
    assert gt.valid[:, W - 40:].mean() > 0.85


def test_masks_top_rows_left_border_and_range() -> None:
    left, right, depth, _ = _scene()
    gt = stereo_pseudo_gt(left, right, FX, BASELINE, _cfg(top_fraction=0.25, max_depth=20.0))
    assert not gt.valid[:50].any()  # top 25 % of 200 rows
    assert not gt.valid[:, :64].any()  # left border of width num_disparities
    assert gt.rejected["top_or_left_border"] == 50 * W + 150 * 64
    assert gt.depth[gt.valid].max() <= 20.0
    # the plane is beyond 20 m in its upper part (disparity < 17.5 px): those rows are range-rejected
    far = depth > 21.0
    far[:50] = False
    assert far.sum() > 1000 and gt.valid[far].mean() < 0.02
    assert gt.rejected["range"] > 1000


def test_left_right_check_on_disparity_maps() -> None:
    """Constant disparity 10: consistent everywhere the match stays inside the image; a block of the
    right map changed by 3 px makes exactly the left pixels that land on it inconsistent."""
    d_left = np.full((20, 60), 10.0, dtype=np.float32)
    d_right = d_left.copy()
    ok = left_right_consistent(d_left, d_right, 1.0)
    assert not ok[:, :10].any()  # matches would fall left of the right image
    assert ok[:, 10:].all()
    d_right[5:10, 20:30] += 3.0
    d_left[0, 40] = np.nan
    ok = left_right_consistent(d_left, d_right, 1.0)
    assert not ok[5:10, 30:40].any()  # left x lands on right x - 10 in [20, 30)
    assert ok[5:10, 40:].all() and ok[10:, 10:].all() and not ok[0, 40]
    assert left_right_consistent(d_left, d_right, 3.0)[5:10, 30:40].all()  # within a looser tolerance


def test_left_right_check_removes_a_region_made_inconsistent() -> None:
    """A patch of the right image replaced by fresh texture: the left pixels whose true match it was
    have no match. With SGBM's own uniqueness and speckle filters off (so only our check can act),
    the left-right check removes most of the wrong depths there and almost nothing elsewhere."""
    left, right, depth, occluded = _scene()
    rng = np.random.default_rng(100)
    patch = (slice(20, 60), slice(100, 180))
    right = right.copy()
    right[patch] = np.clip(_texture(rng, 40, 80), 0, 255).astype(np.uint8)
    in_patch = np.zeros((H, W), dtype=bool)
    in_patch[patch] = True
    xr = np.round(np.arange(W)[None, :] - FX * BASELINE / depth).astype(np.intp)
    lost = (xr >= 0) & in_patch[np.arange(H)[:, None], np.clip(xr, 0, W - 1)]
    elsewhere = ~lost & ~occluded

    def wrong_and_coverage(lr_check: bool) -> tuple[float, float]:
        gt = stereo_pseudo_gt(left, right, FX, BASELINE,
                              _cfg(lr_check=lr_check, uniqueness_ratio=0, speckle_window_size=0))
        v = gt.valid & lost
        wrong = (np.abs(gt.depth[v] - depth[v]) / depth[v] > 0.05).sum() / lost.sum()
        return float(wrong), float(gt.valid[elsewhere].mean())

    wrong_off, cov_off = wrong_and_coverage(False)
    wrong_on, cov_on = wrong_and_coverage(True)
    assert wrong_off > 0.3  # without the check SGBM fills the region with wrong depths
    assert wrong_on < 0.6 * wrong_off
    assert cov_on > cov_off - 0.02 and cov_on > 0.75


def test_constant_baseline_and_helpers() -> None:
    d = np.array([[10.0, 0.0, np.nan, -1.0]])
    np.testing.assert_allclose(disparity_to_depth(d, 700.0, -0.5)[0, 0], 35.0)
    assert np.isnan(disparity_to_depth(d, 700.0, 0.5)[0, 1:]).all()
    left, right, _, _ = _scene()
    gt = stereo_pseudo_gt(left, right, FX, BASELINE, _cfg())
    const = constant_depth_like(gt)
    assert const.shape == gt.depth.shape and np.all(const == 1)
    m = depth_metrics(const, gt.depth, min_depth=1.0, max_depth=100.0)
    assert m["scale"] == pytest.approx(float(np.median(gt.depth[gt.valid])))
    assert m["num_valid"] == int(gt.valid.sum())
    assert m["abs_rel"] > 0.2  # the plane spans 11-44 m: one depth cannot fit it


@pytest.mark.parametrize("bad", [{"num_disparities": 100}, {"block_size": 4}, {"top_fraction": 1.0},
                                 {"min_depth": 0.0}, {"mode": "bm"}, {"lr_tolerance_px": -1.0}])
def test_config_rejects_bad_settings(bad: dict) -> None:
    with pytest.raises(ValueError):
        StereoPseudoGTConfig(**bad)


def test_rejects_mismatched_pair_and_bad_calibration() -> None:
    left, right, _, _ = _scene()
    with pytest.raises(ValueError, match="differ in size"):
        stereo_pseudo_gt(left, right[:, :-1], FX, BASELINE, _cfg())
    with pytest.raises(ValueError, match="baseline"):
        stereo_pseudo_gt(left, right, FX, 0.0, _cfg())


# ---------------------------------------------------------------------------------------- real data
@pytest.mark.data
def test_kitti_pseudo_gt_agrees_with_other_sgbm_settings_and_beats_constant(kitti_odometry_dir: Path) -> None:
    """On KITTI 06 the pseudo GT is self-consistent: SGBM with a different window and full 8-path
    mode, scored against it, is far better than a constant map on the same pixels."""
    source = KittiOdometry(kitti_odometry_dir, "06", stereo=True, frames=[0, 25])
    for frame in source:
        fx, b = float(frame.K[0, 0]), float(frame.stereo_baseline)
        assert b == pytest.approx(0.537, abs=0.001)
        gt = stereo_pseudo_gt(frame.image, frame.stereo_image, fx, b)
        assert 0.3 < gt.coverage < 0.65  # at most the 65 % below the masked top rows
        other = stereo_pseudo_gt(frame.image, frame.stereo_image, fx, b,
                                 StereoPseudoGTConfig(block_size=9, mode="hh", lr_check=False))
        pred = np.where(other.valid, other.depth, np.median(gt.depth[gt.valid]))
        m_other = depth_metrics(pred, gt.depth, min_depth=1.0, max_depth=60.0)
        m_const = depth_metrics(constant_depth_like(gt), gt.depth, min_depth=1.0, max_depth=60.0)
        assert m_other["abs_rel"] < 0.1 and m_other["delta1"] > 0.9
        assert m_const["abs_rel"] > 0.3 and m_const["delta1"] < 0.5
        # the road below the car: a flat ground 1.5-1.7 m under a camera of fx 707 px at the bottom rows
        bottom = gt.depth[-20:][gt.valid[-20:]]
        assert 5.0 < np.median(bottom) < 8.0


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.data
def test_eval_depth_stereo_command_reports_model_and_constant(
    kitti_odometry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped model streamed over frames 0-5 of KITTI 06, scored on frames 0 and 5; then the saved
    pseudo GT given back as --pred scores (almost) perfectly, with the same constant baseline."""
    seq = kitti_odometry_dir / "sequences" / "06"
    rc, out, err = _run(["eval", "depth", "--stereo", str(seq), "--frames", "0:6", "--every", "5",
                         "--save-gt", str(tmp_path / "gt"), "--json", str(tmp_path / "m.json")], capsys)
    assert rc == 0, err
    assert "const_abs_rel" in out and "000005" in out and "constant:" in out
    res = json.loads((tmp_path / "m.json").read_text())
    assert res["task"] == "depth_stereo" and res["frames"] == [0, 5]
    assert res["timing_s"]["frames_streamed"] == 6
    assert res["pseudo_gt"]["num_disparities"] == 128 and res["pseudo_gt"]["top_fraction"] == 0.35
    s, c = res["summary"], res["constant"]
    assert s["num_images"] == c["num_images"] == 2
    assert 0.0 < s["abs_rel"] < 1.0 and 0.0 < c["abs_rel"] < 1.0 and s["abs_rel"] != c["abs_rel"]
    for p in res["per_image"]:  # model and constant scored on the same pixels
        assert p["num_valid"] == p["constant"]["num_valid"] > 50_000
        assert 0.3 < p["coverage"] < 0.65
    # the constant row is exactly the constant map scored on the saved pseudo GT
    for p in res["per_image"]:
        saved = read_depth_png(tmp_path / "gt" / f"{p['frame']:06d}.png", 1000.0)
        m = depth_metrics(np.ones_like(saved), saved, min_depth=1.0, max_depth=60.0)
        assert m["abs_rel"] == pytest.approx(p["constant"]["abs_rel"], rel=1e-3)

    rc, out, err = _run(["eval", "depth", "--stereo", str(seq), "--frames", "0:6", "--every", "5",
                         "--pred", str(tmp_path / "gt"), "--json", str(tmp_path / "p.json")], capsys)
    assert rc == 0, err
    again = json.loads((tmp_path / "p.json").read_text())
    assert again["model"].startswith("pred:")
    assert again["summary"]["abs_rel"] < 1e-3 and again["summary"]["delta1"] == 1.0
    assert again["constant"]["abs_rel"] == pytest.approx(c["abs_rel"])


def test_eval_depth_argument_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["eval", "depth"], capsys)
    assert rc == 1 and "--pred and --gt" in err
    rc, _, err = _run(["eval", "depth", "--stereo", str(tmp_path), "--gt", str(tmp_path)], capsys)
    assert rc == 1 and "drop --gt" in err
    rc, _, err = _run(["eval", "depth", "--stereo", str(tmp_path), "--every", "0"], capsys)
    assert rc == 1 and "--every" in err
    rc, _, err = _run(["eval", "depth", "--stereo", str(tmp_path), "--garg-crop"], capsys)
    assert rc == 1 and "--garg-crop" in err
