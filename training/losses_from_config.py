"""Assemble the configured self-supervised loss from the pure loss functions of ``depth_pose_ros.losses``.

Every term of ``LossesConfig`` has a weight; a term with weight 0 does not run. Which code runs is
decided by those weights and by ``pose_source`` only (never by a method name), so a method is a set of
weights and an ablation is one ``key=value`` override.

A clip of T frames gives targets t = 1..T-2; each target has *views*: the temporal sources t-1 and
t+1 (and the stereo partner when the data has one). A view carries what the terms need: the images,
the target's multi-scale depth and the source's depth, the flows t->s and s->t (on t's / s's grid),
the network's learned occlusion mask, and the camera motion ``T_s_t`` (maps target-camera points into
the source camera) with a per-item ``ok`` flag. ``T_s_t`` comes from

* ``pose_source: posenet``: the PoseNet of the same network (``ClipOutput.poses``), or
* ``pose_source: geometry``: the two-view module run on the detached predicted flow of each pair
  (``depth_pose_ros.losses.views.geometry_poses``), translation scaled to the target depth by the
  alignment of the depth to the triangulated inliers, as the Estimator does at inference. Items whose
  two-view fit failed are masked out of every pose-dependent term.

Each term is averaged over the views (or targets) it applies to; the total is ``sum_k w_k L_k``.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewResult
from depth_pose_ros.geometry.warp import rigid_flow, warp_by_flow, warp_rigid
from depth_pose_ros.losses import (
    adaptive_cross_weighted_loss,
    adaptive_photometric_loss,
    depth_reprojection_loss,
    depth_triangulation_loss,
    edge_aware_smoothness,
    epipolar_error_map,
    epipolar_loss,
    fb_consistency_loss,
    flow_distillation_loss,
    flow_occlusion_mask,
    flow_photometric_loss,
    flow_smoothness,
    icp_loss,
    identity_errors,
    min_reprojection_loss,
    multiview_structure_loss,
    occlusion_aware_flow_loss,
    photometric_error,
    photometric_loss,
    rigid_flow_consistency_loss,
    scale_invariant_log_loss,
    teacher_confidence,
    upsample_to,
)
from depth_pose_ros.losses.views import (
    geometry_poses,
    item_mask,
    pair_flows,
    posenet_T_s_t,
    teacher_pair_flows,
    teacher_T_s_t,
    temporal_sources,
)
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.flow_decoder import upsample_flow
from depth_pose_ros.nets.model import ClipOutput
from training.config import LossesConfig

# Terms that need a camera pose, optical flow, or the two-view results.
NEEDS_POSE = {"photometric", "depth_reprojection", "rigid_flow_consistency", "epipolar", "adaptive_photometric",
              "cross_weighted", "icp", "multiview_3d"}
NEEDS_FLOW = {"flow_photometric", "flow_occlusion_aware", "flow_smoothness", "fb_consistency", "flow_distillation",
              "depth_triangulation", "rigid_flow_consistency", "epipolar", "adaptive_photometric",
              "cross_weighted", "multiview_3d"}
NEEDS_TWO_VIEW = {"depth_triangulation"}


@dataclass
class View:
    """Target frame ``t`` and one source (a clip frame ``s``, or the stereo partner with ``s = -1``)."""

    t: int
    s: int
    stereo: bool
    target: torch.Tensor  # B x C x H x W
    source: torch.Tensor
    depths_t: list[torch.Tensor]  # target depth per scale, full resolution first
    depth_s: Optional[torch.Tensor] = None  # B x 1 x H x W source depth (temporal views)
    flows_t_s: Optional[list[torch.Tensor]] = None  # [full, finest level, ...] flows t -> s
    flows_s_t: Optional[list[torch.Tensor]] = None
    learned_visible: Optional[torch.Tensor] = None  # B x 1 x H x W: pixel of t visible in s (network)
    T_s_t: Optional[torch.Tensor] = None  # B x 4 x 4
    pose_ok: Optional[torch.Tensor] = None  # B
    two_view: Optional[list[TwoViewResult]] = None
    teacher_t_s: Optional[torch.Tensor] = None  # B x 2 x H x W classical (DIS) flow t -> s, detached
    teacher_s_t: Optional[torch.Tensor] = None

    @property
    def flow_t_s(self) -> torch.Tensor:
        assert self.flows_t_s is not None
        return self.flows_t_s[0]

    @property
    def flow_s_t(self) -> torch.Tensor:
        assert self.flows_s_t is not None
        return self.flows_s_t[0]

    @property
    def pose(self) -> torch.Tensor:
        """``T_s_t``: every view has one when a pose-dependent term runs (``LossAssembler.build_views``)."""
        assert self.T_s_t is not None
        return self.T_s_t

    @property
    def source_depth(self) -> torch.Tensor:
        """``depth_s``: every temporal view has one."""
        assert self.depth_s is not None
        return self.depth_s

    def ok_mask(self) -> torch.Tensor:
        """Bx1x1x1 per-item pose validity (1 everywhere when there is no flag)."""
        ok = self.pose_ok if self.pose_ok is not None else torch.ones(self.target.shape[0], device=self.target.device)
        return item_mask(ok, self.target)


@dataclass
class LossContext:
    """Everything the terms read for one batch."""

    images: torch.Tensor  # B x T x C x H x W, loss images
    K: torch.Tensor  # B x 3 x 3
    out: ClipOutput
    views: list[View]
    generator: Optional[torch.Generator] = None
    want_maps: bool = False
    occlusion_off: bool = False  # occlusion warm-up: every flow-term mask is "none"
    teacher_depth: Optional[torch.Tensor] = None  # B x T x 1 x H x W sparse geometry-teacher depth (0 = none)
    gt_depth: Optional[torch.Tensor] = None  # B x T x 1 x H x W exact depth of rendered sources (0 = unknown)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # first-item panels for logging
    _occlusion_cache: dict = field(default_factory=dict)

    def temporal(self) -> list[View]:
        return [v for v in self.views if not v.stereo]

    def targets(self) -> list[int]:
        return sorted({v.t for v in self.views})

    def keep(self, name: str, x: torch.Tensor) -> None:
        if self.want_maps and name not in self.maps:
            self.maps[name] = x[:1].detach().float().cpu()

    def visible(self, v: View, method: str, fb_alpha1: float = 0.01, fb_alpha2: float = 0.5,
                range_threshold: float = 0.5) -> Optional[torch.Tensor]:
        """Non-occlusion mask of target pixels in the source (detached), by ``method``; None = all."""
        if method == "none" or self.occlusion_off:
            return None
        if method == "learned":
            if v.learned_visible is None:
                raise ValueError("occlusion 'learned' needs model.flow.occlusion_mask: true")
            return v.learned_visible.detach()
        key = (v.t, v.s, method, fb_alpha1, fb_alpha2, range_threshold)
        if key not in self._occlusion_cache:
            self._occlusion_cache[key] = flow_occlusion_mask(v.flow_t_s, v.flow_s_t, method, fb_alpha1, fb_alpha2,
                                                             range_threshold)
        return self._occlusion_cache[key]


@dataclass
class LossResult:
    total: torch.Tensor
    terms: dict[str, torch.Tensor]  # unweighted term values (detached)
    maps: dict[str, torch.Tensor]
    pose_ok_ratio: float  # share of (item, view) pairs with a usable pose (1 for PoseNet)
    diagnostics: dict[str, float] = field(default_factory=dict)  # watched, never optimised (collapse guard)


def _mean(values: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    return torch.stack(values).mean() if values else like.new_zeros(())


# ------------------------------------------------------------------------------------------------- terms


def term_photometric(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Monodepth2 view synthesis: every depth scale upsampled to full resolution, min over sources."""
    c = cfg.photometric
    h, w = ctx.images.shape[-2:]
    per_target = []
    for t in ctx.targets():
        views = [v for v in ctx.views if v.t == t and v.T_s_t is not None]
        target = views[0].target
        depths = views[0].depths_t[: max(1, c.scales)]
        # the unwarped sources are the same full-resolution images at every scale: their errors once
        identity = identity_errors(target, [v.source for v in views], c.ssim_alpha, generator=ctx.generator) \
            if c.min_reprojection and c.automask else None
        per_scale = []
        for k, depth in enumerate(depths):
            depth_up = upsample_to(depth, (h, w))
            warped, valid = [], []
            for v in views:
                wimg, val = warp_rigid(v.source, depth_up, v.pose, ctx.K)
                warped.append(wimg)
                valid.append(val * v.ok_mask())
            if c.min_reprojection:
                loss, err = min_reprojection_loss(target, warped, valid, alpha=c.ssim_alpha, identity=identity,
                                                  return_map=True)
                if k == 0:
                    ctx.keep("photometric_error", err)
                    ctx.keep("automask", (err > 0).float())
            else:
                loss = torch.stack([photometric_loss(wi, target, va, alpha=c.ssim_alpha)
                                    for wi, va in zip(warped, valid)]).mean()
            per_scale.append(loss)
        per_target.append(torch.stack(per_scale).mean())
    return _mean(per_target, ctx.images)


def term_depth_smoothness(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Edge-aware smoothness of mean-normalised inverse depth, scale k weighted by 1 / 2^k."""
    c = cfg.depth_smoothness
    n = max(1, cfg.photometric.scales)  # the same depth scales the view synthesis uses
    values = []
    for t in ctx.targets():
        image = ctx.images[:, t]
        total: Optional[torch.Tensor] = None
        depths = ctx.out.depths[t][:n]
        for k, depth in enumerate(depths):
            img_k = upsample_to(image, (depth.shape[-2], depth.shape[-1])) if depth.shape[-2:] != image.shape[-2:] \
                else image
            s = edge_aware_smoothness(1.0 / depth, img_k, edge_weight=c.edge_weight) / (2**k)
            total = s if total is None else total + s
        assert total is not None  # depths holds at least one scale
        values.append(total / len(depths))
    return _mean(values, ctx.images)


def term_flow_photometric(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Occlusion-masked photometric loss of the flow warp, at full resolution and coarser levels."""
    c = cfg.flow_photometric
    h, w = ctx.images.shape[-2:]
    values = []
    for v in ctx.temporal():
        mask = ctx.visible(v, c.occlusion, c.fb_alpha1, c.fb_alpha2, c.range_threshold)
        if mask is not None:
            ctx.keep("flow_visible", mask)
        flows_t_s = v.flows_t_s
        assert flows_t_s is not None  # a flow term runs only with the flow decoder (LossAssembler.check)
        per_scale = [flow_photometric_loss(v.target, v.source, upsample_flow(f, (h, w)), mask, alpha=c.ssim_alpha)
                     for f in flows_t_s[: max(1, c.scales)]]
        values.append(torch.stack(per_scale).mean())
    return _mean(values, ctx.images)


def term_flow_occlusion_aware(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Fang et al. eq. 1-3 over both temporal neighbours of every target."""
    values = []
    for t in ctx.targets():
        prev = [v for v in ctx.temporal() if v.t == t and v.s == t - 1]
        nxt = [v for v in ctx.temporal() if v.t == t and v.s == t + 1]
        if not prev or not nxt:
            continue
        p, n = prev[0], nxt[0]
        values.append(occlusion_aware_flow_loss(p.target, p.source, n.source, p.flow_t_s, p.flow_s_t, n.flow_t_s,
                                                n.flow_s_t, alpha=cfg.flow_occlusion_aware.ssim_alpha))
    return _mean(values, ctx.images)


def term_flow_smoothness(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.flow_smoothness
    return _mean([flow_smoothness(v.flow_t_s, v.target, order=c.order, edge_weight=c.edge_weight)
                  for v in ctx.temporal()], ctx.images)


def term_fb_consistency(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.fb_consistency
    return _mean([fb_consistency_loss(v.flow_t_s, v.flow_s_t, ctx.visible(v, c.occlusion))
                  for v in ctx.temporal()], ctx.images)


def term_flow_distillation(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.flow_distillation
    values = []
    for v in ctx.temporal():
        teacher_t_s, teacher_s_t = v.teacher_t_s, v.teacher_s_t
        assert teacher_t_s is not None and teacher_s_t is not None  # build_views sets them for this term
        known = torch.isfinite(teacher_t_s).all(1, keepdim=True).to(v.flow_t_s.dtype)  # NaN: no teacher flow
        t_s, s_t = torch.nan_to_num(teacher_t_s), torch.nan_to_num(teacher_s_t)
        conf = teacher_confidence(t_s, s_t, c.fb_alpha1, c.fb_alpha2) * known
        ctx.keep("teacher_confidence", conf)
        values.append(flow_distillation_loss(v.flow_t_s, t_s, conf, q=c.q))
    return _mean(values, ctx.images)


def term_depth_triangulation(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Target depth vs the two-view module's triangulated inliers, scaled by the fitted scale (detached)."""
    values = []
    for v in ctx.temporal():
        if not v.two_view:
            continue
        depth = v.depths_t[0]
        b = depth.shape[0]
        n = max((len(r.points) for r in v.two_view), default=0)
        if n == 0:
            continue
        pixels = depth.new_zeros(b, n, 2)
        tri = depth.new_ones(b, n)
        valid = depth.new_zeros(b, n)
        scale = depth.new_ones(b)
        for i, r in enumerate(v.two_view):
            m = len(r.points)
            if m == 0 or r.baseline_in_depth_units is None or not (r.baseline_in_depth_units > 0) \
                    or v.pose_ok is None or v.pose_ok[i] <= 0:
                continue
            pixels[i, :m] = torch.as_tensor(r.points_pixels, dtype=depth.dtype)
            tri[i, :m] = torch.as_tensor(r.points[:, 2], dtype=depth.dtype)
            valid[i, :m] = 1.0
            scale[i] = float(r.baseline_in_depth_units)
        values.append(depth_triangulation_loss(depth, pixels, tri, scale=scale, valid=valid,
                                               kind=cfg.depth_triangulation.kind))
    return _mean(values, ctx.images)


def term_depth_teacher(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Target depths vs the geometry teacher's sparse triangulated depth (scale-invariant log)."""
    if ctx.teacher_depth is None:
        raise ValueError("losses.depth_teacher needs the geometry teacher: set data.teacher.size_factor > 0")
    values = []
    for t in ctx.targets():
        teacher = ctx.teacher_depth[:, t]
        ctx.keep("teacher_depth", teacher)
        values.append(scale_invariant_log_loss(ctx.out.depths[t][0], teacher, cfg.depth_teacher.min_points))
    return _mean(values, ctx.images)


def term_depth_supervised(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Target depths vs the exact depth of rendered sources (dense scale-invariant log); real clips in the
    batch carry none and are left out."""
    if ctx.gt_depth is None:
        return ctx.images.new_zeros((), dtype=torch.float32)
    values = []
    for t in ctx.targets():
        gt = ctx.gt_depth[:, t]
        ctx.keep("gt_depth", gt)
        values.append(scale_invariant_log_loss(ctx.out.depths[t][0], gt, cfg.depth_supervised.min_points,
                                               cfg.depth_supervised.variance_focus))
    return _mean(values, ctx.images)


def term_depth_reprojection(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    return _mean([depth_reprojection_loss(v.depths_t[0], v.source_depth, v.pose, ctx.K, mask=v.ok_mask().expand_as(
        v.depths_t[0])) for v in ctx.temporal()], ctx.images)


def _rigid_mask(v: View, method: str, ctx: LossContext) -> Optional[torch.Tensor]:
    if method == "two_view":
        if not v.two_view:
            raise ValueError("losses.rigid_flow_consistency.mask: two_view needs the geometry module "
                             "(pose_source: geometry or losses.depth_triangulation.weight > 0)")
        masks = [torch.as_tensor(r.rigid_mask, dtype=v.target.dtype) if r.rigid_mask is not None
                 else torch.zeros(v.target.shape[-2:], dtype=v.target.dtype) for r in v.two_view]
        return torch.stack(masks)[:, None].to(v.target.device)
    return ctx.visible(v, method) if method != "none" else None


def term_rigid_flow_consistency(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.rigid_flow_consistency
    values = []
    for v in ctx.temporal():
        rigid, _ = rigid_flow(v.depths_t[0], v.pose, ctx.K)
        optical = v.flow_t_s
        if c.teacher == "rigid":
            rigid = rigid.detach()
        elif c.teacher == "optical":
            optical = optical.detach()
        mask = _rigid_mask(v, c.mask, ctx)
        ok = v.ok_mask().expand_as(v.depths_t[0])
        mask = ok if mask is None else mask * ok
        ctx.keep("rigid_mask", mask)
        values.append(rigid_flow_consistency_loss(rigid, optical, mask))
    return _mean(values, ctx.images)


def term_epipolar(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.epipolar
    values = []
    for v in ctx.temporal():
        vis = ctx.visible(v, c.occlusion)
        ok = v.ok_mask().expand_as(v.depths_t[0])
        values.append(epipolar_loss(v.flow_t_s, v.pose, ctx.K, mask=ok if vis is None else vis * ok,
                                    robust=c.robust, eps=c.eps))
    return _mean(values, ctx.images)


def term_adaptive_photometric(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """GLNet: per-pixel min of the rigid-warp and flow-warp photometric errors (full resolution)."""
    values = []
    for v in ctx.temporal():
        rigid_w, rigid_valid = warp_rigid(v.source, v.depths_t[0], v.pose, ctx.K)
        flow_w, flow_valid = warp_by_flow(v.source, v.flow_t_s)
        values.append(adaptive_photometric_loss(v.target, rigid_w, flow_w, rigid_valid * v.ok_mask(), flow_valid,
                                                alpha=cfg.adaptive_photometric.ssim_alpha))
    return _mean(values, ctx.images)


def term_cross_weighted(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    """Fang et al. eq. 5-7 on every temporal view; occlusion M_occ from the network's learned mask when
    it has one, else from the range map (eq. 1)."""
    c = cfg.cross_weighted
    values = []
    for v in ctx.temporal():
        rigid, _ = rigid_flow(v.depths_t[0], v.pose, ctx.K)
        rigid_w, rigid_valid = warp_by_flow(v.source, rigid)
        flow_w, flow_valid = warp_by_flow(v.source, v.flow_t_s)
        loss_o = photometric_error(flow_w, v.target, c.ssim_alpha)
        loss_d = photometric_error(rigid_w, v.target, c.ssim_alpha)
        epi_o = epipolar_error_map(v.flow_t_s, v.pose, ctx.K)
        epi_d = epipolar_error_map(rigid, v.pose, ctx.K)
        vis = ctx.visible(v, "learned" if v.learned_visible is not None else "range")
        valid = rigid_valid * flow_valid * v.ok_mask() * (1.0 if vis is None else vis)
        values.append(adaptive_cross_weighted_loss(loss_o, loss_d, epi_o, epi_d, lambda_ed=c.lambda_ed,
                                                   lambda_eo=c.lambda_eo, threshold=c.threshold,
                                                   temperature=c.temperature, valid=valid))
    return _mean(values, ctx.images)


def term_icp(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.icp
    values = []
    for v in ctx.temporal():
        ok = v.ok_mask().expand_as(v.depths_t[0])
        values.append(icp_loss(v.depths_t[0], v.source_depth, v.pose, ctx.K, valid_t=ok, association=c.association,
                               iterations=c.iterations, num_points=c.num_points, transform_weight=c.transform_weight,
                               residual_weight=c.residual_weight, generator=ctx.generator))
    return _mean(values, ctx.images)


def term_multiview_3d(ctx: LossContext, cfg: LossesConfig) -> torch.Tensor:
    c = cfg.multiview_3d
    values = []
    for v in ctx.temporal():
        vis = ctx.visible(v, c.occlusion)
        ok = v.ok_mask().expand_as(v.depths_t[0])
        values.append(multiview_structure_loss(v.depths_t[0], v.source_depth, v.flow_t_s, v.pose, ctx.K,
                                               mask=ok if vis is None else vis * ok, relative=c.relative))
    return _mean(values, ctx.images)


TERMS: dict[str, Callable[[LossContext, LossesConfig], torch.Tensor]] = {
    "photometric": term_photometric,
    "depth_smoothness": term_depth_smoothness,
    "flow_photometric": term_flow_photometric,
    "flow_occlusion_aware": term_flow_occlusion_aware,
    "flow_smoothness": term_flow_smoothness,
    "fb_consistency": term_fb_consistency,
    "flow_distillation": term_flow_distillation,
    "depth_triangulation": term_depth_triangulation,
    "depth_teacher": term_depth_teacher,
    "depth_supervised": term_depth_supervised,
    "depth_reprojection": term_depth_reprojection,
    "rigid_flow_consistency": term_rigid_flow_consistency,
    "epipolar": term_epipolar,
    "adaptive_photometric": term_adaptive_photometric,
    "cross_weighted": term_cross_weighted,
    "icp": term_icp,
    "multiview_3d": term_multiview_3d,
}


# ------------------------------------------------------------------------------------------- assembler


def dis_flow_batch(image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
    """Classical DIS flow (OpenCV, no learning, no labels) image1 -> image2 for a Bx3xHxW batch in [0, 1].

    ``two_view_flow: dis`` hands it to the training two-view module instead of the network's flow: a
    network trained from scratch predicts flow too poor for the essential matrix for thousands of steps,
    so the depth would learn from wrong poses; DIS poses are right from step one and the network's flow
    still learns from its own losses (and from rigid-flow consistency with the depth)."""
    from depth_pose_ros.geometry.dis_flow import dis_flow

    a = image1.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    b = image2.detach().float().permute(0, 2, 3, 1).cpu().numpy()
    flows = [dis_flow(x, y, "medium") for x, y in zip(a, b)]  # to_gray_u8 inside takes 1 or 3 channels
    return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(image1.device)


class LossAssembler:
    """Builds the views of a batch and sums the weighted terms selected by the config."""

    def __init__(self, losses: LossesConfig, pose_source: str, model_cfg: NetConfig, two_view: TwoViewConfig,
                 two_view_flow: str = "network") -> None:
        if two_view_flow not in ("network", "dis", "teacher"):
            raise ValueError(f"two_view_flow: {two_view_flow!r} is not one of ['network', 'dis', 'teacher']")
        self.cfg = losses
        self.pose_source = pose_source
        self.model_cfg = model_cfg
        self.two_view = two_view
        self.two_view_flow = two_view_flow
        missing = sorted(set(losses.term_names()) - set(TERMS))
        if missing:  # pragma: no cover - guards LossesConfig and TERMS drifting apart
            raise ValueError(f"loss terms without an implementation: {missing}")
        self.check(losses.weights(), model_cfg)

    def check(self, weights: dict[str, float], model_cfg: Optional[NetConfig] = None) -> None:
        """Fail early, naming the key, when a selected term needs a module the model lacks."""
        model_cfg = model_cfg if model_cfg is not None else self.model_cfg
        active = {k for k, w in weights.items() if w > 0}
        flow = model_cfg.flow.enabled
        if active & NEEDS_FLOW and not flow:
            raise ValueError(f"losses {sorted(active & NEEDS_FLOW)} need the flow decoder (model.flow.enabled: true)")
        if active & NEEDS_POSE:
            if self.pose_source == "posenet" and not model_cfg.pose_net.enabled:
                raise ValueError("pose_source: posenet needs model.pose_net.enabled: true")
            if self.pose_source == "geometry" and not flow:
                raise ValueError("pose_source: geometry needs the flow decoder (model.flow.enabled: true)")
        for name in ("flow_photometric", "fb_consistency", "epipolar", "multiview_3d"):
            occ = getattr(getattr(self.cfg, name), "occlusion", "none")
            if weights.get(name, 0) > 0 and occ == "learned" and not (flow and model_cfg.flow.occlusion_mask):
                raise ValueError(f"losses.{name}.occlusion: learned needs model.flow.occlusion_mask: true")

    def needs_pose(self, weights: dict[str, float]) -> bool:
        return any(weights.get(k, 0) > 0 for k in NEEDS_POSE)

    def needs_two_view(self, weights: dict[str, float]) -> bool:
        geometry_pose = self.pose_source == "geometry" and self.two_view_flow != "teacher" and self.needs_pose(weights)
        rigid_tv = weights.get("rigid_flow_consistency", 0) > 0 and self.cfg.rigid_flow_consistency.mask == "two_view"
        return geometry_pose or rigid_tv or any(weights.get(k, 0) > 0 for k in NEEDS_TWO_VIEW)

    def build_views(self, images: torch.Tensor, K: torch.Tensor, out: ClipOutput,
                    weights: dict[str, float], stereo_images: Optional[torch.Tensor] = None,
                    stereo_T: Optional[torch.Tensor] = None, teacher_depth: Optional[torch.Tensor] = None,
                    teacher_poses: Optional[torch.Tensor] = None,
                    teacher_flows: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> list[View]:
        T = images.shape[1]
        need_pose = self.needs_pose(weights)
        need_tv = self.needs_two_view(weights)
        views: list[View] = []
        dis: dict[tuple[int, int], torch.Tensor] = {}  # two_view_flow: dis; pair (t, s) serves views t and s

        def dis_pair(a: int, b: int) -> torch.Tensor:
            if (a, b) not in dis:
                dis[(a, b)] = dis_flow_batch(images[:, a], images[:, b])
            return dis[(a, b)]

        for t in range(1, T - 1):
            for s in temporal_sources(t):
                v = View(t=t, s=s, stereo=False, target=images[:, t], source=images[:, s], depths_t=out.depths[t],
                         depth_s=out.depths[s][0])
                if out.flows:
                    flows = pair_flows(out, t, s)
                    v.flows_t_s, v.flows_s_t, v.learned_visible = flows.t_s, flows.s_t, flows.visible
                if weights.get("flow_distillation", 0) > 0:
                    if self.cfg.flow_distillation.source == "teacher":
                        v.teacher_t_s, v.teacher_s_t = teacher_pair_flows(teacher_flows, t, s)
                    else:
                        v.teacher_t_s, v.teacher_s_t = dis_pair(t, s), dis_pair(s, t)
                if need_tv:  # (two_view_flow: teacher runs it only for the terms that need its results)
                    f_ts, f_st = (v.flow_t_s, v.flow_s_t) if self.two_view_flow == "network" \
                        else (dis_pair(t, s), dis_pair(s, t))
                    g = geometry_poses(f_ts, f_st, v.depths_t[0], K, self.two_view)
                    v.two_view = g.results
                    if self.pose_source == "geometry":
                        v.T_s_t, v.pose_ok = g.T_s_t, g.ok
                if need_pose and self.pose_source == "geometry" and self.two_view_flow == "teacher":
                    if teacher_poses is None or teacher_depth is None:
                        raise ValueError("two_view_flow: teacher needs the geometry teacher's poses: set "
                                         "data.teacher.size_factor > 0")
                    v.T_s_t, v.pose_ok = teacher_T_s_t(teacher_poses, teacher_depth, [d[0] for d in out.depths], t, s)
                if need_pose and self.pose_source == "posenet":
                    v.T_s_t = posenet_T_s_t(out, t, s)
                    v.pose_ok = torch.ones(images.shape[0], device=images.device)
                views.append(v)
            if stereo_images is not None and stereo_T is not None and weights.get("photometric", 0) > 0:
                views.append(View(t=t, s=-1, stereo=True, target=images[:, t], source=stereo_images[:, t],
                                  depths_t=out.depths[t], T_s_t=stereo_T,
                                  pose_ok=torch.ones(images.shape[0], device=images.device)))
        return views

    def __call__(self, images: torch.Tensor, K: torch.Tensor, out: ClipOutput,
                 weights: Optional[dict[str, float]] = None, stereo_images: Optional[torch.Tensor] = None,
                 stereo_T: Optional[torch.Tensor] = None, generator: Optional[torch.Generator] = None,
                 want_maps: bool = False, step: Optional[int] = None,
                 teacher_depth: Optional[torch.Tensor] = None,
                 teacher_poses: Optional[torch.Tensor] = None,
                 teacher_flows: Optional[tuple[torch.Tensor, torch.Tensor]] = None,
                 gt_depth: Optional[torch.Tensor] = None) -> LossResult:
        """Total weighted loss of one batch (``weights`` overrides the config's, e.g. per stage).

        ``step`` (the training step) switches the occlusion warm-up; None means after it.
        """
        weights = weights if weights is not None else self.cfg.weights()
        self.check(weights)
        views = self.build_views(images, K, out, weights, stereo_images, stereo_T, teacher_depth, teacher_poses,
                                 teacher_flows)
        warm = step is not None and step < self.cfg.occlusion_warmup_steps
        ctx = LossContext(images=images, K=K, out=out, views=views, generator=generator, want_maps=want_maps,
                          occlusion_off=warm, teacher_depth=teacher_depth, gt_depth=gt_depth)
        total = images.new_zeros((), dtype=torch.float32)
        terms: dict[str, torch.Tensor] = {}
        for name, fn in TERMS.items():
            w = float(weights.get(name, 0.0))
            if w <= 0:
                continue
            value = fn(ctx, self.cfg).float()
            terms[name] = value.detach()
            total = total + w * value
        oks = [v.pose_ok.float().mean() for v in views if v.pose_ok is not None and not v.stereo]
        ratio = float(torch.stack(oks).mean()) if oks else 1.0
        if want_maps:
            t = ctx.targets()[0]
            ctx.keep("depth", out.depths[t][0])
            for v in ctx.temporal():
                if v.flows_t_s is not None:
                    ctx.keep("flow", v.flow_t_s)
                    if v.learned_visible is not None:
                        ctx.keep("learned_visible", v.learned_visible)
                if v.two_view and v.two_view[0].rigid_mask is not None:
                    rigid = torch.as_tensor(v.two_view[0].rigid_mask, dtype=torch.float32)
                    ctx.keep("two_view_rigid", rigid[None, None])
            ctx.keep("image", images[:, t])
        return LossResult(total=total, terms=terms, maps=ctx.maps, pose_ok_ratio=ratio)
