"""The geometry teacher: triangulated DIS two-view depth at a higher resolution as a sparse depth target.

Checks the pieces (spec scaling, sparse maps, area resampling under augmentation, the scale-invariant loss)
and the whole: on synthetic frames the teacher's relative depth at 3x the training size is far more accurate
than at the training size itself, the cache returns the same maps, and a training step uses the term.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.two_view import TwoViewConfig
from depth_pose_ros.losses.geometric import scale_invariant_log_loss
from training.augment import GeometricParams, apply_geometric_sparse_depth
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
