"""Online refinement (GLNet): lowers the self-supervised loss on a clip, stays near the initial prediction."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from tiny_configs import tiny_config

from depth_pose_ros.data.clips import frames_to_clip
from depth_pose_ros.data.source import open_source
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.pipeline.estimator import Estimator, EstimatorConfig
from depth_pose_ros.pipeline.refinement import (
    OnlineRefiner,
    RefinementConfig,
    refine_and_predict,
    refine_estimator,
    self_supervised_loss,
)
from training.augment import AugmentConfig, make_sample


@pytest.fixture(scope="module")
def clip():
    src = open_source("synthetic:seed=6,length=3,height=64,width=96")
    c = frames_to_clip([src[i] for i in range(3)])
    s = make_sample(c, (64, 96), 3, AugmentConfig(enabled=False), train=False)
    return s.images, s.K


def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model(tiny_config("glnet").model)  # PoseNet + flow decoder


def _depths(model, images):
    model.eval()
    with torch.no_grad():
        out = model.forward_clip(images[None])
    return torch.stack([d[0][0] for d in out.depths])


def test_refinement_lowers_the_loss_and_stays_close(clip) -> None:
    images, K = clip
    model = _model()
    d0 = _depths(model, images)
    cfg = RefinementConfig(enabled=True, iterations=8, lr=1e-3, param_weight=100.0, output_weight=0.1)
    stats = OnlineRefiner(model, cfg).refine_clip(images, K)
    assert stats.loss_after < 0.97 * stats.loss_before
    d1 = _depths(model, images)
    change = float((torch.log(d1) - torch.log(d0)).abs().mean())
    assert change == pytest.approx(stats.depth_change, rel=1e-4)
    assert 0 < change < 0.3
    assert 0 < stats.param_distance < 0.1  # relative to ||theta_0||


def test_regularisation_keeps_the_prediction_closer(clip) -> None:
    images, K = clip
    free, tied = _model(), _model()
    base = dict(enabled=True, iterations=8, lr=3e-3)  # a step size at which the free run drifts far
    s_free = OnlineRefiner(free, RefinementConfig(**base, param_weight=0.0, output_weight=0.0)).refine_clip(images, K)
    s_tied = OnlineRefiner(tied, RefinementConfig(**base, param_weight=100.0, output_weight=0.1)).refine_clip(images, K)
    assert s_tied.depth_change < 0.3 * s_free.depth_change
    assert s_tied.param_distance < s_free.param_distance


def test_refine_and_predict_leaves_the_model_untouched(clip) -> None:
    images, K = clip
    model = _model()
    before = copy.deepcopy(model.state_dict())
    depth, stats = refine_and_predict(model, images, K, RefinementConfig(enabled=True, iterations=4, lr=1e-3))
    assert depth.shape == (3, 1, 64, 96) and torch.isfinite(depth).all()
    assert stats.loss_after < stats.loss_before
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_geometry_pose_model_refines_too(clip) -> None:
    """Without a PoseNet the loss uses the two-view pose of the flow (or skips items where it fails)."""
    images, K = clip
    torch.manual_seed(0)
    model = build_model(tiny_config("cpu_smoke").model)
    loss, out = self_supervised_loss(model, images[None], K, RefinementConfig())
    assert torch.isfinite(loss) and out.poses is None
    stats = OnlineRefiner(model, RefinementConfig(enabled=True, iterations=4, lr=1e-3)).refine_clip(images, K)
    # An untrained flow gives no two-view pose and fails every fb check, so there is almost nothing to
    # minimise; refinement must still run and never leave the model worse than it found it.
    assert np.isfinite(stats.loss_after) and stats.loss_after <= stats.loss_before


def test_estimator_hook_refines_the_estimators_model(clip) -> None:
    images, K = clip
    model = _model()
    est = Estimator(model, EstimatorConfig(height=64, width=96))
    assert refine_estimator(est, np.zeros((64, 96, 3), np.uint8), K.numpy()) is None  # no config field: no-op
    est.config.refinement = RefinementConfig(enabled=True, iterations=2, lr=1e-3, window=3, every=2)
    before = [p.detach().clone() for p in est.model.parameters()]
    frames = [(images[i].permute(1, 2, 0).numpy() * 255).astype(np.uint8) for i in range(3)]
    results = [refine_estimator(est, f, K.numpy()) for f in frames + frames]
    assert [r is not None for r in results] == [False, False, True, False, True, False]
    assert est.refiner.frames_seen == 6
    assert any(not torch.equal(a, b) for a, b in zip(before, est.model.parameters()))
    r = est.step(frames[0], K.numpy(), 0.0)  # the estimator keeps working with the refined weights
    assert np.isfinite(r.depth).all()


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="window"):
        RefinementConfig(window=2)
    with pytest.raises(ValueError, match="every"):
        RefinementConfig(every=0)
