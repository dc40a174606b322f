"""eval.real_depth on the real single images with sensor depth (ddad_mini LiDAR, TUM, NYU), with the shipped
network (models/default) run through the Estimator: coverage, the constant baseline and the model's AbsRel
checked against independent computations on the same pixels. Skips only when the data folder is absent."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depth_pose_ros.data.ddad_mini import ddad_stems, read_ddad_sample
from depth_pose_ros.eval.real_depth import (
    DOMAINS,
    constant_depth_abs_rel,
    domain_available,
    estimator_depth,
    evaluate_domain,
    score_domain,
    score_image,
)
from depth_pose_ros.pipeline.factory import build_estimator
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def depth_fn():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    est, what = build_estimator(str(REPO_ROOT / "models" / "default"), allow_untrained=False)
    assert "UNTRAINED" not in what
    yield estimator_depth(est)
    torch.set_num_threads(threads)


def _domain_dir(data_dir: Path, key: str) -> Path:
    if not domain_available(key, data_dir):
        pytest.skip(f"{DOMAINS[key].folder} not found under {data_dir}")
    return data_dir / DOMAINS[key].folder


def _median_scaled_abs_rel(pred: np.ndarray, gt: np.ndarray, lo: float, hi: float) -> float:
    p = pred * (np.median(gt) / np.median(pred))
    p = np.clip(p, lo, hi)
    return float(np.mean(np.abs(gt - p) / gt))


def _check_images(images, depth_fn, lo, hi) -> None:
    res = score_domain(images, depth_fn, lo, hi)
    assert res["num_images"] == len(images) and not res["uncovered"]
    assert 0.0 <= res["coverage_mean"] <= 1.0 and 0.0 <= res["coverage_pixels"] <= 1.0
    model, const = [], []
    for item, m in zip(images, res["per_image"], strict=True):
        pred = depth_fn(item.image, item.K).astype(np.float64)
        assert pred.shape == item.depth.shape == item.image.shape[:2], "depth must be registered at camera size"
        gt = item.depth.astype(np.float64)
        valid = (gt > lo) & (gt < hi)
        known = valid & (pred > 0)
        assert m["num_gt"] == valid.sum()
        assert m["coverage"] == pytest.approx(known.sum() / valid.sum())
        assert m["num_valid"] == known.sum()
        c = constant_depth_abs_rel(gt, known)
        g = gt[known]
        assert c == pytest.approx(float(np.mean(np.abs(g - np.median(g)) / g)))
        assert m["constant"]["abs_rel"] == pytest.approx(c, rel=1e-9)
        a = _median_scaled_abs_rel(pred[known], g, lo, hi)
        assert m["abs_rel"] == pytest.approx(a, rel=1e-9)
        model.append(a)
        const.append(c)
    assert res["summary"]["abs_rel"] == pytest.approx(np.mean(model))
    assert res["constant"]["abs_rel"] == pytest.approx(np.mean(const))
    assert -1.0 <= res["corr_log_mean"] <= 1.0


def test_ddad_mini_reader(data_dir) -> None:
    folder = _domain_dir(data_dir, "ddad_mini")
    stems = ddad_stems(folder)
    assert len(stems) == 27
    s = read_ddad_sample(folder, stems[0])
    assert s.image.shape == (1216, 1936, 3) and s.image.dtype == np.uint8
    n = int((s.depth > 0).sum())
    assert 3000 < n < 20000, "sparse LiDAR: some thousand points per image"
    assert 1.0 < s.depth[s.depth > 0].min() and s.depth.max() < 260.0, "metres (PNG / 256)"
    assert s.K[0, 0] > 1000 and abs(s.K[0, 2] - 1936 / 2) < 100


def test_ddad_mini_scoring(data_dir, depth_fn) -> None:
    folder = _domain_dir(data_dir, "ddad_mini")
    d = DOMAINS["ddad_mini"]
    images = d.read(folder)[::9]  # 3 of the 27 (one per scene/sweep group), to keep the test short
    _check_images(images, depth_fn, d.min_depth, d.max_depth)


@pytest.mark.parametrize("key", ["tum", "nyu"])
def test_indoor_scoring(data_dir, depth_fn, key) -> None:
    folder = _domain_dir(data_dir, key)
    d = DOMAINS[key]
    images = d.read(folder)
    assert len(images) == {"tum": 3, "nyu": 10}[key]
    _check_images(images, depth_fn, d.min_depth, d.max_depth)


def test_evaluate_domain_absent_folder(tmp_path, depth_fn) -> None:
    for key in DOMAINS:
        assert not domain_available(key, tmp_path)
        assert evaluate_domain(key, depth_fn, tmp_path) is None


def test_score_image_coverage_and_uncovered() -> None:
    gt = np.zeros((4, 6))
    gt[1:3, :] = [[2.0, 3.0, 4.0, 5.0, 6.0, 90.0], [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]  # 90 m: out of range
    pred = np.full((4, 6), 1.0)
    pred[:, :3] = 0.0  # the left half unknown
    m = score_image(pred, gt, 1e-3, 80.0)
    assert m["num_gt"] == 11 and m["coverage"] == pytest.approx(5 / 11)
    assert m["corr_log"] == 0.0  # a flat prediction orders nothing
    assert m["abs_rel"] == pytest.approx(m["constant"]["abs_rel"])
    none = score_image(np.zeros_like(gt), gt, 1e-3, 80.0)
    assert none["coverage"] == 0.0 and "abs_rel" not in none
    with pytest.raises(ValueError, match="registered"):
        score_image(pred[:, :5], gt, 1e-3, 80.0)
