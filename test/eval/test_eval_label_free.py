"""Label-free measures of the fine-tune report (depth_pose_ros/eval/label_free.py) on the synthetic world, whose
exact depth and flow say what the measures must find."""
from __future__ import annotations

import types

import numpy as np
import pytest

from depth_pose_ros.data.source import open_source
from depth_pose_ros.eval.label_free import (
    depth_point_agreement,
    flow_agreement,
    label_free_report,
    photometric_error,
    reference_geometry,
    score_model,
    warp_rigid,
)


@pytest.fixture(scope="module")
def world():
    frames = list(open_source("synthetic:seed=0,length=3,height=192,width=576,num_moving=0"))
    return frames, reference_geometry(frames)


def test_photometric_error_is_zero_for_identical_images_and_grows_with_noise():
    rng = np.random.default_rng(0)
    a = rng.random((20, 30))
    assert np.abs(photometric_error(a, a)).max() < 1e-9
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    assert photometric_error(b, a).mean() > 0.02


def test_warp_with_identity_pose_returns_the_image():
    rng = np.random.default_rng(1)
    img = rng.random((16, 24))
    K = np.array([[20.0, 0, 12], [0, 20, 8], [0, 0, 1]])
    warped, valid = warp_rigid(img, np.full((16, 24), 5.0), K, np.eye(4))
    assert valid.all() and np.allclose(warped, img, atol=1e-5)


def test_dis_flow_agrees_with_itself_and_zero_flow_does_not(world):
    _, pairs = world
    p = pairs[0]
    assert flow_agreement(p.flow_fw, p.flow_fw, p.valid) == 0.0
    assert flow_agreement(np.zeros_like(p.flow_fw), p.flow_fw, p.valid) > 1.0


def test_exact_depth_agrees_with_the_triangulated_points_and_a_constant_depth_does_not(world):
    frames, pairs = world
    assert [p.status for p in pairs] == ["ok", "ok"]
    for p in pairs:
        exact = depth_point_agreement(frames[p.index].depth, p.points_pixels, p.points_depth)
        constant = depth_point_agreement(np.ones_like(frames[p.index].depth), p.points_pixels, p.points_depth)
        # triangulation noise of far points at this size keeps the exact depth's score above 0
        assert exact < 0.15 and constant > 3 * exact
        # the measure is scale-free: any scale of the exact depth scores the same
        assert depth_point_agreement(7.0 * frames[p.index].depth, p.points_pixels, p.points_depth) == \
            pytest.approx(exact, rel=1e-6)


def test_the_exact_depth_explains_the_next_frame_better_than_a_constant_or_noisy_one(world):
    frames, pairs = world
    exact = score_model(pairs, [f.depth for f in frames], [p.flow_fw for p in pairs] + [None])
    const = score_model(pairs, [np.full_like(f.depth, 10.0) for f in frames])
    rng = np.random.default_rng(0)
    noisy = score_model(pairs, [f.depth * np.exp(rng.normal(0, 0.3, f.depth.shape)) for f in frames])
    assert exact["photometric"] < 0.5 * exact["photometric_identity"]
    assert exact["photometric"] < noisy["photometric"] < exact["photometric_identity"]
    assert exact["photometric"] < const["photometric"]
    assert exact["depth_abs_rel_points"] < noisy["depth_abs_rel_points"] < const["depth_abs_rel_points"]
    assert exact["flow_epe_dis"] == 0.0 and exact["flow_epe_zero"] > 1.0
    assert const["flow_epe_dis"] is None  # no flow given: not scored


class _FakeEstimator:
    """What label_free_report needs of an Estimator: the exact depth (or a constant), statuses, a flow."""

    def __init__(self, frames, constant=None, flow=True):
        self.frames, self.constant, self.flow, self.i = frames, constant, flow, 0

    def reset(self):
        self.i = 0

    def step(self, image, K, stamp):
        d = self.frames[self.i].depth
        d = np.full_like(d, self.constant) if self.constant else d
        self.i += 1
        return types.SimpleNamespace(depth=d, K=K, status="first" if self.i == 1 else "ok")

    def flow_between(self, a, b):
        if not self.flow:
            raise ValueError("this model has no flow decoder")
        return np.zeros(a.shape[:2] + (2,), np.float32)


def test_report_scores_every_model_on_the_same_geometry(world):
    frames, _ = world
    res = label_free_report({"before": _FakeEstimator(frames, constant=5.0),
                             "after": _FakeEstimator(frames, flow=False)}, frames)
    assert res["geometry"]["pairs"] == 2 and res["geometry"]["two_view_status"] == {"ok": 2}
    b, a = res["before"], res["after"]
    assert a["photometric"] < b["photometric"] and a["depth_abs_rel_points"] < b["depth_abs_rel_points"]
    assert b["pose_status"] == a["pose_status"] == {"first": 1, "ok": 2}
    assert b["flow_epe_dis"] == pytest.approx(b["flow_epe_zero"]) and a["flow_epe_dis"] is None
    with pytest.raises(ValueError, match="at least 2 frames"):
        label_free_report({"x": _FakeEstimator(frames)}, frames[:1])
