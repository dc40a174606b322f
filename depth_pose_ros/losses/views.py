"""Source views of a clip's target frame: which flows and which camera motion each self-supervised
loss warps with. One implementation for the training loss (``training/losses_from_config.py``) and
test-time online refinement (``pipeline/refinement.py``), so the two objectives cannot drift apart.

A clip of T frames gives targets ``t = 1..T-2``; each has the temporal sources ``s = t-1`` and ``t+1``.
``T_s_t`` (Bx4x4) maps target-camera points into the source camera; flows ``t -> s`` live on t's grid.
The motion comes from the model's PoseNet (:func:`posenet_T_s_t`), from the two-view module run on
the detached flow of the pair (:func:`geometry_poses`), scaled to the target depth, or from the motions a
geometry teacher computed once per pair at a higher resolution (:func:`teacher_T_s_t`), scaled by aligning
the network depth to the same teacher's triangulated points.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from depth_pose_ros.geometry.scale_align import align_scale
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewResult, TwoViewStatus, estimate_two_view
from depth_pose_ros.nets.model import ClipOutput

USABLE_STATUSES = (TwoViewStatus.OK, TwoViewStatus.PNP_FALLBACK)


def temporal_sources(t: int) -> tuple[int, int]:
    """The source frames of target ``t``."""
    return t - 1, t + 1


@dataclass
class PairFlows:
    """Flows of target t and source s from a clip output (full resolution first, then the pyramid)."""

    t_s: list[torch.Tensor]  # flows t -> s on t's grid
    s_t: list[torch.Tensor]  # flows s -> t on s's grid
    visible: Optional[torch.Tensor]  # Bx1xHxW learned non-occlusion of t's pixels in s (None: no mask head)


def clip_pair(t: int, s: int) -> tuple[int, bool]:
    """``(i, forward)`` of target ``t`` and source ``s = t +- 1``: the consecutive pair (i, i+1) they form, and
    whether ``t -> s`` is that pair's forward direction (``s = t + 1``). Clip outputs, teacher poses and teacher
    flows are all stored per pair this way."""
    if s == t + 1:
        return t, True
    if s == t - 1:
        return s, False
    raise ValueError(f"source {s} is not a neighbour of target {t}")


def pair_flows(out: ClipOutput, t: int, s: int) -> PairFlows:
    """Flows between target ``t`` and source ``s = t +- 1``: ``out.flows[i]`` is the pair (i, i+1)."""
    i, forward = clip_pair(t, s)
    fl = out.flows[i]
    assert fl.backward is not None, "clip flows are computed in both directions (forward_clip)"
    if forward:
        vis = fl.non_occluded_fw
        return PairFlows(fl.forward, fl.backward, vis[0] if vis is not None else None)
    vis = fl.non_occluded_bw  # pair (A=t-1, B=t): backward is t -> t-1 on t's grid
    return PairFlows(fl.backward, fl.forward, vis[0] if vis is not None else None)


def teacher_pair_flows(teacher_flows: Optional[tuple[torch.Tensor, torch.Tensor]], t: int, s: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The geometry teacher's flows ``(t -> s, s -> t)`` of target ``t`` and source ``s = t +- 1`` from the clip's
    pair flows ``(forward, backward)``, each Bx(T-1)x2xHxW (pair i: frames i, i+1)."""
    if teacher_flows is None:
        raise ValueError("losses.flow_distillation.source: teacher needs the geometry teacher's flows: set "
                         "data.teacher.size_factor > 0 and data.teacher.flow: true")
    fw, bw = teacher_flows
    i, forward = clip_pair(t, s)
    return (fw[:, i], bw[:, i]) if forward else (bw[:, i], fw[:, i])


def posenet_T_s_t(out: ClipOutput, t: int, s: int) -> torch.Tensor:
    """PoseNet motion of target ``t`` into source ``s``: ``out.poses[i].T_prev_cur`` is ``T_i_{i+1}``."""
    if not out.poses:
        raise ValueError("the network returned no poses (no PoseNet in this model)")
    i, forward = clip_pair(t, s)
    return torch.linalg.inv(out.poses[i].T_prev_cur) if forward else out.poses[i].T_prev_cur


@dataclass
class GeometryPoses:
    """Per batch item: ``T_s_t`` (Bx4x4, translation in the units of the target depth), ``ok`` (B float,
    1 where the two-view module found a pose) and the raw results (triangulated inliers, rigid masks)."""

    T_s_t: torch.Tensor
    ok: torch.Tensor
    results: list[TwoViewResult]


def _flow_np(flow: torch.Tensor, b: int) -> np.ndarray:
    return flow[b].detach().float().permute(1, 2, 0).cpu().numpy()


def geometry_poses(flow_t_s: torch.Tensor, flow_s_t: Optional[torch.Tensor], depth_t: torch.Tensor,
                   K: torch.Tensor, config: TwoViewConfig) -> GeometryPoses:
    """Camera motion target -> source from a flow, scaled to the target's depth.

    Args:
        flow_t_s: Bx2xHxW flow from the target t into the source s (on t's grid), detached here.
        flow_s_t: optional Bx2xHxW reverse flow (fb scores / occlusion of the correspondences).
        depth_t: Bx1xHxW target depth: the translation length comes from aligning it to the
            triangulated inliers (``TwoViewResult.baseline_in_depth_units``), so depth and pose share units.
        K: Bx3x3 (or 3x3) intrinsics.
        config: two-view settings (cheap ones: this runs inside a loss).

    Returns ``T_s_t = [R | t * baseline_in_depth_units]`` where the two-view module returns ``T_2_1`` with
    frame 1 = t, frame 2 = s (so ``T_2_1`` *is* ``T_s_t``). Items without a usable pose get the identity and
    ``ok = 0``; callers mask them out of the pose-dependent losses. Runs in numpy/OpenCV per item.
    """
    b = flow_t_s.shape[0]
    Ks = K.expand(b, 3, 3) if K.dim() == 3 else K.unsqueeze(0).expand(b, 3, 3)
    T = torch.eye(4, dtype=torch.float64).repeat(b, 1, 1)
    ok = torch.zeros(b)
    results = []
    for i in range(b):
        fw = _flow_np(flow_t_s, i)
        bw = _flow_np(flow_s_t, i) if flow_s_t is not None else None
        d = depth_t[i, 0].detach().float().cpu().numpy()
        k = Ks[i].detach().double().cpu().numpy()
        if not (np.all(np.isfinite(fw)) and np.all(np.isfinite(d))):
            tv = TwoViewResult.identity(TwoViewStatus.FAILED, "non-finite network output")
        else:
            tv = estimate_two_view(fw, k, flow_bw=bw, depth1=d, config=config)
        results.append(tv)
        length = tv.baseline_in_depth_units
        if tv.status in USABLE_STATUSES and length is not None and np.isfinite(length) and length > 0:
            T[i, :3, :3] = torch.from_numpy(np.asarray(tv.R, dtype=np.float64))
            T[i, :3, 3] = torch.from_numpy(np.asarray(tv.t, dtype=np.float64) * float(length))
            ok[i] = 1.0
    return GeometryPoses(T.to(device=depth_t.device, dtype=torch.float32), ok.to(depth_t.device), results)


def depth_to_points_scale(depth: torch.Tensor, points: torch.Tensor, min_points: int = 20
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per item, the factor ``s`` with ``depth ~ s * points`` (median of the log ratios over the pixels where the
    sparse ``points`` map is > 0, :func:`geometry.scale_align.align_scale` without its Huber refinement),
    detached, and whether at least ``min_points`` pixels were there.

    Args:
        depth: Bx1xHxW network depth.
        points: Bx1xHxW sparse depth known up to one unknown scale per item (0 or non-finite = none).
    """
    b = depth.shape[0]
    scale = torch.ones(b, dtype=torch.float64, device=depth.device)
    ok = torch.zeros(b, dtype=torch.bool, device=depth.device)
    for i in range(b):
        fit = align_scale(points[i].detach().double().cpu().numpy(), depth[i].detach().double().cpu().numpy(),
                          iterations=0, min_points=min_points)
        if fit is not None and np.isfinite(fit.scale):
            scale[i], ok[i] = fit.scale, True
    return scale, ok


def teacher_T_s_t(teacher_poses: torch.Tensor, teacher_depth: torch.Tensor, depths: list[torch.Tensor],
                  t: int, s: int, min_points: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    """``(T_s_t, ok)`` of target ``t`` and source ``s = t +- 1`` from a geometry teacher's pair motions.

    Args:
        teacher_poses: Bx(T-1)x4x4 ``T_{i+1,i}`` of each consecutive clip pair, unit translation in the units
            of the teacher depth of frame i (NaN where the teacher has none).
        teacher_depth: BxTx1xHxW sparse teacher depth of each frame (its pair's triangulated points).
        depths: the network's full-resolution depth of every clip frame (each Bx1xHxW).

    The translation is scaled by aligning the network depth of the pair's first frame to that frame's teacher
    points, so pose and depth share units without a fresh low-resolution triangulation; the backward pair is
    the inverse of the forward motion ``T_{t,t-1}``. Items without a teacher motion or with too few points
    get the identity and ``ok = 0``.
    """
    first, forward = clip_pair(t, s)  # the pair (first, first + 1)
    P = teacher_poses[:, first].double().clone()
    scale, ok = depth_to_points_scale(depths[first], teacher_depth[:, first], min_points)
    ok = ok & torch.isfinite(P).flatten(1).all(1)
    eye = torch.eye(4, dtype=P.dtype, device=P.device)
    P = torch.where(ok.view(-1, 1, 1), torch.nan_to_num(P), eye)
    P[:, :3, 3] = P[:, :3, 3] * scale.view(-1, 1)
    T = P if forward else torch.linalg.inv(P)
    return T.to(device=depths[first].device, dtype=torch.float32), ok.to(depths[first].device, torch.float32)


def item_mask(ok: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-item flags (B) as a Bx1x1x1 mask broadcastable to ``like``'s maps."""
    return ok.to(like.dtype).view(-1, 1, 1, 1)


def clip_poses(out: ClipOutput, t: int, K: torch.Tensor,
               two_view: TwoViewConfig) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(source, T_s_t, ok)`` for both sources of target ``t``: the PoseNet when the model has one,
    else the geometry module on the network's own flow of each pair."""
    sources = []
    for s in temporal_sources(t):
        if out.poses:
            T = posenet_T_s_t(out, t, s)
            sources.append((s, T, torch.ones(T.shape[0], device=T.device)))
        else:
            flows = pair_flows(out, t, s)
            g = geometry_poses(flows.t_s[0], flows.s_t[0], out.depths[t][0], K, two_view)
            sources.append((s, g.T_s_t, g.ok))
    return sources
