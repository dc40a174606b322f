"""Online refinement (GLNet, Chen et al. 2019): a few self-supervised steps on the test clip itself.

At test time the network is fine-tuned for ``iterations`` steps on the frames it is about to predict,
with the same kind of self-supervised loss it was trained with (view synthesis, smoothness, flow
photometric), regularised so that it cannot drift far from what it knew:

* parameter fine-tuning prior: ``param_weight * ||theta - theta_0||^2 / ||theta_0||^2`` to the trained
  weights (relative, so the weight does not depend on the model size);
* output fine-tuning prior: ``output_weight * mean (log D - log D_0)^2`` to the depth the network
  predicted on this clip before refinement.

The camera pose for view synthesis comes from the PoseNet when the model has one, else from the
two-view geometry module run on the (detached) predicted flow with the depth scale-aligned to the
triangulated points, exactly as the Estimator does at inference (:func:`geometry_poses`, also used
by the training loop).

Use from the Estimator: :func:`refine_estimator` is the one call ``Estimator.step`` makes after
preparing a frame; it keeps a window of recent frames and refines the estimator's model in place
when ``EstimatorConfig.refinement.enabled``. Use from evaluation: :func:`refine_and_predict` refines a
*copy* of the model on one clip (the GLNet protocol: every test clip starts from the trained weights)
and returns the refined depth.

This module imports ``depth_pose_ros.losses`` but nothing of ``training/``.
"""
from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass
from typing import Any, Optional, cast

import numpy as np
import torch

from depth_pose_ros.geometry.warp import warp_rigid
from depth_pose_ros.losses import (
    edge_aware_smoothness,
    flow_occlusion_mask,
    flow_photometric_loss,
    min_reprojection_loss,
)
from depth_pose_ros.losses.views import clip_poses, item_mask, pair_flows, temporal_sources
from depth_pose_ros.nets.model import ClipOutput, DepthFlowNet
from depth_pose_ros.pipeline.config import RefinementConfig
from depth_pose_ros.utils.image import image_to_tensor


def self_supervised_loss(model: DepthFlowNet, images: torch.Tensor, K: torch.Tensor,
                         config: RefinementConfig) -> tuple[torch.Tensor, ClipOutput]:
    """Compact self-supervised objective of a clip BxTxCxHxW (targets 1..T-2): rigid view synthesis
    (min reprojection + auto-mask, full-resolution depth), edge-aware smoothness, and the occlusion-
    masked flow photometric loss when the model has a flow decoder. Returns (loss, network outputs).
    """
    if images.dim() != 5 or images.shape[1] < 3:
        raise ValueError(f"images must be BxTxCxHxW with T >= 3, got {tuple(images.shape)}")
    out = model.forward_clip(images)
    K = K if K.dim() == 3 else K.unsqueeze(0).expand(images.shape[0], 3, 3)
    outputs = [d[0] for d in out.depths] + [f.forward[0] for f in out.flows] + [f.backward[0] for f in out.flows
                                                                                if f.backward is not None]
    if not all(bool(torch.isfinite(x).all()) for x in outputs):  # never warp with NaN (grid_sample may crash)
        return images.new_full((), float("nan")), out
    total = images.new_zeros(())
    n_targets = images.shape[1] - 2
    for t in range(1, images.shape[1] - 1):
        target = images[:, t]
        depth = out.depths[t][0]
        warped, valid, raw = [], [], []
        for s, T_s_t, ok in clip_poses(out, t, K, config.two_view):
            w, v = warp_rigid(images[:, s], depth, T_s_t, K)
            warped.append(w)
            valid.append(v * item_mask(ok, v))
            raw.append(images[:, s])
        if config.photometric_weight > 0:
            total = total + config.photometric_weight * min_reprojection_loss(target, warped, valid, sources=raw)
        if config.smoothness_weight > 0:
            total = total + config.smoothness_weight * edge_aware_smoothness(1.0 / depth, target)
        if config.flow_weight > 0 and out.flows:
            for s in temporal_sources(t):
                flows = pair_flows(out, t, s)
                mask = flow_occlusion_mask(flows.t_s[0], flows.s_t[0], "fb")
                total = total + 0.5 * config.flow_weight * flow_photometric_loss(target, images[:, s], flows.t_s[0],
                                                                                 mask)
    return total / n_targets, out


@dataclass
class RefinementStats:
    """What one refinement did: the self-supervised loss before/after and how far it moved."""

    loss_before: float
    loss_after: float
    param_distance: float  # ||theta - theta_0|| / ||theta_0||
    depth_change: float  # mean |log D - log D_0| over the clip after refinement
    iterations: int


class OnlineRefiner:
    """Refines a model in place on clips, regularised to its weights at construction (theta_0).

    Each :meth:`refine_clip` runs ``iterations`` Adam steps and keeps the iterate with the lowest
    regularised objective (the start included), so refinement never leaves the model worse on the
    clip than it found it, even when the test-time optimisation oscillates.
    """

    def __init__(self, model: DepthFlowNet, config: Optional[RefinementConfig] = None) -> None:
        self.model = model
        self.config = config if config is not None else RefinementConfig()
        self.initial = {n: p.detach().clone() for n, p in model.named_parameters()}
        # a tensor: a model has parameters (sum of none would be the int 0)
        norm_sq = cast(torch.Tensor, sum((p**2).sum() for p in self.initial.values()))
        self._initial_norm_sq = norm_sq.clamp_min(1e-12)
        self.buffer: deque[tuple[torch.Tensor, torch.Tensor]] = deque(maxlen=self.config.window)
        self.frames_seen = 0
        self.last_stats: Optional[RefinementStats] = None

    def param_distance_sq(self) -> torch.Tensor:
        """``||theta - theta_0||^2 / ||theta_0||^2``: relative, so one weight suits any model size."""
        total = None
        for n, p in self.model.named_parameters():
            d = ((p - self.initial[n].to(p.device)) ** 2).sum()
            total = d if total is None else total + d
        if total is None:
            return torch.zeros(())
        return total / self._initial_norm_sq.to(total.device)

    def _regularisers(self, out: ClipOutput, log_d0: torch.Tensor) -> torch.Tensor:
        """Output prior (log-depth to the pre-refinement prediction) + parameter prior (to theta_0)."""
        cfg = self.config
        reg = log_d0.new_zeros(())
        if cfg.output_weight > 0:
            log_d = torch.log(self._depths(out).clamp_min(1e-6))
            reg = reg + cfg.output_weight * ((log_d - log_d0) ** 2).mean()
        if cfg.param_weight > 0:
            reg = reg + cfg.param_weight * self.param_distance_sq()
        return reg

    def _depths(self, out: ClipOutput) -> torch.Tensor:
        return torch.stack([d[0] for d in out.depths], 1)  # B x T x 1 x H x W

    def refine_clip(self, images: torch.Tensor, K: torch.Tensor) -> RefinementStats:
        """``iterations`` Adam steps on clip ``images`` (BxTxCxHxW or TxCxHxW) with intrinsics ``K``."""
        cfg = self.config
        if images.dim() == 4:
            images = images.unsqueeze(0)
        device = next(self.model.parameters()).device
        images, K = images.to(device), K.to(device).float()
        was_training = self.model.training
        self.model.eval()  # BatchNorm keeps its trained statistics; gradients still flow
        try:
            start_state = {n: t.detach().clone() for n, t in self.model.state_dict().items()}
            with torch.no_grad():
                loss0, out0 = self_supervised_loss(self.model, images, K, cfg)
                log_d0 = torch.log(self._depths(out0).clamp_min(1e-6))
            params = [p for p in self.model.parameters() if p.requires_grad]
            opt = torch.optim.Adam(params, lr=cfg.lr)
            best, best_state = float(loss0), None  # objective at the start (the regularisers are 0 there)
            for i in range(cfg.iterations + 1):
                opt.zero_grad(set_to_none=True)
                with torch.set_grad_enabled(i < cfg.iterations):
                    loss, out = self_supervised_loss(self.model, images, K, cfg)
                    objective = loss + self._regularisers(out, log_d0)
                value = float(objective.detach())
                if not torch.isfinite(objective.detach()):
                    break  # never step on (or keep) a non-finite objective at test time
                if value < best and i > 0:  # keep the best iterate: never end worse than the start
                    best, best_state = value, {n: t.detach().clone() for n, t in self.model.state_dict().items()}
                if i == cfg.iterations:
                    break
                objective.backward()
                opt.step()
            if best_state is not None:
                self.model.load_state_dict(best_state)
            else:  # no iterate improved on the start: restore it
                self.model.load_state_dict({n: t for n, t in start_state.items()})
            with torch.no_grad():
                loss1, out1 = self_supervised_loss(self.model, images, K, cfg)
                change = (torch.log(self._depths(out1).clamp_min(1e-6)) - log_d0).abs().mean()
                dist = self.param_distance_sq().sqrt()
        finally:
            self.model.train(was_training)
        self.last_stats = RefinementStats(float(loss0), float(loss1), float(dist), float(change), cfg.iterations)
        return self.last_stats

    def observe(self, image: Any, K: Any) -> Optional[RefinementStats]:
        """Add one frame (HxWx3 / HxW uint8 at network size, or CxHxW float) and refine when due."""
        x = image_to_tensor(image, self.model.cfg.encoder.image_channels)
        self.buffer.append((x, torch.as_tensor(np.asarray(K), dtype=torch.float32)))
        self.frames_seen += 1
        cfg = self.config
        if len(self.buffer) < cfg.window or (self.frames_seen - cfg.window) % cfg.every:
            return None
        images = torch.stack([b[0] for b in self.buffer])
        return self.refine_clip(images, self.buffer[-1][1])

    def reset(self) -> None:
        """Drop the buffered frames (a new sequence starts); the weights stay as refined."""
        self.buffer.clear()
        self.frames_seen = 0


def refine_estimator(estimator: Any, net_image: np.ndarray, K_net: np.ndarray) -> Optional[RefinementStats]:
    """The Estimator hook: call at the start of ``Estimator.step`` with the prepared frame.

    Reads ``estimator.config.refinement`` (a :class:`RefinementConfig`; absent or disabled: no-op),
    keeps the refiner on the estimator (``estimator.refiner``, created on first use) and refines
    ``estimator.model`` in place once ``window`` frames are buffered.
    """
    cfg = getattr(getattr(estimator, "config", None), "refinement", None)
    if cfg is None or not cfg.enabled:
        return None
    refiner = getattr(estimator, "refiner", None)
    if refiner is None:
        refiner = OnlineRefiner(estimator.model, cfg)
        estimator.refiner = refiner
    return refiner.observe(net_image, K_net)


def refine_and_predict(model: DepthFlowNet, images: torch.Tensor, K: torch.Tensor,
                       config: Optional[RefinementConfig] = None) -> tuple[torch.Tensor, RefinementStats]:
    """Refine a *copy* of ``model`` on one clip (TxCxHxW, T >= 3) and return its depth (Tx1xHxW).

    The GLNet evaluation protocol: every test clip starts again from the trained weights.
    """
    cfg = config if config is not None else RefinementConfig(enabled=True)
    work = copy.deepcopy(model)
    refiner = OnlineRefiner(work, cfg)
    stats = refiner.refine_clip(images, K)
    work.eval()
    with torch.no_grad():
        out = work.forward_clip(images.unsqueeze(0) if images.dim() == 4 else images)
    return torch.stack([d[0][0] for d in out.depths]), stats


__all__ = [
    "OnlineRefiner",
    "RefinementStats",
    "refine_and_predict",
    "refine_estimator",
    "self_supervised_loss",
]
