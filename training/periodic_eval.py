"""Held-out evaluation during training: is the network learning depth, flow and motion?

The held-out sequence (by default a synthetic-world sequence with a seed the training never sees)
is streamed through the network exactly as the Estimator does at inference: one ``encode`` per frame
carrying the recurrent state, depth from the new features, flow between the cached previous
features and the new ones. Reported (means over the frames / pairs):

* ``depth_abs_rel`` (and ``depth_delta1``): Eigen metrics with per-image median scaling, against
  ``depth_abs_rel_constant``, the AbsRel of a constant depth map (what an untrained network scores);
* ``flow_epe`` against ``flow_epe_zero``, the EPE of predicting no motion (a flow network that has
  learned anything beats it);
* ``rot_err_deg``: rotation error of the two-view pose recovered from the network's own flow
  (forward + backward, depth of the previous frame for the scale), and ``rot_err_deg_identity`` the
  error of assuming no rotation; ``trans_dir_err_deg`` the translation-direction error;
* ``posenet_rot_err_deg`` when the model has a PoseNet.

Metrics a source cannot support (no GT flow, no poses) are left out. Results go to TensorBoard
(``eval/<name>``) and to ``<run>/eval.jsonl`` (one JSON object per evaluation, with the step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from depth_pose_ros.data.clips import frames_to_clip
from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import FrameReadError, open_source
from depth_pose_ros.eval.depth_metrics import depth_metrics
from depth_pose_ros.eval.flow_metrics import flow_metrics
from depth_pose_ros.geometry.pose_error import rotation_error_deg, translation_direction_error_deg
from depth_pose_ros.geometry.se3 import invert_np
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewStatus, estimate_two_view
from depth_pose_ros.nets.model import DepthFlowNet
from depth_pose_ros.utils.json_output import dumps
from training.augment import make_sample
from training.config import AugmentConfig, SourceConfig


@dataclass
class HeldOut:
    """A held-out sequence at network resolution (tensors on the CPU)."""

    name: str
    images: torch.Tensor  # T x C x H x W in [0, 1]
    K: np.ndarray  # 3 x 3
    gt_depth: Optional[torch.Tensor] = None  # T x 1 x H x W metres, 0 = unknown
    gt_flow: Optional[torch.Tensor] = None  # (T-1) x 2 x H x W, flow t -> t+1
    gt_poses: Optional[np.ndarray] = None  # T x 4 x 4, T_first_t


def load_heldout(source: SourceConfig, height: int, width: int, channels: int, max_frames: int) -> HeldOut:
    """Read up to ``max_frames`` consecutive frames of ``source`` and resize them to the network size.

    The metrics compare neighbouring frames, so an unreadable frame ends the run of frames (or, before
    two were read, starts it again after the bad one) instead of leaving a gap; it is recorded in
    ``src.skipped`` and logged by the reader.
    """
    src = open_source(source.spec, **source.options)
    if min(len(src), int(max_frames)) < 2:
        raise ValueError(f"eval.source {source.spec}: needs at least 2 frames, has {len(src)}")
    frames: list[Frame] = []
    positions: list[int] = []
    for i in range(len(src)):
        if len(frames) == int(max_frames):
            break
        try:
            frames.append(src[i])
            positions.append(i)
        except FrameReadError:
            if len(frames) >= 2:
                break
            frames, positions = [], []
    if len(frames) < 2:
        raise ValueError(f"eval.source {source.spec}: no 2 consecutive readable frames ({len(src.skipped)} "
                         f"unreadable)")
    clip = frames_to_clip(frames, indices=positions, source=getattr(src, "name", source.spec))
    s = make_sample(clip, (height, width), channels, AugmentConfig(enabled=False), train=False)
    return HeldOut(
        name=clip.source,
        images=s.images,
        K=s.K.double().numpy(),
        gt_depth=s.gt_depth,
        gt_flow=s.gt_flow,
        gt_poses=None if s.gt_poses is None else s.gt_poses.double().numpy(),
    )


def _flow_np(x: torch.Tensor) -> np.ndarray:
    return x[0].float().permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def evaluate(model: DepthFlowNet, data: HeldOut, two_view: Optional[TwoViewConfig] = None,
             device: Optional[torch.device] = None) -> dict[str, float]:
    """Stream ``data`` through ``model`` and return the mean metrics (see the module docstring)."""
    device = device if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    tv_cfg = two_view if two_view is not None else TwoViewConfig()
    abs_rel, abs_rel_const, delta1, epe, epe_zero, rot, rot_id, tdir, pn_rot, tv_ok = ([] for _ in range(10))
    try:
        state = None
        prev_feats = prev_depth = prev_image = None
        for i in range(data.images.shape[0]):
            x = data.images[i:i + 1].to(device)
            feats, state = model.encode(x, state)
            cues = None
            if model.idce is not None:
                cues = model.stream_features(prev_feats, feats, prev_image, x)
            depth = model.predict_depth(feats, cues)[0][0, 0].float().cpu().numpy()
            if data.gt_depth is not None:
                gt = data.gt_depth[i, 0].numpy()
                if np.any((gt > 1e-3) & (gt < 80.0)):
                    m = depth_metrics(depth, gt, median_scale=True)
                    abs_rel.append(m["abs_rel"])
                    delta1.append(m["delta1"])
                    abs_rel_const.append(depth_metrics(np.ones_like(depth), gt, median_scale=True)["abs_rel"])
            if prev_feats is not None:
                T_gt = None
                if data.gt_poses is not None:  # T_cur_prev = inv(T_first_cur) @ T_first_prev
                    T_gt = invert_np(data.gt_poses[i]) @ data.gt_poses[i - 1]
                    rot_id.append(float(rotation_error_deg(np.eye(3), T_gt[:3, :3])))
                if model.flow_decoder is not None:
                    out = model.predict_flow(prev_feats, feats, both_directions=True)
                    assert out.backward is not None  # both_directions=True
                    fw, bw = _flow_np(out.forward[0]), _flow_np(out.backward[0])
                    if data.gt_flow is not None:
                        gt_f = data.gt_flow[i - 1].permute(1, 2, 0).numpy()
                        valid = np.isfinite(gt_f).all(-1)
                        if valid.any():
                            gt_f = np.where(valid[..., None], gt_f, 0.0)
                            epe.append(flow_metrics(fw, gt_f, valid)["epe"])
                            epe_zero.append(flow_metrics(np.zeros_like(fw), gt_f, valid)["epe"])
                    if T_gt is not None and np.all(np.isfinite(fw)) and np.all(np.isfinite(bw)):
                        tv = estimate_two_view(fw, data.K, flow_bw=bw, depth1=prev_depth, config=tv_cfg)
                        tv_ok.append(1.0 if tv.status == TwoViewStatus.OK else 0.0)
                        rot.append(float(rotation_error_deg(tv.R, T_gt[:3, :3])))
                        if np.linalg.norm(tv.t) > 0:
                            tdir.append(float(translation_direction_error_deg(tv.t, T_gt[:3, 3])))
                if model.pose_net is not None and T_gt is not None:
                    assert prev_image is not None  # set with prev_feats
                    T_prev_cur = model.predict_pose(prev_image, x).T_prev_cur[0].double().cpu().numpy()
                    pn_rot.append(float(rotation_error_deg(invert_np(T_prev_cur)[:3, :3], T_gt[:3, :3])))
            prev_feats, prev_depth, prev_image = feats, depth, x
    finally:
        model.train(was_training)

    def mean(v: list[float]) -> Optional[float]:
        v = [x for x in v if x is not None and math.isfinite(x)]
        return float(np.mean(v)) if v else None

    metrics = {
        "depth_abs_rel": mean(abs_rel),
        "depth_delta1": mean(delta1),
        "depth_abs_rel_constant": mean(abs_rel_const),
        "flow_epe": mean(epe),
        "flow_epe_zero": mean(epe_zero),
        "rot_err_deg": mean(rot),
        "rot_err_deg_identity": mean(rot_id),
        "trans_dir_err_deg": mean(tdir),
        "two_view_ok_ratio": mean(tv_ok),
        "posenet_rot_err_deg": mean(pn_rot),
    }
    return {k: v for k, v in metrics.items() if v is not None}


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line (creating the file); NaN is written as null."""
    with open(path, "a") as f:
        f.write(dumps(record, indent=None) + "\n")
