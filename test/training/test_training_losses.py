"""Every method config's loss assembly runs (finite loss, gradients where expected, none where frozen),
and the geometry pose path recovers the true motion from exact flow."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from depth_pose_ros.data.clips import frames_to_clip
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.pose_error import rotation_error_deg
from depth_pose_ros.geometry.two_view_config import loss_two_view
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import ClipOutput, FlowOutput
from training.augment import AugmentConfig, make_sample
from training.config import MODULE_GROUPS, LossesConfig, load_train_config, method_configs
from training.losses_from_config import TERMS, LossAssembler
from training.schedule import stage_at, stages_of, trainable_groups
from training.train import Trainer

METHODS = [p.stem for p in method_configs()]


def _grad_state(module: torch.nn.Module) -> str:
    grads = [p.grad for p in module.parameters()]
    if all(g is None for g in grads):
        return "none"
    if any(g is not None and bool(torch.isfinite(g).all()) and float(g.abs().sum()) > 0 for g in grads):
        return "nonzero"
    return "zero"


def test_method_configs_are_shipped() -> None:
    expected = {"st_depth_pose", "monodepth2", "idce_ham", "vid2depth_icp", "glnet", "occlusion_cross_weighted",
                "cpu_smoke"}
    assert expected <= set(METHODS)


@pytest.mark.parametrize("name", METHODS)
def test_every_stage_of_every_method_trains_the_expected_modules(name: str, tmp_path) -> None:
    cfg = tiny_config(name)
    trainer = Trainer(cfg, tmp_path / name, resume="never")
    batch = next(trainer._batches())
    starts, step = [], 0
    for st in stages_of(cfg):
        starts.append(step)
        step += st.steps
    for start in starts:
        trainer.state.step = start
        _, stage = stage_at(cfg, start)
        params_before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
        result, grad_norm, applied = trainer.train_step(batch)
        assert applied and np.isfinite(float(result.total.detach())) and np.isfinite(grad_norm), (name, stage.name)
        active = {k for k, w in cfg.losses.weights().items() if w > 0} | {k for k, w in stage.losses.items() if w > 0}
        active -= {k for k, w in stage.losses.items() if w == 0}
        assert set(result.terms) == active
        train = trainable_groups(stage)
        for group, attr in MODULE_GROUPS.items():
            module = getattr(trainer.model, attr, None)
            if module is None or not list(module.parameters()):
                continue
            state = _grad_state(module)
            if group not in train:
                assert state == "none", f"{name}/{stage.name}: frozen {group} got a gradient"
                changed = [n for n, p in module.named_parameters(prefix=attr)
                           if not torch.equal(p, params_before[n])]
                assert not changed, f"{name}/{stage.name}: frozen {group} was updated"
            elif not (group == "pose" and cfg.pose_source == "geometry"):
                assert state == "nonzero", f"{name}/{stage.name}: {group} ({state}) got no gradient"
    trainer.close()


def test_every_loss_term_runs_alone_on_a_model_with_everything(tmp_path) -> None:
    """Each term separately (weight 1, others 0): finite, differentiable, on both pose sources."""
    frames = open_source("synthetic:seed=3,length=3,height=64,width=96")
    clip = frames_to_clip([frames[i] for i in range(3)])
    s = make_sample(clip, (64, 96), 3, AugmentConfig(enabled=False), train=False)
    net = tiny_config("glnet", "model.flow.occlusion_mask=true").model
    from depth_pose_ros.nets.model import build_model

    model = build_model(net)
    images, K = s.images[None], s.K[None]
    teacher = torch.where(torch.rand_like(s.gt_depth) < 0.2, s.gt_depth, 0.0)[None]  # sparse, like the teacher's
    for pose_source in ("posenet", "geometry"):
        for term in TERMS:
            weights = {t: (1.0 if t == term else 0.0) for t in TERMS}
            losses = LossesConfig()
            assembler = LossAssembler(losses, pose_source, net, loss_two_view())
            model.zero_grad(set_to_none=True)
            out = model.forward_clip(images)
            res = assembler(images, K, out, weights, generator=torch.Generator().manual_seed(0),
                            teacher_depth=teacher, gt_depth=s.gt_depth[None])
            assert set(res.terms) == {term}
            assert torch.isfinite(res.total), (pose_source, term)
            if res.total.requires_grad:
                res.total.backward()
            else:  # only when every two-view fit failed on the untrained flow (no pose / no points)
                assert pose_source == "geometry" or term == "depth_triangulation", (pose_source, term)


def test_missing_modules_are_reported_by_config_key() -> None:
    net = NetConfig.from_dict({"flow": {"enabled": False}, "recurrent": {"levels": [], "hidden_channels": []}})
    losses = LossesConfig()
    losses.flow_photometric.weight = 1.0
    with pytest.raises(ValueError, match="model.flow.enabled"):
        LossAssembler(losses, "posenet", net, loss_two_view())
    with pytest.raises(ValueError, match="pose_net.enabled"):
        LossAssembler(LossesConfig(), "posenet", net, loss_two_view())
    with pytest.raises(ValueError, match="geometry needs the flow decoder"):
        LossAssembler(LossesConfig(), "geometry", net, loss_two_view())


@pytest.fixture(scope="module")
def exact_clip():
    src = open_source("synthetic:seed=5,length=3,height=96,width=160,num_moving=0")
    clip = frames_to_clip([src[i] for i in range(3)])
    return make_sample(clip, (96, 160), 3, AugmentConfig(enabled=False), train=False)


def _flow_output(fw: torch.Tensor, bw: torch.Tensor) -> FlowOutput:
    return FlowOutput([fw], [bw], None, None, (1,))


def test_geometry_pose_from_exact_flow_recovers_the_motion(exact_clip) -> None:
    """Target 1 with GT depth and GT flows: the two-view poses match the GT motions, scaled to the depth,
    and the view-synthesis loss with them is far below the loss with the identity motion."""
    s = exact_clip
    depth = torch.where(s.gt_depth > 0, s.gt_depth, torch.full_like(s.gt_depth, 80.0))[None]  # 1xTx1xHxW
    depth.requires_grad_(True)
    flow_fwd = torch.nan_to_num(s.gt_flow)[None]  # t -> t+1
    src = open_source("synthetic:seed=5,length=3,height=96,width=160,num_moving=0")
    flow_prev = [torch.from_numpy(np.nan_to_num(src[i].flow_prev)).permute(2, 0, 1)[None] for i in (1, 2)]
    flows = [_flow_output(flow_fwd[:, 0], flow_prev[0]), _flow_output(flow_fwd[:, 1], flow_prev[1])]
    out = ClipOutput([[depth[:, t]] for t in range(3)], flows, None, None, [])
    net = NetConfig()
    losses = load_train_config("st_depth_pose").losses  # photometric, triangulation, rigid flow, ...
    assembler = LossAssembler(losses, "geometry", net, loss_two_view())
    images, K = s.images[None], s.K[None]
    views = assembler.build_views(images, K, out, losses.weights())
    assert [(v.t, v.s) for v in views] == [(1, 0), (1, 2)]
    for v in views:
        assert float(v.pose_ok[0]) == 1.0
        T_gt = torch.linalg.inv(s.gt_poses[v.s]) @ s.gt_poses[v.t]  # T_s_t: target points into source
        T = v.T_s_t[0].double()
        assert float(rotation_error_deg(T[:3, :3].numpy(), T_gt[:3, :3].double().numpy())) < 0.05
        np.testing.assert_allclose(T[:3, 3].numpy(), T_gt[:3, 3].double().numpy(), rtol=0.02, atol=0.01)
    res = assembler(images, K, out, losses.weights(), generator=torch.Generator().manual_seed(0))
    assert float(res.terms["photometric"]) < 0.03
    assert float(res.terms["depth_triangulation"]) < 0.005
    assert float(res.terms["rigid_flow_consistency"]) < 0.25
    res.total.backward()
    assert depth.grad is not None and float(depth.grad.abs().sum()) > 0
    # the same clip warped with the identity motion explains the target far worse
    identity = LossAssembler(losses, "geometry", net, loss_two_view())
    views_id = identity.build_views(images, K, out, losses.weights())
    for v in views_id:
        v.T_s_t = torch.eye(4)[None]
    from training.losses_from_config import LossContext, term_photometric

    ctx = LossContext(images=images, K=K, out=out, views=views_id, generator=torch.Generator().manual_seed(0))
    assert float(term_photometric(ctx, losses).detach()) > 2 * float(res.terms["photometric"])


def test_two_view_flow_dis_gets_the_motion_when_the_network_flow_is_zero(exact_clip) -> None:
    """two_view_flow: dis (label-free bootstrap): with a network predicting zero flow, the training poses
    still come out right because the geometry runs on classical DIS flow of the clip's images."""
    s = exact_clip
    depth = torch.where(s.gt_depth > 0, s.gt_depth, torch.full_like(s.gt_depth, 80.0))[None]
    zero = torch.zeros(1, 2, 96, 160)
    out = ClipOutput([[depth[:, t]] for t in range(3)], [_flow_output(zero, zero), _flow_output(zero, zero)],
                     None, None, [])
    losses = load_train_config("st_depth_pose").losses
    images, K = s.images[None], s.K[None]
    for mode in ("network", "dis"):
        views = LossAssembler(losses, "geometry", NetConfig(), loss_two_view(), mode).build_views(
            images, K, out, losses.weights())
        for v in views:
            T_gt = torch.linalg.inv(s.gt_poses[v.s]) @ s.gt_poses[v.t]
            T = v.T_s_t[0].double()
            t, t_gt = T[:3, 3], T_gt[:3, 3].double()
            right = bool(v.pose_ok[0]) and float(t.norm()) > 0.5 * float(t_gt.norm()) and \
                float(torch.nn.functional.cosine_similarity(t, t_gt, dim=0)) > 0.95 and \
                float(rotation_error_deg(T[:3, :3].numpy(), T_gt[:3, :3].double().numpy())) < 1.0  # DIS at 96x160
            assert right == (mode == "dis"), f"{mode}: pose {T.numpy()} vs GT {T_gt.numpy()}"
    with pytest.raises(ValueError, match="two_view_flow"):
        LossAssembler(losses, "geometry", NetConfig(), loss_two_view(), "raft")


def test_bf16_autocast_step_on_cpu(tmp_path) -> None:
    """precision=bf16: the network runs under CPU autocast, the losses in float32; the step is applied."""
    tr = Trainer(tiny_config("cpu_smoke_monodepth2", "precision=bf16"), tmp_path / "run", resume="never")
    assert tr.precision == "bf16"
    result, grad_norm, applied = tr.train_step(next(tr._batches()))
    assert applied and result.total.dtype == torch.float32 and np.isfinite(grad_norm)
    tr.close()
