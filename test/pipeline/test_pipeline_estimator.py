"""Streaming Estimator: real (untrained) networks, real geometry, real KITTI frames."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.pipeline.estimator import Estimator, EstimatorConfig, FrameError

K_KITTI = np.array([[707.0912, 0, 601.8873], [0, 707.0912, 183.1104], [0, 0, 1.0]])


def _small_estimator(**kw) -> Estimator:
    torch.manual_seed(0)
    cfg = NetConfig.from_dict({"encoder": {"width": 0.25}})
    return Estimator(build_model(cfg), EstimatorConfig(height=64, width=192, **kw))


def _textured(seed: int, h: int = 120, w: int = 360) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((h, w, 3)) * 255).astype(np.uint8)


def test_first_frame_depth_without_pose_and_shapes():
    est = _small_estimator()
    r = est.step(_textured(0), K_KITTI * [[0.3], [0.3], [1]], 0.0)
    assert r.status == "first" and r.T_cur_prev is None and r.flow is None
    assert r.depth.shape == (64, 192) and r.depth.dtype == np.float32
    assert np.all(np.isfinite(r.depth)) and r.depth.min() > 0
    np.testing.assert_allclose(r.T_world_cam, np.eye(4))
    # K scaled from 120x360 to 64x192
    np.testing.assert_allclose(r.K[0, 0], K_KITTI[0, 0] * 0.3 * 192 / 360, rtol=1e-9)
    r2 = est.step(_textured(1), K_KITTI * [[0.3], [0.3], [1]], 0.1)
    # flow and geometry at their own size, not the network's: pose.image_fraction (0.5) of the 360 px wide camera
    # is below pose.min_width (320), so 320 px wide
    assert r2.T_cur_prev is not None and r2.flow.shape == (107, 320, 2)
    np.testing.assert_allclose(r2.K_pose[0, 0], K_KITTI[0, 0] * 0.3 * 320 / 360, rtol=1e-9)
    assert np.all(np.isfinite(r2.T_world_cam)) and np.all(np.isfinite(r2.flow))


def test_history_matters_and_reset_restores_first_frame():
    est = _small_estimator()
    K = K_KITTI * [[0.3], [0.3], [1]]
    first = est.step(_textured(5), K, 0.0).depth
    est.step(_textured(6), K, 0.1)
    again = est.step(_textured(5), K, 0.2).depth
    assert np.abs(again - first).max() > 1e-6, "recurrent state should change the output"
    est.reset()
    after_reset = est.step(_textured(5), K, 0.3)
    assert after_reset.status == "first"
    np.testing.assert_allclose(after_reset.depth, first, rtol=1e-5, atol=1e-6)


def test_timestamp_gap_and_backward_jump_reset():
    est = _small_estimator(max_gap_s=0.5)
    K = K_KITTI * [[0.3], [0.3], [1]]
    est.step(_textured(0), K, 10.0)
    assert est.step(_textured(1), K, 10.1).status != "first"
    r = est.step(_textured(2), K, 12.0)
    assert r.status == "first" and "gap" in r.reset_reason
    r = est.step(_textured(3), K, 11.0)
    assert r.status == "first" and "backwards" in r.reset_reason


@pytest.mark.parametrize(
    "image, K, match",
    [
        (np.zeros((0, 10, 3), np.uint8), K_KITTI, "shape"),
        (np.zeros((40, 40, 5), np.uint8), K_KITTI, "shape"),
        (np.full((40, 40), np.nan, np.float32), K_KITTI, "NaN"),
        (np.zeros((40, 40), np.int32), K_KITTI, "dtype"),
        (np.zeros((40, 40), np.uint8), np.full((3, 3), np.nan), "K"),
        (np.zeros((1, 1), np.uint8), K_KITTI, "too small"),
    ],
)
def test_bad_frames_raise_clear_errors(image, K, match):
    est = _small_estimator()
    with pytest.raises(FrameError, match=match):
        est.step(image, K, 0.0)
    # and the estimator still works afterwards
    assert est.step(_textured(0), K_KITTI * [[0.3], [0.3], [1]], 0.0).status == "first"


@pytest.mark.slow
@pytest.mark.data
def test_untrained_estimator_on_kitti_06(kitti_odometry_dir):
    """Untrained weights over KITTI 06 frames 0-50: finite outputs and a pose for every frame after the first."""
    import cv2

    torch.manual_seed(0)
    est = Estimator(build_model(), EstimatorConfig(height=192, width=640))
    seq = kitti_odometry_dir / "sequences" / "06" / "image_0"
    frames = sorted(seq.glob("*.png"))[:51]
    assert len(frames) == 51
    poses = []
    for i, path in enumerate(frames):
        r = est.step(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), K_KITTI, i * 0.1)
        assert np.all(np.isfinite(r.depth)) and r.depth.min() > 0
        assert np.all(np.isfinite(r.T_world_cam))
        if i == 0:
            assert r.status == "first"
        else:
            assert r.T_cur_prev is not None and np.all(np.isfinite(r.T_cur_prev))
            assert r.flow is not None and np.all(np.isfinite(r.flow))
        poses.append(r.T_world_cam)
    assert len(poses) == 51


def test_online_refinement_through_the_estimator_hook():
    """GLNet online refinement via the Estimator: it runs on the frame window, never makes the
    self-supervised loss worse, moves the weights exactly when it reports a move, stays finite."""
    est = _small_estimator()
    est.config.refinement.enabled = True
    est.config.refinement.iterations = 3
    est.config.refinement.lr = 1e-3
    before = [p.detach().clone() for p in est.model.parameters()]
    K = K_KITTI * [[0.3], [0.3], [1]]
    base = _textured(7)
    for i in range(4):  # a shifting texture: a real (if simple) motion
        r = est.step(np.roll(base, 2 * i, axis=1), K, 0.1 * i)
        assert np.all(np.isfinite(r.depth)) and np.all(np.isfinite(r.T_world_cam))
    stats = est.refiner.last_stats
    assert stats is not None and stats.iterations == 3
    assert stats.loss_after <= stats.loss_before + 1e-9
    changed = any(not torch.equal(a, b) for a, b in zip(before, est.model.parameters()))
    assert changed == (stats.param_distance > 0)
    est.reset()
    assert est.step(base, K, 10.0).status == "first"


def test_fast_path_matches_eager_closely():
    """BN folding + channels_last (+ bf16 where the CPU has it) keeps depth and pose close to fp32."""
    K = K_KITTI * [[0.3], [0.3], [1]]
    eager, fast = _small_estimator(), _small_estimator(fast_path=True)
    for i in range(3):
        image = np.roll(_textured(11), 3 * i, axis=1)
        a, b = eager.step(image, K, 0.1 * i), fast.step(image, K, 0.1 * i)
        rel = np.abs(np.log(a.depth) - np.log(b.depth))
        assert np.median(rel) < 0.02 and np.all(np.isfinite(b.depth))
        if b.flow is not None:
            assert np.median(np.abs(a.flow - b.flow)) < 0.05


def test_fast_path_and_refinement_exclude_each_other():
    with pytest.raises(ValueError, match="refinement"):
        cfg = NetConfig.from_dict({"encoder": {"width": 0.25}})
        from depth_pose_ros.pipeline.config import RefinementConfig

        Estimator(build_model(cfg), EstimatorConfig(height=64, width=192, fast_path=True,
                                                    refinement=RefinementConfig(enabled=True)))
