"""The Estimator's stages on the synthetic world with exact poses: stamp validation before anything is
buffered, every shipped method streaming as trained, trajectory continuity across resets, a standing
camera, lens distortion, and the scale chain."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from tiny_configs import tiny_config

from depth_pose_ros.data.source import open_source
from depth_pose_ros.eval.pose_metrics import pose_summary
from depth_pose_ros.geometry.distortion import Distortion, distort_image
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.pipeline.config import EstimatorConfig, RefinementConfig, ScaleConfig
from depth_pose_ros.pipeline.estimator import Estimator, FrameError
from depth_pose_ros.utils.paths import REPO_ROOT

SHIPPED_CONFIGS = sorted(p.stem for p in (REPO_ROOT / "training" / "configs").glob("*.yaml")
                         if not p.stem.startswith("_"))


@pytest.fixture(scope="module")
def frames():
    return list(open_source("synthetic:seed=4,length=12,height=128,width=384"))


def _estimator(model_cfg=None, **kw) -> Estimator:
    torch.manual_seed(0)
    model = build_model(model_cfg if model_cfg is not None else tiny_config("cpu_smoke").model)
    return Estimator(model, EstimatorConfig(height=64, width=192, **kw))


def _run(est: Estimator, frames, images=None, distortion=None):
    out = []
    for i, fr in enumerate(frames):
        image = fr.image if images is None else images[i]
        out.append(est.step(image, fr.K, fr.stamp, distortion=distortion))
    return out


def test_refinement_runs_only_on_validated_frames(frames):
    """A frame rejected for its stamp is not buffered, and a frame after a gap refines on a fresh window."""
    est = _estimator(refinement=RefinementConfig(enabled=True, iterations=1, lr=1e-4))
    est.step(frames[0].image, frames[0].K, 1.0)
    est.step(frames[1].image, frames[1].K, 1.1)
    assert est.refiner.frames_seen == 2
    with pytest.raises(FrameError, match="finite"):
        est.step(frames[2].image, frames[2].K, float("nan"))
    assert est.refiner.frames_seen == 2 and len(est.refiner.buffer) == 2
    r = est.step(frames[2].image, frames[2].K, 6.0)  # 4.9 s gap: the window restarts with this frame
    assert "gap" in r.reset_reason and est.refiner.frames_seen == 1 and len(est.refiner.buffer) == 1


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_method_streams_as_trained(frames, name):
    """A model of each shipped training config runs in the Estimator with its own pose source: the
    network flow through two-view geometry, or the PoseNet for methods without a flow decoder."""
    cfg = tiny_config(name)
    est = _estimator(cfg.model, flow_source="network")
    results = _run(est, frames[:3])
    for r in results:
        assert np.all(np.isfinite(r.depth)) and np.all(np.isfinite(r.T_world_cam))
    if cfg.model.flow.enabled:
        assert results[1].flow is not None and results[1].status != "posenet"
    else:
        assert results[1].status == "posenet" and results[1].T_cur_prev is not None


def test_gap_keeps_the_trajectory_and_a_backward_jump_restarts_it(frames):
    est = _estimator(flow_source="dis")
    a = est.step(frames[0].image, frames[0].K, 0.0)
    b = est.step(frames[1].image, frames[1].K, 0.1)
    assert a.status == "first" and b.status == "ok"
    c = est.step(frames[2].image, frames[2].K, 5.0)  # gap: tracking restarts, the pose does not jump
    assert c.status == "first" and "gap" in c.reset_reason
    np.testing.assert_allclose(c.T_world_cam, b.T_world_cam, atol=1e-9)
    d = est.step(frames[3].image, frames[3].K, 5.1)
    assert d.status == "ok" and np.linalg.norm(d.T_world_cam[:3, 3] - c.T_world_cam[:3, 3]) > 0
    e = est.step(frames[4].image, frames[4].K, 1.0)  # backwards: the data restarted, so does the odometry
    assert "backwards" in e.reset_reason
    np.testing.assert_allclose(e.T_world_cam, np.eye(4), atol=1e-12)


def test_classical_pose_is_accurate_and_scale_propagates_by_geometry(frames):
    est = _estimator(flow_source="dis")
    results = _run(est, frames)
    assert [r.status for r in results[1:]] == ["ok"] * (len(frames) - 1)
    sources = [r.step_length_source for r in results[2:]]
    assert results[1].step_length_source == "depth" and sources.count("geometry") >= 0.6 * len(sources)
    m = pose_summary(np.stack([r.T_world_cam for r in results]), np.stack([f.T_world_cam for f in frames]))
    assert m["rot_err_deg_per_frame"] < 0.1 and m["tdir_err_deg_median"] < 1.0
    # geometry carries the scale of the first pair: the Sim(3) fit explains the path to a few centimetres
    assert m["ate_sim3_m"] < 0.05 * m["path_length_m"]


def test_metric_odometry_is_continuous_while_the_metric_factor_settles(frames):
    """With camera_height the metric factor changes from frame to frame while it settles; every published
    pose must still be the previous one composed with the published step (no past pose moves: REP 105)."""
    est = _estimator(flow_source="dis", scale=ScaleConfig(source="camera_height", camera_height_m=1.65))
    results = _run(est, frames)
    factors = [r.metres_per_unit for r in results]
    assert len(set(np.round(factors, 6))) > 2, factors  # the factor did move: the check below is not void
    for prev, cur in zip(results, results[1:]):
        np.testing.assert_allclose(cur.T_world_cam, prev.T_world_cam @ np.linalg.inv(cur.T_cur_prev), atol=1e-9)


def test_a_standing_camera_gives_a_standing_trajectory(frames):
    """Frames 0-5 driving, then frame 5 seen four more times (sensor noise only), then driving on."""
    rng = np.random.default_rng(0)
    seq = list(frames[:6])
    for k in range(4):
        noisy = np.clip(frames[5].image.astype(np.int16) + rng.integers(-2, 3, frames[5].image.shape), 0, 255)
        seq.append(dataclasses.replace(frames[5], image=noisy.astype(np.uint8), stamp=frames[5].stamp + 0.1 * (k + 1)))
    est = _estimator(flow_source="dis")
    results = _run(est, seq)
    standing = results[6:]
    assert all(r.status == "low_parallax" for r in standing)
    for r in standing:
        np.testing.assert_allclose(r.T_world_cam[:3, 3], results[5].T_world_cam[:3, 3], atol=1e-9)
    assert results[5].status == "ok"


def test_lens_distortion_is_undistorted_before_the_geometry():
    """The same drives rendered through a barrel lens: with its distortion given, the pose is as accurate
    as the pinhole run (within 10 %, plus a small absolute floor). Errors are averaged over three drives:
    the median translation direction of one short drive moves by more than 10 % from noise alone."""
    d = Distortion.create("plumb_bob", [-0.35, 0.12, 0.001, -0.001, 0.0])

    def errors(frames, images, distortion):
        results = _run(_estimator(flow_source="dis"), frames, images, distortion)
        m = pose_summary(np.stack([r.T_world_cam for r in results]), np.stack([f.T_world_cam for f in frames]))
        return np.array([m["rot_err_deg_per_frame"], m["tdir_err_deg_median"]]) / 3.0

    pinhole, undistorted, ignored = np.zeros(2), np.zeros(2), np.zeros(2)
    for seed in (7, 8, 9):
        frames = list(open_source(f"synthetic:seed={seed},length=10,height=192,width=640"))
        distorted = [distort_image(f.image, f.K, d) for f in frames]
        pinhole += errors(frames, None, None)
        undistorted += errors(frames, distorted, d)
        ignored += errors(frames, distorted, None)
    print("mean rot, t-dir: pinhole", pinhole, "undistorted", undistorted, "ignored", ignored)
    assert np.all(undistorted <= 1.1 * pinhole + [0.005, 0.05])
    # and the undistortion really inverts the lens: back to the pinhole image (the border aside)
    from depth_pose_ros.geometry.distortion import Undistorter

    back = Undistorter()(distorted[0], frames[0].K, d).astype(float)
    core = (slice(20, -20), slice(60, -60))
    err_back = np.abs(back - frames[0].image)[core].mean()
    err_raw = np.abs(distorted[0].astype(float) - frames[0].image)[core].mean()
    assert err_back < 0.3 * err_raw


def test_unknown_distortion_model_is_a_clear_error():
    from depth_pose_ros.geometry.distortion import UnknownDistortionModel

    with pytest.raises(UnknownDistortionModel, match="not supported"):
        Distortion.create("mystery_lens", [0.1, 0.0, 0.0, 0.0])
    assert Distortion.create("plumb_bob", [0.0] * 5) is None
    assert Distortion.create("rational_polynomial", [0.1] + [0.0] * 7).model == "rational_polynomial"


@pytest.mark.data
def test_tum_fr1_pairs_with_their_lens_distortion(data_dir):
    """Real distorted frames (TUM fr1 keeps its lens distortion): the Estimator's relative rotation is a
    small fraction of the true one on both pairs, with and without the distortion model."""
    from depth_pose_ros.geometry.pose_error import relative_pose, relative_pose_errors
    from depth_pose_ros.pipeline.factory import build_estimator

    frames = list(open_source(data_dir / "tum_fr1_xyz_pairs"))
    assert frames[0].distortion is not None and frames[0].distortion.model == "plumb_bob"
    est, _ = build_estimator(None, ["flow_source=dis"])
    results = [est.step(f.image, f.K, f.stamp, distortion=f.distortion) for f in frames]
    for i in (1, 3):
        gt = relative_pose(frames[i - 1].T_world_cam, frames[i].T_world_cam)
        rot, _ = relative_pose_errors(results[i].T_cur_prev, gt)
        identity, _ = relative_pose_errors(np.eye(4), gt)
        assert results[i].status == "ok" and float(rot) < 0.25 * float(identity), (i, float(rot), float(identity))


@pytest.mark.parametrize("fit, size", [("crop", (64, 192)), ("aspect", (64, 192)), ("stretch", (64, 192))])
def test_network_input_has_an_exact_K(fit, size):
    """A 1226x370 camera into a 64x192 network, for every input_fit: a bright dot lands in the network
    image where K_net projects its ray (crop: resize to cover + centre crop, fx/fy ratio unchanged)."""
    K = np.array([[707.0, 0.0, 601.9], [0.0, 707.0, 183.1], [0.0, 0.0, 1.0]])
    image = np.zeros((370, 1226), np.uint8)
    X = np.array([1.0, 0.4, 10.0])  # a point in front of the camera
    u, v = (K @ X)[:2] / X[2]
    image[int(round(v)) - 6:int(round(v)) + 7, int(round(u)) - 6:int(round(u)) + 7] = 255
    est = _estimator(flow_source="dis", input_fit=fit)
    r = est.step(image, K, 0.0)
    assert r.image.shape[:2] == size
    if fit == "crop":
        assert r.K[0, 0] / r.K[1, 1] == pytest.approx(1.0, abs=1e-3)  # no stretch (whole-pixel resize rounding only)
    un, vn = (r.K @ X)[:2] / X[2]
    ys, xs = np.nonzero((r.image if r.image.ndim == 2 else r.image[..., 0]) > 128)
    assert abs(xs.mean() - un) < 0.6 and abs(ys.mean() - vn) < 0.6
