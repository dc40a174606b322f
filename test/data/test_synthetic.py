"""Synthetic driving world: determinism, shapes, exact flow/depth/pose agreement, masks, trajectories."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.synthetic import SyntheticSequence
from depth_pose_ros.data.synthetic_render import GROUND, SKY
from depth_pose_ros.data.synthetic_scene import SyntheticWorld


@pytest.fixture(scope="module")
def seq() -> SyntheticSequence:
    return SyntheticSequence(seed=3, length=40, height=96, width=320)


def _pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))


def rigid_flow(depth: np.ndarray, K: np.ndarray, T_world_a: np.ndarray, T_world_b: np.ndarray) -> np.ndarray:
    """Flow a -> b of a static scene, computed independently: back-project, move, project (float64).

    Poses are camera-to-world, so ``T_b_a = inv(T_world_b) @ T_world_a`` maps camera-a points to b.
    """
    h, w = depth.shape
    uu, vv = _pixel_grid(h, w)
    z = depth.astype(np.float64)
    pts = np.stack([(uu - K[0, 2]) / K[0, 0] * z, (vv - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    T = np.linalg.inv(T_world_b) @ T_world_a
    moved = pts @ T[:3, :3].T + T[:3, 3]
    u2 = K[0, 0] * moved[..., 0] / moved[..., 2] + K[0, 2]
    v2 = K[1, 1] * moved[..., 1] / moved[..., 2] + K[1, 2]
    return np.stack([u2 - uu, v2 - vv], axis=-1)


# ---- determinism -----------------------------------------------------------------------------------
def _assert_frames_equal(a: Frame, b: Frame) -> None:
    for name in ("image", "K", "T_world_cam", "depth", "flow_next", "flow_prev", "occlusion_next",
                 "moving_mask"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.stamp == b.stamp and a.index == b.index and a.source == b.source


def test_same_seed_gives_identical_frames_in_any_order(seq: SyntheticSequence) -> None:
    other = SyntheticSequence(seed=3, length=40, height=96, width=320)
    backwards = [other[i] for i in (12, 11, 10)]  # reverse order, different cache history
    forwards = [seq[i] for i in (10, 11, 12)]
    for a, b in zip(forwards, backwards[::-1]):
        _assert_frames_equal(a, b)
    _assert_frames_equal(seq[11], seq[-29])  # negative index, served from the cache this time


def test_different_seeds_differ() -> None:
    a = SyntheticSequence(seed=0, length=5, height=48, width=160)[2]
    b = SyntheticSequence(seed=1, length=5, height=48, width=160)[2]
    assert np.mean(a.image != b.image) > 0.5
    assert np.mean(np.abs(a.depth - b.depth) > 0.1) > 0.3
    assert not np.allclose(a.T_world_cam, b.T_world_cam)


# ---- shapes, intrinsics, frame fields -------------------------------------------------------------------
@pytest.mark.parametrize("height,width", [(48, 160), (131, 250), (192, 640)])
def test_shapes_and_intrinsics_at_any_resolution(height: int, width: int) -> None:
    s = SyntheticSequence(seed=0, length=3, height=height, width=width, num_moving=1)
    f = s[1]
    assert len(s) == 3
    assert f.image.shape == (height, width, 3) and f.image.dtype == np.uint8
    assert f.depth.shape == (height, width) and f.depth.dtype == np.float32
    for flow in (f.flow_next, f.flow_prev):
        assert flow.shape == (height, width, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()
    assert f.occlusion_next.shape == f.moving_mask.shape == (height, width)
    assert f.occlusion_next.dtype == f.moving_mask.dtype == bool
    assert f.K[0, 0] == f.K[1, 1] == pytest.approx(0.5805 * width, rel=1e-3)  # KITTI-like fx / W
    assert f.K[0, 2] == (width - 1) / 2 and f.K[1, 2] == (height - 1) / 2
    assert f.T_world_cam.shape == (4, 4) and f.stamp == pytest.approx(0.1) and f.index == 1
    assert f.source == "synthetic:seed=0"
    assert s[0].flow_prev is None and s[2].flow_next is None and s[2].occlusion_next is None
    assert s[0].flow_next is not None and s[2].flow_prev is not None


def test_gray_option_and_sequence_protocol() -> None:
    s = SyntheticSequence(seed=2, length=3, height=40, width=120, gray=True)
    frames = list(s)
    assert [f.index for f in frames] == [0, 1, 2]
    assert frames[0].image.shape == (40, 120) and frames[0].is_gray
    np.testing.assert_allclose(s.stamps(), [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(s.poses()[2], frames[2].T_world_cam)
    with pytest.raises(IndexError, match="out of range"):
        s[3]
    with pytest.raises(TypeError):
        s[1.0]  # type: ignore[index]


@pytest.mark.parametrize("kwargs,word", [
    (dict(length=0), "length"), (dict(height=4), "height"), (dict(speed_range=(10.0, 5.0)), "speed_range"),
    (dict(num_moving=-1), "num_moving"), (dict(stereo_baseline=-0.5), "stereo_baseline"),
    (dict(fps=0.0), "fps"), (dict(hfov_deg=200.0), "hfov_deg"),
])
def test_bad_arguments_are_named(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        SyntheticSequence(**kwargs)


# ---- geometry ground truth ---------------------------------------------------------------------------
def test_road_depth_matches_hand_computed_plane() -> None:
    """Level camera (no jitter) 1.65 m above a flat road: a road pixel in row v has z = 1.65 fy / (v - cy)."""
    s = SyntheticSequence(seed=5, length=2, height=64, width=200, pose_jitter_deg=0.0)
    view = s.view(0)
    rows = np.nonzero(view.surface == GROUND)[0]
    z = view.depth[view.surface == GROUND]
    expected = 1.65 * s.K[1, 1] / (rows - s.K[1, 2])
    np.testing.assert_allclose(z, expected, rtol=1e-5)
    assert np.all(view.depth[view.surface == SKY] == 0)
    assert (view.surface == SKY).any() and (view.surface >= 0).any()


def test_forward_flow_equals_depth_plus_relative_pose(seq: SyntheticSequence) -> None:
    for i in (4, 17, 30):
        f, g = seq[i], seq[i + 1]
        rigid = (f.depth > 0) & ~f.moving_mask & ~f.occlusion_next
        assert rigid.mean() > 0.4
        expected = rigid_flow(f.depth, f.K, f.T_world_cam, g.T_world_cam)
        err = np.abs(expected - f.flow_next)[rigid]
        assert err.max() < 0.01, err.max()
        assert np.abs(f.flow_next[rigid]).max() > 5  # it is a real motion, not a trivial zero flow


def test_backward_flow_equals_depth_plus_relative_pose(seq: SyntheticSequence) -> None:
    f, p = seq[20], seq[19]
    static = (f.depth > 0) & ~f.moving_mask
    expected = rigid_flow(f.depth, f.K, f.T_world_cam, p.T_world_cam)
    in_front = np.isfinite(expected).all(axis=-1) & (np.abs(expected) < 1e4).all(axis=-1)
    err = np.abs(expected - f.flow_prev)[static & in_front]
    assert err.max() < 0.01
    # forward then backward flow returns to the start on pixels visible in both frames
    g = seq[21]
    vis = ~f.occlusion_next & static
    h, w = f.depth.shape
    uu, vv = _pixel_grid(h, w)
    back = cv2.remap(g.flow_prev, (uu + f.flow_next[..., 0]).astype(np.float32),
                     (vv + f.flow_next[..., 1]).astype(np.float32), cv2.INTER_LINEAR)
    cycle = np.linalg.norm(f.flow_next + back, axis=-1)[vis]
    assert np.median(cycle) < 0.05


def test_sky_flow_is_the_rotation_only_homography(seq: SyntheticSequence) -> None:
    f, g = seq[8], seq[9]
    sky = f.depth == 0
    assert sky.sum() > 100
    R = (np.linalg.inv(g.T_world_cam) @ f.T_world_cam)[:3, :3]
    Hm = f.K @ R @ np.linalg.inv(f.K)
    h, w = sky.shape
    uu, vv = _pixel_grid(h, w)
    p = np.stack([uu, vv, np.ones_like(uu)], axis=-1) @ Hm.T
    expected = np.stack([p[..., 0] / p[..., 2] - uu, p[..., 1] / p[..., 2] - vv], axis=-1)
    np.testing.assert_allclose(f.flow_next[sky], expected[sky], atol=1e-3)


def test_moving_objects_flow_includes_their_motion() -> None:
    s = SyntheticSequence(seed=1, length=60, height=96, width=320, num_moving=3)
    world = s.world
    medians = []
    for i in range(0, 59, 4):
        f = s[i]
        moving = f.moving_mask & ~f.occlusion_next
        if moving.sum() < 30:
            continue
        g = s[i + 1]
        # expected: the point rides with its car, T = inv(T_w_cam') T_w_obj' inv(T_w_obj) T_w_cam
        obj = world.boxes.obj[s.view(i).surface[moving]]
        expected = np.zeros((moving.sum(), 2))
        for k in np.unique(obj):
            motion = world.object_pose(k, i + 1) @ np.linalg.inv(world.object_pose(k, i))
            flow_k = rigid_flow(f.depth, f.K, motion @ f.T_world_cam, g.T_world_cam)
            expected[obj == k] = flow_k[moving][obj == k]
        assert np.abs(expected - f.flow_next[moving]).max() < 0.01
        rigid = rigid_flow(f.depth, f.K, f.T_world_cam, g.T_world_cam)
        medians.append(np.median(np.linalg.norm(rigid - f.flow_next, axis=-1)[moving]))
        # the static pixels of the same frame still agree with the rigid flow
        static = (f.depth > 0) & ~f.moving_mask
        assert np.abs(rigid - f.flow_next)[static].max() < 0.01
    assert len(medians) >= 5, "moving cars should be visible in several frames"
    # every moving car's flow differs from the static-world flow; oncoming cars by pixels
    assert min(medians) > 0.02 and max(medians) > 1.0, medians


def test_moving_mask_is_the_moving_boxes(seq: SyntheticSequence) -> None:
    view = seq.view(10)
    obj = seq.world.boxes.obj
    expected = (view.surface >= 0) & (obj[np.maximum(view.surface, 0)] >= 0)
    np.testing.assert_array_equal(seq[10].moving_mask, expected)


def test_occlusion_mask_is_plausible(seq: SyntheticSequence) -> None:
    f, g = seq[15], seq[16]
    occ = f.occlusion_next
    h, w = occ.shape
    # driving forward, the image expands: the bottom rows (near road) and the side columns leave the view
    assert occ[-1].mean() > 0.9
    assert occ[h // 3:, 0].mean() > 0.5 or occ[h // 3:, -1].mean() > 0.5
    assert occ[h // 4: 3 * h // 4, w // 4: 3 * w // 4].mean() < 0.2
    assert 0.02 < occ.mean() < 0.6
    # every non-occluded pixel lands inside the next image on a surface at the point's depth
    uu, vv = _pixel_grid(h, w)
    x, y = uu + f.flow_next[..., 0], vv + f.flow_next[..., 1]
    vis = ~occ
    assert x[vis].min() >= 0 and x[vis].max() <= w - 1 and y[vis].min() >= 0 and y[vis].max() <= h - 1
    solid = vis & (f.depth > 0) & ~f.moving_mask
    T = np.linalg.inv(g.T_world_cam) @ f.T_world_cam
    z = f.depth[solid]
    pts = np.stack([(uu[solid] - f.K[0, 2]) / f.K[0, 0] * z, (vv[solid] - f.K[1, 2]) / f.K[1, 1] * z, z])
    z_next = (T[:3, :3] @ pts + T[:3, 3:4])[2]
    nearest = g.depth[np.rint(y[solid]).astype(int), np.rint(x[solid]).astype(int)]
    agree = np.abs(nearest - z_next) < 0.05 * z_next
    assert agree.mean() > 0.95


def test_brightness_constancy_along_the_flow(seq: SyntheticSequence) -> None:
    """Warping the next image with the GT flow reproduces this image on visible pixels."""
    f, g = seq[25], seq[26]
    h, w = f.depth.shape
    uu, vv = _pixel_grid(h, w)
    warped = cv2.remap(g.image, (uu + f.flow_next[..., 0]).astype(np.float32),
                       (vv + f.flow_next[..., 1]).astype(np.float32), cv2.INTER_LINEAR)
    err = np.abs(warped.astype(np.float32) - f.image.astype(np.float32)).mean(axis=-1)[~f.occlusion_next]
    assert np.median(err) < 2.0
    assert np.mean(err) < 5.0
    # and the image is not trivially flat: photometric losses need texture
    gy, gx = np.gradient(cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY).astype(np.float32))
    assert np.mean(np.hypot(gx, gy) > 2.0) > 0.3


def test_stereo_right_image_matches_disparity() -> None:
    s = SyntheticSequence(seed=4, length=2, height=96, width=320, stereo_baseline=0.54)
    f = s[0]
    assert f.stereo_image.shape == f.image.shape and f.stereo_baseline == 0.54
    h, w = f.depth.shape
    uu, vv = _pixel_grid(h, w)
    disp = np.where(f.depth > 0, f.K[0, 0] * 0.54 / np.maximum(f.depth, 1e-6), 0.0)
    warped = cv2.remap(f.stereo_image, (uu - disp).astype(np.float32), vv.astype(np.float32),
                       cv2.INTER_LINEAR)
    ok = (f.depth > 3) & (uu - disp > 2)
    err = np.abs(warped.astype(np.float32) - f.image.astype(np.float32)).mean(axis=-1)[ok]
    assert np.median(err) < 3.0
    assert np.abs(f.stereo_image.astype(int) - f.image).mean() > 3  # a different view


def test_lighting_noise_is_off_by_default_and_changes_only_the_image() -> None:
    plain = SyntheticSequence(seed=0, length=3, height=48, width=160)
    noisy = SyntheticSequence(seed=0, length=3, height=48, width=160, lighting_noise=0.1)
    a, b = plain[1], noisy[1]
    np.testing.assert_array_equal(a.depth, b.depth)
    np.testing.assert_array_equal(a.flow_next, b.flow_next)
    assert np.abs(a.image.astype(int) - b.image).mean() > 1.0
    # without noise two neighbouring frames share the same colours along the flow (no gain drift)
    assert abs(float(plain[1].image.mean()) - float(plain[2].image.mean())) < 10


# ---- trajectory -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_trajectory_speeds_yaw_rates_and_height(seed: int) -> None:
    world = SyntheticWorld(seed=seed, length=120, fps=10.0, speed_range=(5.0, 15.0), num_moving=0)
    poses = np.stack([world.camera_pose(i) for i in range(120)])
    step = np.linalg.norm(np.diff(poses[:, :3, 3], axis=0), axis=1)
    assert step.min() > 0.5 * 0.98 and step.max() < 1.5 * 1.02  # 5-15 m/s at 10 Hz
    fwd = poses[:, :3, 2]  # optical axis in the world
    yaw = np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))
    yaw_rate = np.rad2deg(np.diff(yaw))
    assert np.abs(yaw_rate).max() < 3.0  # a few degrees per frame at most
    assert np.abs(yaw_rate).max() > 0.3  # and these seeds do take a curve
    assert np.abs(np.diff(yaw_rate)).max() < 0.5  # smooth: no jumps in the yaw rate
    assert np.abs(poses[:, 1, 3] + 1.65).max() < 0.05  # camera 1.65 m above the road (y down)
    down = poses[:, :3, 1]  # camera y axis stays close to the world's down direction
    assert np.rad2deg(np.arccos(np.clip(down[:, 1], -1, 1))).max() < 1.0


def test_world_has_curves_and_street_objects() -> None:
    world = SyntheticWorld(seed=0, length=100)
    assert len(world.road.turns) >= 1
    b = world.boxes
    assert len(b) > 100
    assert (b.obj >= 0).sum() == 2 * len(world.moving) == 6  # body + cabin per moving car
    # nothing static stands on the two lanes (3.5 m each side of the centreline); boxes are aligned
    # with the road, so their half extent across it is half[:, 0]
    static = b.obj < 0
    _, d = world.road.project(b.center[static][:, [0, 2]])
    assert np.all(np.abs(d) - b.half[static, 0] > 3.45)
