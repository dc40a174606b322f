"""Exact synthetic depth beside real clips in one batch, and the guard that notices a collapsed depth."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import tiny_config

from depth_pose_ros.data.clips import frames_to_clip
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.two_view_config import loss_two_view
from depth_pose_ros.losses.geometric import scale_invariant_log_loss
from training.augment import AugmentConfig, collate_samples, make_sample
from training.collapse_guard import LAST_GOOD, CollapseGuard, DepthCollapseError, depth_diagnostics
from training.config import CollapseGuardConfig, LossesConfig
from training.dataset import CachedSource, shrink_frame
from training.losses_from_config import TERMS, LossAssembler
from training.train import Trainer

SPEC = "synthetic:seed=3,length=3,height=64,width=96"


def _samples():
    frames = open_source(SPEC)
    clip = frames_to_clip([frames[i] for i in range(3)])
    synthetic = make_sample(clip, (64, 96), 3, AugmentConfig(enabled=False), train=False)
    real_clip = frames_to_clip([frames[i] for i in range(3)])
    real_clip.gt_depth = None  # a recorded clip: no depth
    real = make_sample(real_clip, (64, 96), 3, AugmentConfig(enabled=False), train=False)
    return synthetic, real


def test_a_batch_of_synthetic_and_real_clips_keeps_the_synthetic_depth_and_zeros_the_rest() -> None:
    synthetic, real = _samples()
    batch = collate_samples([synthetic, real])
    assert batch.gt_depth is not None and batch.gt_depth.shape[0] == 2
    assert torch.equal(batch.gt_depth[0], synthetic.gt_depth)
    assert float(batch.gt_depth[1].abs().sum()) == 0.0
    assert collate_samples([real, real]).gt_depth is None


def test_depth_supervised_term_scores_the_items_with_depth_only_and_ignores_scale() -> None:
    synthetic, real = _samples()
    batch = collate_samples([synthetic, real])
    net = tiny_config("synthetic_hour_teacher_flow").model
    from depth_pose_ros.nets.model import build_model

    torch.manual_seed(0)
    model = build_model(net)
    out = model.forward_clip(batch.images)
    weights = {t: (1.0 if t == "depth_supervised" else 0.0) for t in TERMS}
    assembler = LossAssembler(LossesConfig(), "geometry", net, loss_two_view())
    res = assembler(batch.images, batch.K, out, weights, gt_depth=batch.gt_depth)
    expected = scale_invariant_log_loss(out.depths[1][0][:1].detach(), batch.gt_depth[:1, 1])
    assert float(res.terms["depth_supervised"]) == pytest.approx(float(expected), rel=1e-5)
    assert float(expected) > 1e-3  # an untrained network is far from the scene's shape
    res.total.backward()
    assert any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in model.depth_decoder.parameters())
    # the exact depth at another scale is a perfect prediction
    perfect = scale_invariant_log_loss(3.0 * batch.gt_depth[:1, 1].clamp_min(1e-3), batch.gt_depth[:1, 1])
    assert float(perfect) < 1e-5 * float(expected)
    # no depth in the batch: the term is 0 and the rest of the loss still runs
    res = assembler(batch.images, batch.K, model.forward_clip(batch.images), weights, gt_depth=None)
    assert float(res.total) == 0.0


def test_shrunk_recordings_keep_an_exact_K_and_the_cache_keeps_depth_only_when_asked() -> None:
    frame = open_source(SPEC)[0]
    small = shrink_frame(frame, 48)
    assert small.image.shape[:2] == (32, 48)
    np.testing.assert_allclose(small.K[0, 0], frame.K[0, 0] / 2)
    np.testing.assert_allclose(small.K[0, 2], (frame.K[0, 2] + 0.5) / 2 - 0.5)
    src = open_source(SPEC)
    assert CachedSource(src)[0].depth is None
    assert CachedSource(src, keep_depth=True)[0].depth is not None


def test_depth_diagnostics_see_a_constant_map_and_saturated_sigmoids() -> None:
    flat = torch.full((2, 1, 8, 8), 100.0)
    d = depth_diagnostics(flat, 0.1, 100.0)
    assert d["depth_log_std"] < 1e-6 and d["depth_at_bound"] == 1.0
    ramp = torch.linspace(1, 50, 64).reshape(1, 1, 8, 8).repeat(2, 1, 1, 1)
    d = depth_diagnostics(ramp, 0.1, 100.0)
    assert d["depth_log_std"] > 0.5 and d["depth_at_bound"] == 0.0


def test_guard_waits_for_patience_then_recovers_or_stops(tmp_path) -> None:
    cfg = CollapseGuardConfig(patience=2, max_recoveries=1)
    guard = CollapseGuard(cfg, tmp_path)
    flat = {"depth_log_std": 0.001, "depth_at_bound": 1.0}
    for _ in range(3):  # not armed before a healthy evaluation: a fresh network starts flat
        assert guard.observe_step(flat, 0).action == "ok"
    assert guard.observe_eval({"depth_abs_rel": 0.9, "depth_abs_rel_constant": 0.5}, 0).action == "ok"
    (tmp_path / LAST_GOOD).write_bytes(b"x")
    assert guard.observe_step({"depth_log_std": 0.5}, 0).action == "ok"  # a healthy step resets the count
    assert guard.observe_step(flat, 0).action == "ok"
    assert guard.observe_step(flat, 0).action == "recover"
    assert guard.observe_eval({"depth_abs_rel": 0.2, "depth_abs_rel_constant": 0.5}, 1).action == "ok"
    verdict = guard.observe_eval({"depth_abs_rel": 0.5, "depth_abs_rel_constant": 0.5}, 1)
    assert verdict.action == "stop" and "max_recoveries=1" in verdict.reason


class _CollapsingTrainer(Trainer):
    """Saturates every sigmoid of the depth decoder before step ``at`` (the collapse seen in a real run)."""

    at = 3

    def train_step(self, batch, want_maps=False):
        if self.state.step == self.at - 1 and not getattr(self, "_broken", False):
            self._broken = True
            with torch.no_grad():
                for conv in self.model.depth_decoder.disp.values():
                    for p in conv.parameters():
                        p.zero_()
                    list(conv.parameters())[-1].fill_(-60.0)  # bias: sigmoid 0 -> the far bound everywhere
        return super().train_step(batch, want_maps)


def test_a_collapsed_run_goes_back_to_the_last_healthy_weights_with_a_lower_rate(tmp_path) -> None:
    cfg = tiny_config("synthetic_hour_teacher_flow", "data.teacher.size_factor=0", "two_view_flow=dis",
                      "losses.depth_teacher.weight=0", "losses.flow_distillation.weight=0",
                      "eval.source.spec=synthetic:seed=7,length=3,height=64,width=96", "eval.max_frames=3",
                      "eval.every=2", "log.every=1", "collapse_guard.patience=2",
                      "collapse_guard.worse_than_constant=1.5", "steps=6")
    tr = _CollapsingTrainer(cfg, tmp_path / "run", resume="never")
    summary = tr.run()
    tr.close()
    assert summary.step == 6
    assert tr.state.extra["collapse_recoveries"] == 1
    assert tr.lr() == pytest.approx(cfg.optim.lr * 0.5 * cfg.optim.lr_gamma ** (6 // cfg.optim.lr_step))
    records = [json.loads(line) for line in (tmp_path / "run" / "eval.jsonl").read_text().splitlines()]
    assert any("collapse_recovery" in r and "constant map" in r["collapse_recovery"] for r in records)
    steps = [json.loads(line) for line in (tmp_path / "run" / "losses.jsonl").read_text().splitlines()]
    assert steps[2]["depth_log_std"] < 0.02 and steps[-1]["depth_log_std"] > 0.02  # broken, then restored


def test_a_run_that_keeps_collapsing_stops_with_a_message(tmp_path) -> None:
    cfg = tiny_config("synthetic_hour_teacher_flow", "data.teacher.size_factor=0", "two_view_flow=dis",
                      "losses.depth_teacher.weight=0", "losses.flow_distillation.weight=0",
                      "eval.source.spec=synthetic:seed=7,length=3,height=64,width=96", "eval.max_frames=3",
                      "eval.every=2", "log.every=1", "collapse_guard.patience=2", "collapse_guard.max_recoveries=0",
                      "steps=6")
    tr = _CollapsingTrainer(cfg, tmp_path / "run", resume="never")
    with pytest.raises(DepthCollapseError, match="constant map"):
        tr.run()
    tr.close()


def test_variance_focus_below_one_anchors_the_units_of_a_metric_target() -> None:
    target = torch.linspace(2.0, 40.0, 256).reshape(1, 1, 16, 16)
    for lam in (1.0, 0.85):
        exact = float(scale_invariant_log_loss(target, target, variance_focus=lam))
        scaled = float(scale_invariant_log_loss(target / 40.0, target, variance_focus=lam))
        assert exact < 1e-10
        assert scaled == pytest.approx((1.0 - lam) * np.log(40.0) ** 2, abs=1e-5)
    with pytest.raises(ValueError, match="variance_focus"):
        scale_invariant_log_loss(target, target, variance_focus=1.5)


def test_each_batch_is_drawn_at_one_of_the_configured_sizes(tmp_path) -> None:
    from torch.utils.data import DataLoader

    from training.augment import collate_samples as collate
    from training.dataset import ResumableSampler, build_dataset

    cfg = tiny_config("synthetic_hour_teacher_flow", "data.teacher.size_factor=0", "two_view_flow=dis",
                      "losses.depth_teacher.weight=0", "losses.flow_distillation.weight=0",
                      "data.train=[{spec: 'synthetic:seed=3,length=12,height=64,width=96'}]",
                      "data.extra_sizes=[[96, 64], [32, 128]]")
    ds = build_dataset(cfg, 3)
    sampler = ResumableSampler(ds, seed=0, batch_size=2, num_sizes=3)
    shapes = [tuple(b.images.shape[-2:]) for b in DataLoader(ds, batch_size=2, sampler=sampler, collate_fn=collate,
                                                             drop_last=True)]
    assert set(shapes) <= {(64, 96), (96, 64), (32, 128)} and len(set(shapes)) >= 2
    sampler.set_position(0, 2)  # resuming mid-epoch keeps each later batch's size
    again = [tuple(b.images.shape[-2:]) for b in DataLoader(ds, batch_size=2, sampler=sampler, collate_fn=collate,
                                                            drop_last=True)]
    assert again == shapes[1:]
