"""``input_fit``: the published (camera-size) depth covers the whole camera image for any aspect ratio.

Real network (the shipped model in models/default) on real images of four cameras (KITTI 1226x370,
DDAD 1936x1216, a 16:9 phone at 960x540, NYU 4:3 at 640x480), registered to the camera image exactly as
the node does; a change of camera size mid-stream restarts the tracking cleanly.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import yaml
from tiny_configs import tiny_config

from depth_pose_ros.data.source import open_source
from depth_pose_ros.nets.model import INPUT_MULTIPLE, build_model
from depth_pose_ros.pipeline.config import EstimatorConfig, RefinementConfig
from depth_pose_ros.pipeline.estimator import Estimator, aspect_input_size
from depth_pose_ros.pipeline.factory import build_estimator
from depth_pose_ros.pipeline.result import output_depth

TRAINED = (64, 192)


@pytest.mark.parametrize("camera", [(370, 1226), (375, 1242), (1216, 1936), (540, 960), (480, 640), (720, 1280),
                                    (1080, 1920), (1024, 1024), (1280, 720), (64, 1200)])
def test_aspect_size_keeps_the_camera_aspect_at_about_the_trained_pixel_count(camera):
    h, w = aspect_input_size(camera, TRAINED)
    assert h % INPUT_MULTIPLE == 0 and w % INPUT_MULTIPLE == 0 and h > 0 and w > 0
    aspect_error = abs(math.log((w / h) / (camera[1] / camera[0])))
    if camera[1] / camera[0] < 10:  # (extreme strips are bounded by the 32-pixel side)
        assert aspect_error < 0.11, (h, w)
        assert 0.5 < h * w / (TRAINED[0] * TRAINED[1]) < 1.5, (h, w)


def test_aspect_size_of_the_trained_aspect_is_the_trained_size():
    assert aspect_input_size((375, 1125), TRAINED) == TRAINED
    assert aspect_input_size((192, 640), (192, 640)) == (192, 640)
    assert aspect_input_size((480, 640), TRAINED) == (96, 128)


def _cameras(data_dir):
    """(name, image, K, distortion) of one frame of each real camera."""
    kitti = open_source(data_dir / "kitti_odometry" / "sequences" / "06", frames="0:1")
    indoor = open_source(data_dir / "indoor_handheld", frames="0:1")
    stem = "scene_01_00_CAMERA_01"
    ddad = cv2.cvtColor(cv2.imread(str(data_dir / "ddad_mini" / "image" / f"{stem}.jpg")), cv2.COLOR_BGR2RGB)
    k = yaml.safe_load((data_dir / "ddad_mini" / "intrinsics" / f"{stem}.yaml").read_text())
    K_ddad = np.array([[k["fx"], 0, k["cx"]], [0, k["fy"], k["cy"]], [0, 0, 1.0]])
    nyu = cv2.cvtColor(cv2.imread(str(data_dir / "nyu_mini" / "image_0.png")), cv2.COLOR_BGR2RGB)
    K_nyu = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1.0]])
    out = []
    for name, src in (("kitti", kitti), ("indoor_16_9", indoor)):
        f = next(iter(src))
        out.append((name, f.image, f.K, f.distortion))
    return out + [("ddad", ddad, K_ddad, None), ("nyu_4_3", nyu, K_nyu, None)]


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    est, what = build_estimator(None)
    assert "UNTRAINED" not in what
    return est


@pytest.mark.data
def test_published_depth_covers_the_camera_image_for_every_aspect(shipped, data_dir):
    sizes = {}
    for name, image, K, distortion in _cameras(data_dir):
        shipped.reset()
        r = shipped.step(image, K, 0.0, distortion=distortion)
        depth, K_out = output_depth(r, K, image.shape[:2])
        assert depth.shape == image.shape[:2] and np.allclose(K_out, K)
        coverage = float((depth > 0).mean())
        assert coverage >= 0.98, (name, coverage, r.depth.shape)
        sizes[name] = r.depth.shape
        # sane depth: finite, positive, not constant
        known = depth[depth > 0]
        assert np.isfinite(known).all() and np.ptp(np.log(known)) > 0.5, name
        pixels = r.depth.shape[0] * r.depth.shape[1]
        assert 0.5 < pixels / (TRAINED[0] * TRAINED[1]) < 1.5, (name, r.depth.shape)
    assert sizes["kitti"] == TRAINED and sizes["nyu_4_3"] == (96, 128)


@pytest.mark.data
def test_crop_leaves_the_border_without_depth(data_dir):
    est, _ = build_estimator(None, ["input_fit=crop"])
    _, image, K, _ = _cameras(data_dir)[-1]  # 4:3 into 3:1: most rows are cropped away
    r = est.step(image, K, 0.0)
    depth, _ = output_depth(r, K, image.shape[:2])
    assert r.depth.shape == TRAINED and (depth > 0).mean() < 0.6


@pytest.mark.data
def test_a_camera_size_change_restarts_the_stream_cleanly(shipped, data_dir):
    """KITTI frames, then NYU frames, then KITTI again through one Estimator with the network flow: every
    size change is a 'first' frame with a reason and a recurrent state of the new size; the trajectory
    continues; the frame after it has a measured flow at the new geometry size."""
    est, _ = build_estimator(None, ["flow_source=network"])
    kitti = list(open_source(data_dir / "kitti_odometry" / "sequences" / "06", frames="0:2"))
    nyu = [cv2.cvtColor(cv2.imread(str(data_dir / "nyu_mini" / f"image_{i}.png")), cv2.COLOR_BGR2RGB) for i in (0, 1)]
    K_nyu = np.array([[518.86, 0, 325.58], [0, 519.47, 253.74], [0, 0, 1.0]])
    stream = [(f.image, f.K) for f in kitti] + [(img, K_nyu) for img in nyu] + [(kitti[0].image, kitti[0].K)]
    results = [est.step(img, K, 0.1 * i) for i, (img, K) in enumerate(stream)]
    assert [r.status == "first" for r in results] == [True, False, True, False, True]
    assert "image size changed from 1226x370 to 640x480" in results[2].reset_reason
    assert results[2].depth.shape == (96, 128) and results[4].depth.shape == TRAINED
    assert est._state.image_size == TRAINED
    assert results[3].flow is not None and results[3].flow.shape[:2] == est.pose_size((480, 480 * 4 // 3))
    np.testing.assert_allclose(results[2].T_world_cam, results[1].T_world_cam)  # the trajectory continues


def test_size_change_with_online_refinement_and_a_cached_size_per_camera():
    """The refinement window holds network images of one size: a camera size change empties it."""
    torch.manual_seed(0)
    cfg = EstimatorConfig(height=64, width=192, flow_source="dis",
                          refinement=RefinementConfig(enabled=True, iterations=1, window=3))
    est = Estimator(build_model(tiny_config("cpu_smoke").model), cfg)
    rng = np.random.default_rng(0)
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1.0]])
    for i, (h, w) in enumerate([(370, 1226)] * 3 + [(240, 320)] * 4):
        img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        r = est.step(img, K, 0.1 * i)
        assert r.depth.shape == est.input_size((h, w))
    assert est.refiner is not None and est.refiner.last_stats is not None
    assert len(est.refiner.buffer) == 3 and est.refiner.buffer[0][0].shape[-2:] == (96, 128)
    assert est.input_size((240, 320)) == (96, 128) and (240, 320, "aspect") in est._input_sizes


def test_an_input_far_from_the_trained_pixel_count_is_warned_about_once_at_build() -> None:
    from depth_pose_ros.pipeline.factory import build_estimator

    said: list[str] = []
    build_estimator("models/default", warn=said.append)
    assert said == []  # the folder's own size
    build_estimator("models/default", overrides=["height=96", "width=256"], warn=said.append)
    assert said == []  # 2x the pixels is still within the trained scale
    build_estimator("models/default", overrides=["height=128", "width=416"], warn=said.append)
    assert len(said) == 1 and "128x416" in said[0] and "64x192" in said[0] and "4.3x" in said[0]
