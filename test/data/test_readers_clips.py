"""Clip dataset: gap/backward-jump rules, tensor layout, relative GT poses, loading through a DataLoader.

Batching clips into training batches is ``training.augment.collate_samples`` (test/training).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from depth_pose_ros.data.clips import Clip, ClipDataset, valid_clip_starts
from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.kitti_odometry import KittiOdometry
from depth_pose_ros.data.source import SequenceSource


def test_valid_clip_starts_hand_cases() -> None:
    stamps = [0.0, 0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.75, 0.9, 1.0, 1.25]
    # steps: .1 .1 .1 .3(gap > 2.5 periods) .1 .1 -.05(backward) .15 .1 .25 (= 2.5 periods: allowed)
    np.testing.assert_array_equal(valid_clip_starts(stamps, 3, fps=10.0), [0, 1, 4, 7, 8])
    np.testing.assert_array_equal(valid_clip_starts(stamps, 2, fps=10.0), [0, 1, 2, 4, 5, 7, 8, 9])
    np.testing.assert_array_equal(valid_clip_starts(stamps, 3, stride=4, fps=10.0), [0, 4, 8])
    np.testing.assert_array_equal(valid_clip_starts(stamps, 1), np.arange(11))
    # period from the median step (0.1) when fps is unknown; duplicates are not consecutive frames
    np.testing.assert_array_equal(valid_clip_starts([0, 0.1, 0.1, 0.2, 0.3], 2), [0, 2, 3])
    assert valid_clip_starts([0.0, 0.1], 3).size == 0
    with pytest.raises(ValueError):
        valid_clip_starts(stamps, 0)


def _frame(i: int, stamp: float, T: np.ndarray, gray: bool = False, K: np.ndarray | None = None) -> Frame:
    """A 4x5 frame whose first channel is 51 * i (and blue 255 when colour), with every GT field."""
    h, w = 4, 5
    if gray:
        img = np.full((h, w), 51 * i, np.uint8)
    else:
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 0] = 51 * i
        img[..., 2] = 255
    return Frame(image=img, K=np.diag([10.0, 10.0, 1.0]) if K is None else K, stamp=stamp, index=i,
                 T_world_cam=T, depth=np.full((h, w), float(i + 1), np.float32),
                 flow_next=np.full((h, w, 2), [i, -i], np.float32), stereo_image=img // 2, stereo_baseline=0.3)


def _rot_y(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _source(n: int = 6, stamps: list[float] | None = None, **kw: object) -> SequenceSource:
    stamps = stamps or [0.1 * i for i in range(n)]
    frames = []
    for i in range(n):
        T = np.eye(4)
        T[:3, :3] = _rot_y(90.0) if i == 0 else np.eye(3)
        T[:3, 3] = [0.0, 0.0, float(i)]
        frames.append(_frame(i, stamps[i], T, **kw))
    return SequenceSource(frames, name="mem", fps=10.0, has_gt_pose=True, has_stereo=True)


def test_clip_tensors_and_relative_poses() -> None:
    ds = ClipDataset(_source(), clip_len=3)
    assert len(ds) == 4
    clip = ds[0]
    assert clip.images.shape == (3, 3, 4, 5) and clip.images.dtype == torch.float32
    assert clip.images[1, 0, 0, 0].item() == pytest.approx(51 / 255) and clip.images[2, 2].max() == 1.0
    assert clip.K.shape == (3, 3) and clip.K.dtype == torch.float32
    assert clip.stamps.dtype == torch.float64
    np.testing.assert_allclose(clip.stamps.numpy(), [0.0, 0.1, 0.2])
    assert clip.indices.tolist() == [0, 1, 2]
    assert clip.gt_depth.shape == (3, 1, 4, 5) and clip.gt_depth[2].max().item() == 3.0
    assert clip.gt_flow.shape == (2, 2, 4, 5)
    assert clip.gt_flow[1, :, 0, 0].tolist() == [1.0, -1.0]
    assert clip.stereo_images is None  # only with with_stereo
    # T_first_t maps points of camera t into camera 0. Camera 0: world origin, R0 = rot_y(90);
    # camera 2: world (0, 0, 2), unrotated. Camera 2's origin in camera 0 coordinates is
    # R0^T (0, 0, 2) = (-2, 0, 0), and its axes are rotated by R0^T = rot_y(-90).
    P = clip.gt_poses.double().numpy()
    np.testing.assert_allclose(P[0], np.eye(4), atol=1e-6)
    np.testing.assert_allclose(P[2][:3, 3], [-2.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(P[2][:3, :3], _rot_y(-90.0), atol=1e-6)


def test_gray_stereo_transform_and_varying_K() -> None:
    src = _source(gray=True)
    ds = ClipDataset(src, clip_len=2, stride=2, with_stereo=True, transform=lambda c: c)
    clip = ds[1]
    assert clip.images.shape == (2, 1, 4, 5) and clip.indices.tolist() == [2, 3]
    assert clip.stereo_images.shape == (2, 1, 4, 5)
    assert clip.stereo_baseline.item() == pytest.approx(0.3)

    def flip(c):  # the augmentation hook sees and returns a Clip
        c.images = c.images.flip(-1)
        return c

    flipped = ClipDataset(src, clip_len=2, transform=flip)[0]
    torch.testing.assert_close(flipped.images, ClipDataset(src, clip_len=2)[0].images.flip(-1))
    frames = [_frame(i, 0.1 * i, np.eye(4), K=np.diag([10.0 + i, 10.0, 1.0])) for i in range(3)]
    varying = ClipDataset(SequenceSource(frames, name="k", fps=10.0), clip_len=3)[0]
    assert varying.K.shape == (3, 3, 3) and varying.K[2, 0, 0].item() == 12.0
    no_stereo = SequenceSource(frames, name="k", fps=10.0, has_stereo=False)
    with pytest.raises(ValueError, match="stereo"):
        ClipDataset(no_stereo, clip_len=2, with_stereo=True)


def test_gaps_skip_clips_and_missing_gt() -> None:
    stamps = [0.0, 0.1, 0.2, 0.5, 0.6, 0.7]
    src = _source(stamps=stamps)
    ds = ClipDataset(src, clip_len=3)
    assert ds.starts.tolist() == [0, 3]
    assert ds[1].indices.tolist() == [3, 4, 5]
    frames = [_frame(i, 0.1 * i, np.eye(4)) for i in range(3)]
    frames[1].T_world_cam = None
    frames[2].depth = None
    clip = ClipDataset(frames, clip_len=3)[0]  # a plain list of Frames works too
    assert clip.gt_poses is None and clip.gt_depth is None and clip.gt_flow is not None
    with pytest.raises(IndexError):
        ds[2]


def test_clips_through_a_dataloader() -> None:
    ds = ClipDataset(_source(), clip_len=3, with_stereo=True)
    a, b = ds[0], ds[2]
    assert a.indices.tolist() == [0, 1, 2] and b.indices.tolist() == [2, 3, 4]
    assert b.gt_poses.shape == (3, 4, 4) and b.gt_depth.shape == (3, 1, 4, 5) and b.gt_flow.shape == (2, 2, 4, 5)
    assert b.stereo_images.shape == (3, 3, 4, 5) and b.stereo_baseline.shape == ()
    assert (a.source, b.source) == ("mem", "mem")
    # a clip at +b along x: stereo_T maps its points into the partner camera, X - [b, 0, 0]
    assert b.stereo_T[0, 3].item() == pytest.approx(-0.3) and torch.equal(b.stereo_T[:3, :3], torch.eye(3))
    loader = DataLoader(ds, batch_size=2, shuffle=False, collate_fn=list)
    batches = list(loader)
    assert [len(batch) for batch in batches] == [2, 2]
    assert all(isinstance(c, Clip) for batch in batches for c in batch)
    assert [c.indices.tolist()[0] for batch in batches for c in batch] == [0, 1, 2, 3]
    assert batches[0][0].stamps.dtype == torch.float64 and batches[0][0].indices.dtype == torch.int64


@pytest.mark.data
def test_real_kitti_clips(kitti_odometry_dir: Path) -> None:
    src = KittiOdometry(kitti_odometry_dir, sequence="06", stereo=True, frames=slice(0, 10))
    ds = ClipDataset(src, clip_len=3, with_stereo=True)
    assert len(ds) == 8
    clip = ds[4]
    assert clip.images.shape == (3, 1, 370, 1226) and clip.stereo_images.shape == (3, 1, 370, 1226)
    assert clip.stereo_baseline.item() == pytest.approx(0.537, abs=1e-3)
    P = clip.gt_poses.double().numpy()
    np.testing.assert_allclose(P[0], np.eye(4), atol=1e-6)
    # the car drives forward along +z of the camera: about 1 m per frame here
    assert 0.5 < P[1][2, 3] < 2.0 and P[2][2, 3] > P[1][2, 3]
