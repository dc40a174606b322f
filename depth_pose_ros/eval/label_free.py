"""Label-free measures of a model on a recording without ground truth (the before/after report of
``depth-pose finetune``).

A user's own recording has no depth, flow or poses. What it does have is geometry: classical DIS flow between
consecutive frames at the recording's size, and the two-view module on that flow (essential matrix,
triangulation), which is far more accurate than a small network. The measures compare the network with that
geometry, always on the same pairs and the same geometry for every model, so a before/after difference is the
model's alone:

1. **photometric** -- mean SSIM+L1 error (alpha 0.85, the training's ``pe``) of frame t+1 warped into frame t
   with the network depth of t and the two-view motion ``T_{t+1,t}`` on DIS flow, its translation put in the
   depth's units by aligning the depth to the triangulated points; lower = a depth that explains the images.
   Reference: the same error of the unwarped frame t+1 (``photometric_identity``).
2. **depth_abs_rel_points** -- AbsRel of the network depth, median-scaled per frame, at the points the two-view
   module triangulates (:func:`depth_pose_ros.eval.depth_metrics.depth_metrics` on a sparse map). Reference:
   a constant depth (``depth_abs_rel_constant``).
3. **flow_epe_dis** -- end-point error (px, at the recording's size) between the network flow t -> t+1 and
   DIS flow on the pixels where DIS passes its forward-backward check. Reference: zero flow.
4. **pose_status** -- how often the streaming Estimator (the model folder's settings, what the node runs)
   measured the pose (``ok``), fell back to rotation only (``low_parallax``), PnP, or guessed
   (``constant_velocity``), over the held-out frames.

The network runs through an Estimator handed in by the caller (``eval`` never imports ``pipeline``): anything
with ``reset()``, ``step(image, K, stamp)`` returning a result with ``depth``, ``K`` and ``status``, and
``flow_between(image1, image2)`` (network flow at the network size; a model without a flow decoder raises
ValueError and the flow measure is left out).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import cv2
import numpy as np

from depth_pose_ros.data.frame import Frame, undistort_frame
from depth_pose_ros.eval.depth_metrics import depth_metrics
from depth_pose_ros.eval.flow_metrics import flow_metrics, resize_flow
from depth_pose_ros.geometry.camera import scale_intrinsics
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.registration import register_depth
from depth_pose_ros.geometry.scale_align import align_depth_to_points
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewStatus, estimate_two_view
from depth_pose_ros.utils.image import to_gray_u8

__all__ = ["MEASURES", "PairGeometry", "depth_point_agreement", "flow_agreement", "label_free_report",
           "photometric_error", "reference_geometry", "score_model", "ssim", "warp_rigid"]

#: The measures of the report (lower is better for the first three), with their reference baselines.
MEASURES = ("photometric", "depth_abs_rel_points", "flow_epe_dis")
SSIM_C1, SSIM_C2, ALPHA = 0.01 ** 2, 0.03 ** 2, 0.85


# ------------------------------------------------------------------------------------ per-pixel pieces


def ssim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two HxW float images in [0, 1] (3x3 box window, reflected border), as
    ``losses.photometric.ssim`` computes it for training."""
    def box(a: np.ndarray) -> np.ndarray:
        return cv2.blur(a, (3, 3), borderType=cv2.BORDER_REFLECT_101)

    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = box(x), box(y)
    sx, sy, sxy = box(x * x) - mx * mx, box(y * y) - my * my, box(x * y) - mx * my
    num = (2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)
    den = (mx * mx + my * my + SSIM_C1) * (sx + sy + SSIM_C2)
    return np.clip(num / den, -1.0, 1.0)


def photometric_error(pred: np.ndarray, target: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Per-pixel ``alpha * (1 - SSIM) / 2 + (1 - alpha) * |pred - target|`` of HxW images in [0, 1]."""
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    return alpha * (1.0 - ssim(pred, target)) / 2.0 + (1.0 - alpha) * np.abs(np.asarray(pred, np.float64) - target)


def warp_rigid(src: np.ndarray, depth_t: np.ndarray, K: np.ndarray, T_s_t: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """``src`` (HxW) warped into the target view: each target pixel with depth ``depth_t`` (> 0) is moved by
    ``T_s_t`` (target-camera points -> source camera) and sampled bilinearly in ``src``. Returns (warped,
    valid): valid where the depth is known, the point is in front of the source camera and lands inside it."""
    h, w = depth_t.shape
    K = np.asarray(K, np.float64)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    z = np.asarray(depth_t, np.float64)
    X = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    Xs = X @ T_s_t[:3, :3].T + T_s_t[:3, 3]
    zs = Xs[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        us = K[0, 0] * Xs[..., 0] / zs + K[0, 2]
        vs = K[1, 1] * Xs[..., 1] / zs + K[1, 2]
    valid = (z > 0) & np.isfinite(z) & (zs > 1e-6) & (us >= 0) & (us <= w - 1) & (vs >= 0) & (vs <= h - 1)
    mx = np.where(valid, us, -1).astype(np.float32)
    my = np.where(valid, vs, -1).astype(np.float32)
    warped = cv2.remap(np.asarray(src, np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped.astype(np.float64), valid


def depth_point_agreement(depth: np.ndarray, pixels: np.ndarray, point_depth: np.ndarray) -> Optional[float]:
    """AbsRel of ``depth`` (HxW, 0 = unknown) median-scaled to the sparse ``point_depth`` at ``pixels`` (Nx2,
    x y in ``depth``'s grid); None with fewer than 5 points where the depth is known."""
    h, w = depth.shape
    xi, yi = np.rint(pixels[:, 0]).astype(np.int64), np.rint(pixels[:, 1]).astype(np.int64)
    ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h) & np.isfinite(point_depth) & (point_depth > 0)
    xi, yi, z = xi[ok], yi[ok], point_depth[ok]
    known = depth[yi, xi] > 0
    if int(known.sum()) < 5:
        return None
    gt = np.zeros((h, w), np.float64)
    gt[yi[known], xi[known]] = z[known]  # points on one pixel: the last wins (they agree within the gate)
    pred = np.where(gt > 0, depth, 1.0)  # only the GT pixels are scored
    return float(depth_metrics(pred, gt, median_scale=True, min_depth=1e-9, max_depth=1e30)["abs_rel"])


def flow_agreement(flow: np.ndarray, reference: np.ndarray, valid: Optional[np.ndarray] = None) -> Optional[float]:
    """Mean end-point error (px) between ``flow`` and ``reference`` (HxWx2, the same size) on ``valid``."""
    v = np.ones(reference.shape[:2], bool) if valid is None else np.asarray(valid, bool)
    v = v & np.isfinite(reference).all(axis=2)
    if not v.any():
        return None
    return float(flow_metrics(flow, reference, v)["epe"])


# ----------------------------------------------------------------------------------- reference geometry


@dataclass
class PairGeometry:
    """What the geometry says about one held-out pair (t, t+1), shared by every model scored on it."""

    index: int  # position of frame t in the held-out frames
    image_t: np.ndarray  # HxW float64 [0, 1] at the evaluation size
    image_t1: np.ndarray
    K: np.ndarray  # intrinsics of the evaluation size
    flow_fw: np.ndarray  # DIS t -> t+1
    valid: np.ndarray  # HxW bool: DIS passes its forward-backward check
    status: str  # two-view status on DIS flow
    T_21: Optional[np.ndarray] = None  # 4x4 with unit translation (status ok)
    points_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    points_depth: np.ndarray = field(default_factory=lambda: np.zeros(0))  # unit-translation units


def _eval_frames(frames: Iterable[Frame], max_width: int) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """(gray uint8 image, K, stamp) of each frame undistorted as the node does, shrunk to ``max_width``."""
    out = []
    for f in frames:
        f = undistort_frame(f)
        img, K = to_gray_u8(f.image), np.asarray(f.K, np.float64)
        h, w = img.shape
        if 0 < max_width < w:
            nh = max(1, int(round(h * max_width / w)))
            img = cv2.resize(img, (max_width, nh), interpolation=cv2.INTER_AREA)
            K = np.asarray(scale_intrinsics(K, max_width / w, nh / h), np.float64)
        out.append((img, K, float(f.stamp)))
    return out


def reference_geometry(frames: Sequence[Frame], max_width: int = 0, config: Optional[TwoViewConfig] = None,
                       dis_preset: str = "medium") -> list[PairGeometry]:
    """DIS flow (both directions) and the two-view pose + triangulation of every consecutive pair of
    ``frames`` (undistorted, at their size or ``max_width``); computed once, scored for every model."""
    cfg = config or TwoViewConfig()
    imgs = _eval_frames(frames, max_width)
    pairs = []
    for i in range(len(imgs) - 1):
        (a, K, _), (b, _, _) = imgs[i], imgs[i + 1]
        if a.shape != b.shape:
            continue
        fw, bw = dis_flow(a, b, dis_preset), dis_flow(b, a, dis_preset)
        tv = estimate_two_view(fw, K, flow_bw=bw, config=cfg)
        valid = tv.valid if tv.valid is not None else np.ones(a.shape, bool)
        pair = PairGeometry(i, a / 255.0, b / 255.0, K, fw, valid, tv.status.value)
        if tv.status == TwoViewStatus.OK and len(tv.points):
            T = np.eye(4)
            T[:3, :3], T[:3, 3] = tv.R, tv.t
            pair.T_21, pair.points_pixels, pair.points_depth = T, tv.points_pixels, tv.points[:, 2]
        pairs.append(pair)
    return pairs


# ------------------------------------------------------------------------------------------- scoring


def _mean(xs: Sequence[Optional[float]]) -> Optional[float]:
    finite = [x for x in xs if x is not None and math.isfinite(x)]
    return float(np.mean(finite)) if finite else None


def score_model(pairs: Sequence[PairGeometry], depths: Sequence[Optional[np.ndarray]],
                flows: Optional[Sequence[Optional[np.ndarray]]] = None) -> dict[str, Any]:
    """The measures of one model on ``pairs``: ``depths[i]`` is the model's depth of frame i of the held-out
    frames at the evaluation size (0 = unknown), ``flows[i]`` its flow i -> i+1 at that size (None: no flow)."""
    photo, photo_id, absrel, absrel_const, epe, epe_zero = [], [], [], [], [], []
    for p in pairs:
        d = depths[p.index] if p.index < len(depths) else None
        if p.T_21 is not None and d is not None:
            absrel.append(depth_point_agreement(d, p.points_pixels, p.points_depth))
            absrel_const.append(depth_point_agreement(np.ones_like(d), p.points_pixels, p.points_depth))
            al = align_depth_to_points(d, p.points_pixels, p.points_depth)
            if al is not None:
                T = p.T_21.copy()
                T[:3, 3] *= al.scale  # unit translation -> the depth's units
                warped, valid = warp_rigid(p.image_t1, d, p.K, T)
                if valid.any():
                    photo.append(float(photometric_error(warped, p.image_t)[valid].mean()))
                    photo_id.append(float(photometric_error(p.image_t1, p.image_t)[valid].mean()))
        f = flows[p.index] if flows is not None and p.index < len(flows) else None
        if f is not None:
            epe.append(flow_agreement(f, p.flow_fw, p.valid))
            epe_zero.append(flow_agreement(np.zeros_like(p.flow_fw), p.flow_fw, p.valid))
    return {
        "photometric": _mean(photo), "photometric_identity": _mean(photo_id),
        "depth_abs_rel_points": _mean(absrel), "depth_abs_rel_constant": _mean(absrel_const),
        "flow_epe_dis": _mean(epe), "flow_epe_zero": _mean(epe_zero),
        "pairs_scored": {"photometric": len(photo), "depth": len([x for x in absrel if x is not None]),
                         "flow": len([x for x in epe if x is not None])},
    }


def run_estimator(estimator: Any, frames: Sequence[Frame], max_width: int = 0
                  ) -> tuple[list[np.ndarray], list[Optional[np.ndarray]], dict[str, int]]:
    """Stream ``frames`` through ``estimator`` (after ``reset()``): each frame's depth registered to the
    evaluation size, the network flow of each pair at that size (None without a flow decoder) and the counts
    of the pose statuses."""
    estimator.reset()
    depths, flows, statuses = [], [], Counter[str]()
    imgs = []
    for f in frames:
        f = undistort_frame(f)
        imgs.append(f)
    evals = _eval_frames(imgs, max_width)
    has_flow = True
    for i, (f, (img, K_eval, _)) in enumerate(zip(imgs, evals, strict=True)):
        r = estimator.step(f.image, f.K, f.stamp)
        statuses[str(r.status)] += 1
        depths.append(register_depth(r.depth, r.K, K_eval, img.shape[:2]))
        if i + 1 < len(imgs) and has_flow:
            try:
                fl = estimator.flow_between(f.image, imgs[i + 1].image)
            except ValueError:  # no flow decoder
                has_flow = False
                fl = None
            flows.append(None if fl is None else resize_flow(fl, img.shape[:2]))
    return depths, flows if has_flow else [], dict(statuses)


def label_free_report(estimators: dict[str, Any], frames: Sequence[Frame], max_width: int = 0,
                      config: Optional[TwoViewConfig] = None) -> dict[str, Any]:
    """The measures of every model in ``estimators`` (label -> Estimator, e.g. ``before`` / ``after``) on the
    consecutive pairs of ``frames``: ``{label: measures}`` plus ``geometry`` (pairs, two-view statuses)."""
    if len(frames) < 2:
        raise ValueError(f"label-free report: needs at least 2 frames, got {len(frames)}")
    pairs = reference_geometry(frames, max_width, config)
    out: dict[str, Any] = {"geometry": {"frames": len(frames), "pairs": len(pairs),
                                        "two_view_status": dict(Counter(p.status for p in pairs))}}
    for label, est in estimators.items():
        depths, flows, statuses = run_estimator(est, frames, max_width)
        res = score_model(pairs, depths, flows or None)
        res["pose_status"] = statuses
        out[label] = res
    return out
