"""The shipped default model: present, small, loadable, and its model card's numbers reproduce.

``models/default/metrics.json`` is what ``benchmarks/evaluate_model.py models/default`` wrote when the
model was shipped, and ``MODEL_CARD.md`` quotes it; these tests re-run the cheap parts of that command
and compare, so a card that drifts from its model (or a model file swapped without a new card) fails.
"""
from __future__ import annotations

import json

import pytest
import torch

from depth_pose_ros.commands.model_checks import evaluate_model_file
from depth_pose_ros.nets.zoo import default_checkpoint
from depth_pose_ros.pipeline.factory import build_estimator
from depth_pose_ros.utils.paths import REPO_ROOT

MODEL_DIR = REPO_ROOT / "models" / "default"


@pytest.fixture(scope="module")
def card_metrics() -> dict:
    return json.loads((MODEL_DIR / "metrics.json").read_text())


def test_default_model_is_shipped_small_and_documented(card_metrics) -> None:
    path = default_checkpoint()
    assert path == MODEL_DIR / "model.safetensors", "models/default/model.safetensors must be in the repository"
    assert path.stat().st_size < 25 * 2**20
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    for needle in ("Training data", "Steps", "Wall time", "Hardware", "benchmarks/evaluate_model.py"):
        assert needle in card, f"MODEL_CARD.md lacks {needle!r}"
    held = card_metrics["synthetic_heldout"]
    for key in ("depth_abs_rel", "flow_epe", "rot_err_deg"):
        assert f"{held[key]:.3f}" in card or f"{held[key]:.2f}" in card, f"the card does not quote {key}"
    est, what = build_estimator(None)
    assert "UNTRAINED" not in what
    assert f"flow_source: {est.config.flow_source}" in card, "the card must say where the pose's flow comes from"
    size = json.loads(json.dumps(est.network_size))
    assert size == [card_metrics["synthetic_heldout"]["height"], card_metrics["synthetic_heldout"]["width"]]


def test_card_synthetic_numbers_reproduce(card_metrics) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        got = evaluate_model_file(MODEL_DIR / "model.safetensors", sequences=3, frames=40, fps=10.0)
    finally:
        torch.set_num_threads(threads)
    want = card_metrics["synthetic_heldout"]
    # different CPUs round differently; the two-view RANSAC is seeded, so only tiny drifts are allowed
    assert got["depth_abs_rel"] == pytest.approx(want["depth_abs_rel"], abs=2e-3)
    assert got["flow_epe"] == pytest.approx(want["flow_epe"], abs=2e-2)
    assert got["rot_err_deg"] == pytest.approx(want["rot_err_deg"], abs=2e-2)


@pytest.mark.data
def test_card_kitti_vo_with_the_learned_flow_reproduces(card_metrics, kitti_odometry_dir, tmp_path) -> None:
    from depth_pose_ros.cli import main

    js = tmp_path / "m.json"
    rc = main(["vo", str(kitti_odometry_dir), "--sequence", "06", "--frames", "0:51", "--threads", "1",
               "--flow", "network", "--checkpoint", str(MODEL_DIR), "--out", str(tmp_path / "t.txt"),
               "--json", str(js)])
    assert rc == 0
    got, want = json.loads(js.read_text()), card_metrics["kitti06_vo_model"]
    assert got["rot_err_deg_per_frame"] == pytest.approx(want["rot_err_deg_per_frame"], abs=2e-2)
    assert got["tdir_err_deg_median"] == pytest.approx(want["tdir_err_deg_median"], abs=0.5)
