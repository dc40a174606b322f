"""The geometry teacher: triangulated DIS two-view depth at a higher resolution as a sparse depth target.

Checks the pieces (spec scaling, sparse maps, area resampling under augmentation, the scale-invariant loss)
and the whole: on synthetic frames the teacher's relative depth at 3x the training size is far more accurate
than at the training size itself, the cache returns the same maps, and a training step uses the term.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.data.clips import ClipDataset
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.pose_error import rotation_error_deg
from depth_pose_ros.geometry.two_view import TwoViewConfig
from depth_pose_ros.losses.geometric import scale_invariant_log_loss
from depth_pose_ros.losses.views import teacher_pair_flows, teacher_T_s_t
from depth_pose_ros.utils.config import ConfigError
from training.augment import GeometricParams, apply_geometric_sparse_depth, make_sample
from training.config import AugmentConfig, load_train_config
from training.geometry_teacher import TeacherDepth, _sparse_at, teacher_spec

SPEC = "synthetic:seed=0,length=6,height=64,width=192"


def test_teacher_spec_scales_rendered_sizes_and_keeps_recorded_sources():
    assert teacher_spec(SPEC, 3) == "synthetic:seed=0,length=6,height=192,width=576"
    assert teacher_spec("data:kitti_odometry", 2) == "data:kitti_odometry"


def test_sparse_points_land_on_the_output_grid_and_share_pixels_in_log_depth():
    # two points in one 3x3 block of the 3x larger image (log-mean 2.0), one elsewhere, one off the image
    px = np.array([[3.0, 3.0], [4.0, 4.0], [30.0, 0.0], [-5.0, 1.0]])
    z = np.array([1.0, 4.0, 7.0, 9.0])
    idx, d = _sparse_at(px, z, (30, 60), (10, 20))
    got = dict(zip(idx.tolist(), d.tolist()))
    assert set(got) == {1 * 20 + 1, 0 * 20 + 10}
    assert got[21] == pytest.approx(2.0, rel=1e-6) and got[10] == pytest.approx(7.0, rel=1e-6)


def test_scale_invariant_log_loss_ignores_scale_and_sees_shape():
    torch.manual_seed(0)
    depth = torch.rand(2, 1, 8, 12) * 10 + 1
    target = torch.zeros_like(depth)
    known = torch.rand_like(depth) < 0.5
    target[known] = depth[known] * 3.7  # same shape, another scale
    assert scale_invariant_log_loss(depth, target).item() == pytest.approx(0.0, abs=1e-6)
    warped = target.clone()
    warped[..., :4] *= 2.0  # a different shape
    assert scale_invariant_log_loss(depth, warped).item() > 0.05
    assert scale_invariant_log_loss(depth, torch.zeros_like(depth)).item() == 0.0  # no points: no signal
    # gradients reach the depth only where the target has points
    d = depth.clone().requires_grad_(True)
    scale_invariant_log_loss(d, warped).backward()
    assert torch.all(d.grad[~known] == 0) and d.grad[known].abs().sum() > 0


def test_area_resampling_keeps_the_points_of_a_sparse_map():
    depth = torch.zeros(1, 1, 40, 120)
    depth[0, 0, ::7, ::7] = 5.0  # 1 point in 49 pixels
    p = GeometricParams(resized_hw=(10, 30), x0=0, y0=0, flip=False, out_hw=(10, 30))
    out = apply_geometric_sparse_depth(depth, p)
    nearest = torch.nn.functional.interpolate(depth, size=(10, 30), mode="nearest-exact")
    assert (out > 0).sum() > 2 * (nearest > 0).sum()  # nearest sampling would drop most points
    torch.testing.assert_close(out[out > 0], torch.full_like(out[out > 0], 5.0))


@pytest.mark.slow
def test_teacher_at_three_times_the_size_is_accurate_and_cached(tmp_path):
    frames = list(open_source(SPEC))
    cfg = TwoViewConfig()

    def abs_rel(teacher: TeacherDepth) -> float:
        errs = []
        for i, f in enumerate(frames):
            m = teacher[i]
            ok = (m > 0) & (f.depth > 0)
            assert ok.sum() > 500
            s = np.exp(np.median(np.log(f.depth[ok]) - np.log(m[ok])))
            errs.append(np.mean(np.abs(m[ok] * s - f.depth[ok]) / f.depth[ok]))
        return float(np.mean(errs))

    same_size = TeacherDepth.build(SPEC, {}, 1, (64, 192), cfg, cache_dir=None, log=lambda _: None)
    larger = TeacherDepth.build(SPEC, {}, 3, (64, 192), cfg, cache_dir=tmp_path, log=lambda _: None)
    assert abs_rel(larger) < 0.15 and abs_rel(larger) < 0.6 * abs_rel(same_size)
    cached = TeacherDepth.build(SPEC, {}, 3, (64, 192), cfg, cache_dir=tmp_path,
                                log=lambda _: pytest.fail("recomputed instead of read from the cache"))
    for i in range(len(frames)):
        np.testing.assert_array_equal(cached[i], larger[i])


@pytest.mark.parametrize("flip", [False, True])
def test_teacher_motions_scaled_to_the_depth_are_the_true_motions_also_when_flipped(flip):
    """``two_view_flow: teacher``: the cached pair motions, through the clip augmentation (a flip mirrors them)
    and scaled by aligning a metric depth to the teacher points, are the true metric motions T_s_t."""
    spec = "synthetic:seed=5,length=4,height=64,width=192,num_moving=0"
    teacher = TeacherDepth.build(spec, {}, 3, (64, 192), TwoViewConfig(), cache_dir=None, log=lambda _: None)
    assert np.all(np.isfinite(teacher.pose(0))) and not np.any(np.isfinite(teacher.pose(3)))  # last: no next
    clip = ClipDataset(open_source(spec), clip_len=3, teacher=teacher)[0]
    assert clip.teacher_poses.shape == (2, 4, 4)
    aug = AugmentConfig(hflip_prob=1.0 if flip else 0.0, resize_crop_prob=0.0, color_jitter_prob=0.0)
    s = make_sample(clip, (64, 192), 3, aug, np.random.default_rng(0), train=True)
    depths = [torch.where(s.gt_depth[t] > 0, s.gt_depth[t], torch.full_like(s.gt_depth[t], 80.0))[None]
              for t in range(3)]
    for src in (0, 2):
        T, ok = teacher_T_s_t(s.teacher_poses[None], s.teacher_depth[None], depths, 1, src)
        assert float(ok[0]) == 1.0
        T_gt = (torch.linalg.inv(s.gt_poses[src].double()) @ s.gt_poses[1].double()).numpy()
        assert float(rotation_error_deg(T[0, :3, :3].double().numpy(), T_gt[:3, :3])) < 0.1
        np.testing.assert_allclose(T[0, :3, 3].double().numpy(), T_gt[:3, 3], rtol=0.03, atol=0.01)
    # a pair without a teacher motion, or a frame without points, gives the identity and ok = 0
    missing = s.teacher_poses.clone()[None]
    missing[0, 0] = float("nan")
    T, ok = teacher_T_s_t(missing, s.teacher_depth[None], depths, 1, 0)
    assert float(ok[0]) == 0.0 and torch.equal(T[0], torch.eye(4))
    T, ok = teacher_T_s_t(s.teacher_poses[None], torch.zeros_like(s.teacher_depth)[None], depths, 1, 2)
    assert float(ok[0]) == 0.0


def test_teacher_poses_need_the_teacher_and_a_mask_that_is_not_the_per_step_two_view():
    with pytest.raises(ConfigError, match="data.teacher.size_factor"):
        load_train_config("synthetic_hour_teacher_pose", ["data.teacher.size_factor=0"])
    with pytest.raises(ConfigError, match="rigid_flow_consistency.mask"):
        load_train_config("synthetic_hour_teacher_pose", ["losses.rigid_flow_consistency.mask=two_view"])


def test_teacher_flows_beat_dis_on_the_training_images_and_follow_the_augmentation():
    """``data.teacher.flow``: the pair flows DIS computes at 3x and the teacher shrinks to the training size are
    closer to the true flow than DIS on the training-size images, and a flip moves them like the true flow."""
    spec = "synthetic:seed=1000,length=6,height=64,width=192"
    teacher = TeacherDepth.build(spec, {}, 3, (64, 192), TwoViewConfig(), cache_dir=None, log=lambda _: None,
                                 with_flow=True)
    frames = list(open_source(spec))
    err_teacher, err_dis = [], []
    for i in range(len(frames) - 1):
        gt = frames[i].flow_next
        ok = np.all(np.isfinite(gt), axis=-1)
        fw, bw = teacher.flow(i)
        assert fw.shape == bw.shape == (2, 64, 192)
        err_teacher.append(np.linalg.norm(fw.transpose(1, 2, 0) - gt, axis=-1)[ok].mean())
        err_dis.append(np.linalg.norm(dis_flow(frames[i].image, frames[i + 1].image) - gt, axis=-1)[ok].mean())
    assert np.mean(err_teacher) < 0.85 * np.mean(err_dis), (err_teacher, err_dis)
    assert not np.any(np.isfinite(teacher.flow(len(frames) - 1)[0]))  # the last frame has no next frame
    clip = ClipDataset(open_source(spec), clip_len=3, teacher=teacher)[0]
    for flip in (False, True):
        aug = AugmentConfig(hflip_prob=1.0 if flip else 0.0, resize_crop_prob=0.0, color_jitter_prob=0.0)
        s = make_sample(clip, (64, 192), 3, aug, np.random.default_rng(0), train=True)
        ok = torch.isfinite(s.gt_flow).all(1, keepdim=True).expand_as(s.gt_flow)
        epe = (s.teacher_flow_fw - s.gt_flow).norm(dim=1, keepdim=True).expand_as(s.gt_flow)[ok].mean()
        assert float(epe) < 1.2 * float(np.mean(err_teacher[:2])) + 0.1, (flip, float(epe))
    # the loss reads forward pairs for s = t + 1 and backward ones for s = t - 1
    fw, bw = torch.arange(2.0).view(1, 2, 1, 1, 1), -torch.arange(2.0).view(1, 2, 1, 1, 1)
    assert [float(x) for x in teacher_pair_flows((fw, bw), 1, 2)] == [1.0, -1.0]
    assert [float(x) for x in teacher_pair_flows((fw, bw), 1, 0)] == [-0.0, 0.0]


def test_flow_distillation_from_the_teacher_needs_its_flows():
    with pytest.raises(ConfigError, match="data.teacher.flow"):
        load_train_config("synthetic_hour_teacher_flow", ["data.teacher.flow=false"])
    without = TeacherDepth.build("synthetic:seed=0,length=3,height=64,width=96", {}, 1, (64, 96), TwoViewConfig(),
                                 cache_dir=None, log=lambda _: None)
    assert not without.has_flow
    with pytest.raises(ValueError, match="without flows"):
        without.flow(0)
