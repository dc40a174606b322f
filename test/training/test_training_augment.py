"""Augmentation keeps the geometry right: K, mirrored poses, GT flow/depth and the stereo baseline."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.data.clips import Clip, frames_to_clip
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.warp import rigid_flow, warp_rigid
from training.augment import (
    AugmentedClips,
    ColorParams,
    GeometricParams,
    apply_color,
    apply_geometric_images,
    apply_geometric_K,
    collate_samples,
    make_sample,
    sample_geometric,
    sample_rng,
)
from training.config import AugmentConfig

H0, W0 = 60, 80
K0 = np.array([[50.0, 0.0, 39.5], [0.0, 50.0, 29.5], [0.0, 0.0, 1.0]])
POINT = np.array([0.4, -0.2, 2.0])  # projects to (49.5, 24.5)


def _project(K: np.ndarray, X: np.ndarray) -> np.ndarray:
    p = K @ X
    return p[:2] / p[2]


def _blob_clip(sigma: float = 2.5) -> Clip:
    u, v = _project(K0, POINT)
    ys, xs = np.mgrid[0:H0, 0:W0].astype(np.float64)
    blob = np.exp(-((xs - u) ** 2 + (ys - v) ** 2) / (2 * sigma**2))
    img = torch.from_numpy(blob).float()[None].expand(3, H0, W0)
    return Clip(images=torch.stack([img] * 3), K=torch.from_numpy(K0).float(), stamps=torch.arange(3.0),
                indices=torch.arange(3))


def _centroid(img: torch.Tensor) -> np.ndarray:
    m = img[0].double().numpy()
    m = np.where(m > 0.05 * m.max(), m, 0.0)
    ys, xs = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    return np.array([(m * xs).sum() / m.sum(), (m * ys).sum() / m.sum()])


@pytest.mark.parametrize("params", [
    GeometricParams((60, 80), 0, 0, (60, 80), False),  # identity
    GeometricParams((60, 80), 0, 0, (60, 80), True),  # flip only
    GeometricParams((90, 120), 17, 9, (64, 96), False),  # zoom 1.5 + crop
    GeometricParams((90, 120), 17, 9, (64, 96), True),  # zoom + crop + flip
    GeometricParams((32, 48), 0, 0, (32, 48), False),  # shrink (antialiased), anisotropic
])
def test_projected_point_lands_on_the_same_content(params: GeometricParams) -> None:
    clip = _blob_clip()
    out = apply_geometric_images(clip.images, params)
    K = apply_geometric_K(clip.K.double(), (H0, W0), params).numpy()
    X = POINT * np.array([-1.0, 1.0, 1.0]) if params.flip else POINT  # flipped image = mirrored world
    expected = _project(K, X)
    got = _centroid(out[0])
    np.testing.assert_allclose(got, expected, atol=0.06)


def test_random_resize_crop_flip_keeps_K_right() -> None:
    clip = _blob_clip(sigma=3.0)
    cfg = AugmentConfig(resize_crop_prob=1.0, max_scale=1.6, hflip_prob=0.5)
    rng = np.random.default_rng(5)
    checked = 0
    for _ in range(12):
        p = sample_geometric(rng, cfg, (64, 96))
        K = apply_geometric_K(clip.K.double(), (H0, W0), p).numpy()
        X = POINT * np.array([-1.0, 1.0, 1.0]) if p.flip else POINT
        u, v = _project(K, X)
        if not (16 < u < 80 and 16 < v < 48):  # blob (partly) cropped away
            continue
        np.testing.assert_allclose(_centroid(apply_geometric_images(clip.images, p)[0]), [u, v], atol=0.06)
        checked += 1
    assert checked >= 4


def test_a_wrong_principal_point_rule_would_be_caught() -> None:
    """The centroid test resolves the half-pixel term of scale_intrinsics (cx' = s (cx + .5) - .5)."""
    clip = _blob_clip()
    p = GeometricParams((90, 120), 0, 0, (90, 120), False)
    got = _centroid(apply_geometric_images(clip.images, p)[0])
    naive_K = K0.copy()
    naive_K[:2] *= 1.5  # cx' = s cx: off by 0.25 px at s = 1.5
    assert np.abs(got - _project(naive_K, POINT)).max() > 0.2


def test_color_jitter_changes_only_the_network_input() -> None:
    clip = _blob_clip()
    cfg = AugmentConfig(color_jitter_prob=1.0, hflip_prob=0.0, resize_crop_prob=0.0)
    s = make_sample(clip, (64, 96), 3, cfg, np.random.default_rng(1))
    plain = make_sample(clip, (64, 96), 3, AugmentConfig(enabled=False), train=False)
    assert torch.equal(s.images, plain.images)
    assert not torch.allclose(s.net_images, s.images)
    assert s.net_images.min() >= 0 and s.net_images.max() <= 1
    c = ColorParams(hue=0.25)
    gray = torch.full((1, 3, 4, 4), 0.5)
    assert torch.allclose(apply_color(gray, c), gray, atol=1e-5)  # hue does not move grays


def test_sample_rng_is_a_pure_function_of_seed_epoch_index() -> None:
    a = sample_rng(0, 1, 7).random(4)
    assert np.array_equal(a, sample_rng(0, 1, 7).random(4))
    assert not np.array_equal(a, sample_rng(0, 2, 7).random(4))


@pytest.fixture(scope="module")
def synthetic_frames():
    src = open_source("synthetic:seed=4,length=3,height=64,width=96,stereo_baseline=0.5,num_moving=0")
    return [src[i] for i in range(3)]


@pytest.mark.parametrize("flip", [False, True])
def test_gt_flow_depth_and_poses_stay_consistent(synthetic_frames, flip: bool) -> None:
    """After zoom + crop (+ flip), the GT flow equals the rigid flow of GT depth, new K and mirrored poses."""
    clip = frames_to_clip(synthetic_frames)
    p = GeometricParams((80, 120), 11, 7, (64, 96), flip)
    rng = np.random.default_rng(0)
    cfg = AugmentConfig(color_jitter_prob=0.0)
    s = make_sample(clip, (64, 96), 3, cfg, rng)  # random params: only to exercise the code path
    assert s.images.shape == (3, 3, 64, 96)

    from training import augment

    orig = augment.sample_geometric
    augment.sample_geometric = lambda *a, **k: p
    try:
        s = make_sample(clip, (64, 96), 3, cfg, rng)
    finally:
        augment.sample_geometric = orig
    T_1_0 = torch.linalg.inv(s.gt_poses[1]) @ s.gt_poses[0]  # maps frame-0 points into frame 1
    depth0 = s.gt_depth[0:1]
    flow, _ = rigid_flow(depth0.clamp(min=1e-3), T_1_0[None], s.K[None])
    gt = s.gt_flow[0:1]
    valid = (depth0 > 0.5) & (depth0 < 60) & torch.isfinite(gt).all(1, keepdim=True)
    err = (flow - torch.nan_to_num(gt)).norm(dim=1, keepdim=True)[valid]
    assert valid.sum() > 1000
    assert float(err.median()) < 0.15
    # a wrong sign of the flipped dx would be off by twice the horizontal flow
    assert float((flow[:, 0:1] - torch.nan_to_num(gt[:, 0:1]))[valid].abs().median()) < 0.15


@pytest.mark.parametrize("flip", [False, True])
def test_stereo_partner_pose_reconstructs_the_left_image(synthetic_frames, flip: bool) -> None:
    clip = frames_to_clip(synthetic_frames, with_stereo=True)
    from training import augment

    p = GeometricParams((64, 96), 0, 0, (64, 96), flip)
    orig = augment.sample_geometric
    augment.sample_geometric = lambda *a, **k: p
    try:
        s = make_sample(clip, (64, 96), 3, AugmentConfig(color_jitter_prob=0.0), np.random.default_rng(0))
    finally:
        augment.sample_geometric = orig
    assert float(s.stereo_T[0, 3]) == pytest.approx(0.5 if flip else -0.5)
    depth = s.gt_depth[0:1].clamp(min=0.1)
    good = (s.gt_depth[0:1] > 0) & (s.gt_depth[0:1] < 50)

    def error(T: torch.Tensor) -> float:
        warped, valid = warp_rigid(s.stereo_images[0:1], depth, T[None], s.K[None])
        m = (valid > 0) & good
        return float((warped - s.images[0:1]).abs().mean(1, keepdim=True)[m].mean())

    wrong = s.stereo_T.clone()
    wrong[0, 3] = -wrong[0, 3]
    assert error(s.stereo_T) < 0.5 * error(wrong)
    assert error(s.stereo_T) < 0.03


def test_augmented_clips_index_by_epoch_and_combine_datasets(synthetic_frames) -> None:
    clip = frames_to_clip(synthetic_frames)

    class Two:
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> Clip:
            return clip

    ds = AugmentedClips([Two(), Two()], (64, 96), 1, AugmentConfig(), seed=3)
    assert len(ds) == 4
    a, b = ds[(3, 0)], ds[(3, 0)]
    assert torch.equal(a.net_images, b.net_images) and torch.equal(a.K, b.K)
    assert a.images.shape == (3, 1, 64, 96)  # converted to the network's gray input
    with pytest.raises(IndexError):
        ds.clip(4)


@pytest.mark.parametrize("flip", [False, True])
def test_collated_batch_carries_the_sample_fields(synthetic_frames, flip: bool) -> None:
    """The batch stacks the samples' stereo_T (mirrored baseline on a flip) and names each skipped frame's source."""
    from training import augment

    clip = frames_to_clip(synthetic_frames, with_stereo=True, source="synthetic:x")
    clip.skipped = ((7, "corrupt"),)
    p = GeometricParams((64, 96), 0, 0, (64, 96), flip)
    orig = augment.sample_geometric
    augment.sample_geometric = lambda *a, **k: p
    try:
        s = make_sample(clip, (64, 96), 1, AugmentConfig(color_jitter_prob=0.0), np.random.default_rng(0))
    finally:
        augment.sample_geometric = orig
    assert s.skipped == ((7, "corrupt"),) and s.stamps is clip.stamps and s.indices is clip.indices
    assert float(s.stereo_baseline) == pytest.approx(-0.5 if flip else 0.5)
    batch = collate_samples([s, s])
    assert batch.batch_size == 2 and batch.K.shape == (2, 3, 3) and batch.net_images.shape == (2, 3, 1, 64, 96)
    assert batch.stereo_T.shape == (2, 4, 4)
    assert batch.stereo_T[:, 0, 3].tolist() == pytest.approx([0.5 if flip else -0.5] * 2)
    assert batch.sources == ("synthetic:x", "synthetic:x")
    assert batch.skipped == (("synthetic:x", 7, "corrupt"), ("synthetic:x", 7, "corrupt"))
