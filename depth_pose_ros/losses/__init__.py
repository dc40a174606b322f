"""Self-supervised losses for depth, flow and ego-motion (pure torch, BxCxHxW, explicit masks).

They live in the core package, not ``training/``, because test-time online refinement (the Estimator)
reuses them; the training loop selects them by config keys and weights. Every loss returns a scalar,
or ``(scalar, per-pixel map)`` with ``return_map=True``. Poses are ``T_source_target`` (Bx4x4, maps
points of the target camera t into the source camera s) and flows ``flow_t_s`` live on t's grid.

Modules:
    photometric      SSIM, SSIM+L1, per-pixel min reprojection, auto-mask, multi-scale (Monodepth2)
    smoothness       edge-aware smoothness of inverse depth and (1st/2nd order) of flow
    flow_losses      occlusion-masked flow photometric loss, occlusion masks, fb-consistency loss,
                     distillation of a (classical) teacher flow on its fb-consistent pixels
    geometric        depth-triangulation, depth reprojection (SC-SfMLearner), rigid vs optical flow
    glnet            epipolar (Sampson), adaptive photometric, multi-view 3D structure (GLNet)
    occlusion_aware  Fang et al. bidirectional softmax weights (eq. 2-3), cross-weighted loss (eq. 5-7)
    icp              vid2depth 3D point-cloud alignment (ICP) loss
"""
from depth_pose_ros.losses.flow_losses import (
    fb_consistency_loss,
    flow_distillation_loss,
    flow_occlusion_mask,
    flow_photometric_loss,
    teacher_confidence,
)
from depth_pose_ros.losses.geometric import (
    depth_reprojection_loss,
    depth_triangulation_loss,
    rigid_flow_consistency_loss,
    sample_at_pixels,
    scale_invariant_log_loss,
)
from depth_pose_ros.losses.glnet import (
    adaptive_photometric_loss,
    epipolar_error_map,
    epipolar_loss,
    fundamental_from_pose,
    multiview_structure_loss,
    robust_penalty,
)
from depth_pose_ros.losses.icp import IcpResult, icp, icp_depth_maps, icp_loss, rigid_step, view_overlap_mask
from depth_pose_ros.losses.occlusion_aware import (
    adaptive_cross_weighted_loss,
    bidirectional_softmax_weights,
    hard_softmax_weight,
    occlusion_aware_flow_loss,
    occlusion_aware_photometric_loss,
)
from depth_pose_ros.losses.photometric import (
    automask,
    identity_errors,
    min_reprojection,
    min_reprojection_loss,
    multiscale_reprojection_loss,
    photometric_error,
    photometric_loss,
    ssim,
    upsample_to,
)
from depth_pose_ros.losses.reduction import LossOut, masked_mean
from depth_pose_ros.losses.smoothness import edge_aware_smoothness, flow_smoothness

__all__ = [
    "IcpResult",
    "LossOut",
    "adaptive_cross_weighted_loss",
    "adaptive_photometric_loss",
    "automask",
    "bidirectional_softmax_weights",
    "depth_reprojection_loss",
    "depth_triangulation_loss",
    "edge_aware_smoothness",
    "epipolar_error_map",
    "epipolar_loss",
    "fb_consistency_loss",
    "flow_distillation_loss",
    "flow_occlusion_mask",
    "flow_photometric_loss",
    "flow_smoothness",
    "fundamental_from_pose",
    "hard_softmax_weight",
    "icp",
    "icp_depth_maps",
    "icp_loss",
    "identity_errors",
    "masked_mean",
    "min_reprojection",
    "min_reprojection_loss",
    "multiscale_reprojection_loss",
    "multiview_structure_loss",
    "occlusion_aware_flow_loss",
    "occlusion_aware_photometric_loss",
    "photometric_error",
    "photometric_loss",
    "rigid_flow_consistency_loss",
    "rigid_step",
    "robust_penalty",
    "sample_at_pixels",
    "scale_invariant_log_loss",
    "ssim",
    "teacher_confidence",
    "upsample_to",
    "view_overlap_mask",
]
