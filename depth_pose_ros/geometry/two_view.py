"""Relative camera pose from dense optical flow (the geometry-aided pose of Han et al. 2021 / TrianFlow).

Instead of regressing pose with a network, the pose between two frames is solved from the flow with
classical two-view geometry, which generalises to any scene the flow works on:

1. Score every pixel's correspondence ``p -> p + flow(p)``: ``non_occluded / (eps + fb_inconsistency)``
   (forward-backward check and/or range-map occlusion), zero for matches leaving the image or masked.
2. Keep the best ``top_ratio`` of the pixels and draw ``num_samples`` of them (seeded, deterministic).
3. Essential matrix with known K by RANSAC / USAC (``cv2.findEssentialMat``), pose by ``cv2.recoverPose``
   (cheirality), then a Levenberg-Marquardt refinement of (R, t-direction) minimising the Sampson
   error of many more inlier correspondences than RANSAC scored (robust Huber loss). Dense flow
   supplies thousands of good matches; RANSAC's minimal-sample model does not use them, the LM does.
4. Triangulate the inliers (dropping near-parallel rays, points behind a camera, off-image matches),
   align the optional network depth of frame 1 to the triangulated depths (robust scale), and mark
   the rigid (static-scene) pixels by their Sampson distance to the recovered epipolar geometry.
5. Degenerate motion (tiny flow, too few inliers, no parallax) falls back to PnP-RANSAC from frame 1's
   depth + flow; if that is impossible too, the result is the identity with status ``failed`` and the
   reason in ``message``: this module keeps no memory of earlier pairs, so what the step does then (the
   odometry repeats its last step, ``pipeline.odometry_policy``) is the caller's decision.

Pose convention: ``T_2_1`` maps frame-1 camera points into frame 2 (``X_2 = R X_1 + t``). ``t`` is
unit-norm (or zero when the motion is unknown); ``baseline_in_depth_units`` (when depth is given) is the
translation length in the depth map's units. The result never holds NaN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import cv2
import numpy as np
import torch

from depth_pose_ros.geometry.camera import invert_intrinsics, validate_intrinsics
from depth_pose_ros.geometry.epipolar import fundamental_np, sampson_distance_dense_np, sampson_residual_np
from depth_pose_ros.geometry.masks import fb_consistency_np, occlusion_from_range, range_map
from depth_pose_ros.geometry.scale_align import align_depth_to_points
from depth_pose_ros.geometry.se3_np import axis_angle_to_matrix_np, make_pose_np, project_to_rotation_np
from depth_pose_ros.geometry.triangulation import triangulate
from depth_pose_ros.geometry.two_view_config import (  # noqa: F401  (re-exported)
    OCCLUSION_METHODS,
    RANSAC_METHOD_NAMES,
    TwoViewConfig,
    TwoViewStatus,
)

RANSAC_METHODS = {
    "ransac": cv2.RANSAC,
    "lmeds": cv2.LMEDS,
    "usac_default": cv2.USAC_DEFAULT,
    "usac_magsac": cv2.USAC_MAGSAC,
    "usac_accurate": cv2.USAC_ACCURATE,
}
assert set(RANSAC_METHODS) == set(RANSAC_METHOD_NAMES)


@dataclass
class TwoViewResult:
    """Relative pose ``T_2_1`` (frame-1 camera points -> frame-2 camera) and its by-products."""

    R: np.ndarray  # 3x3 rotation of T_2_1
    t: np.ndarray  # (3,) unit translation direction of T_2_1 (zero when unknown)
    status: TwoViewStatus
    confidence: float  # in [0, 1]; 0 for failed pairs and first frames
    num_inliers: int
    mean_flow: float  # mean flow magnitude (px) over the valid pixels
    baseline_in_depth_units: Optional[float] = None  # translation length in the units of depth1 (None: no depth)
    baseline_inlier_ratio: Optional[float] = None  # share of the points the depth alignment of that length kept
    pixels1: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # Nx2 sampled pixels, image 1
    pixels2: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # Nx2 their matches, image 2
    inliers: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # N: inlier of the final pose
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))  # Mx3 triangulated, frame 1, |t|=1
    points_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))  # Mx2 their image-1 pixels
    message: str = ""  # why a fallback happened
    valid: Optional[np.ndarray] = None  # HxW bool: usable flow (finite, inside image 2, mask, fb-consistent)
    # the rigid mask is dense (a Sampson distance per pixel): computed on first use from the flow and this
    # result's own R, t and valid, most callers never ask
    _rigid_mask: Optional[np.ndarray] = field(default=None, repr=False)
    _rigid_mask_source: Optional[tuple[np.ndarray, np.ndarray, float]] = field(default=None, repr=False)

    @property
    def rigid_mask(self) -> Optional[np.ndarray]:
        """HxW bool: the flow agrees with the camera motion (None when no flow was given)."""
        if self._rigid_mask is None and self._rigid_mask_source is not None:
            flow, K, threshold_px = self._rigid_mask_source
            self._rigid_mask = rigid_mask_from_pose(flow, K, self.R, self.t, threshold_px, self.valid)
            self._rigid_mask_source = None
        return self._rigid_mask

    @rigid_mask.setter
    def rigid_mask(self, mask: Optional[np.ndarray]) -> None:
        self._rigid_mask, self._rigid_mask_source = mask, None

    @property
    def T_2_1(self) -> np.ndarray:
        """4x4 ``T_2_1`` with the unit (unscaled) translation."""
        return make_pose_np(self.R, self.t)

    def T_2_1_with_length(self, length: Optional[float] = None) -> np.ndarray:
        """4x4 ``T_2_1`` with a translation of ``length`` (default: ``self.baseline_in_depth_units`` or 1)."""
        s = length if length is not None else (
            self.baseline_in_depth_units if self.baseline_in_depth_units is not None else 1.0)
        return make_pose_np(self.R, self.t * s)

    @classmethod
    def identity(cls, status: TwoViewStatus = TwoViewStatus.FIRST, message: str = "") -> TwoViewResult:
        return cls(R=np.eye(3), t=np.zeros(3), status=status, confidence=0.0, num_inliers=0,
                   mean_flow=0.0, message=message)


# --------------------------------------------------------------------------------------- helpers


def _check_flow_np(flow: np.ndarray, name: str) -> np.ndarray:
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"two_view: {name} must be HxWx2 (dx, dy), got shape {flow.shape}")
    return flow.astype(np.float32, copy=False)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-12 else np.zeros(3)


def correspondence_scores(flow_fw: np.ndarray, flow_bw: Optional[np.ndarray], mask: Optional[np.ndarray],
                          config: TwoViewConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel reliability score (HxW float32, 0 = unusable) and the validity mask (HxW bool).

    Valid: finite flow, match inside image 2, ``mask`` true, and (with a backward flow) not occluded
    by the configured cue. Score: ``valid / (score_eps + fb inconsistency)``; without a backward flow
    every valid pixel scores 1 (the selection is then a random subset of the valid pixels).
    """
    h, w = flow_fw.shape[:2]
    finite = np.isfinite(flow_fw[..., 0]) & np.isfinite(flow_fw[..., 1])  # not .all(-1): docs/bench_geometry.md
    fw = flow_fw if finite.all() else np.where(finite[..., None], flow_fw, 0.0).astype(np.float32)
    tx = fw[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    ty = fw[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    valid = finite & (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != (h, w):
            raise ValueError(f"two_view: mask must be HxW = {(h, w)}, got shape {m.shape}")
        valid &= m.astype(bool)
    if flow_bw is not None:
        bw = np.nan_to_num(flow_bw, nan=0.0, posinf=0.0, neginf=0.0)
        inconsistency, fb_ok = fb_consistency_np(fw, bw, config.fb_alpha1, config.fb_alpha2)
        if config.occlusion in ("fb", "both"):
            valid &= fb_ok
        if config.occlusion in ("range", "both"):
            bw_t = torch.from_numpy(np.ascontiguousarray(bw)).permute(2, 0, 1)[None]
            valid &= occlusion_from_range(range_map(bw_t), config.range_threshold)[0, 0].numpy() > 0
        score = np.where(valid, 1.0 / (config.score_eps + inconsistency), 0.0)
        return score.astype(np.float32, copy=False), valid
    return valid.astype(np.float32), valid


def select_correspondences(score: np.ndarray, config: TwoViewConfig,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of (sampled, pool): the pool is the top ``top_ratio`` of all pixels by score.

    Ties (e.g. exact flow, where every inconsistency is ~0) are broken randomly so the pool is
    spread over the image rather than taken in raster order.
    """
    flat = score.ravel()
    candidates = np.flatnonzero(flat > 0)
    n_keep = min(candidates.size, max(int(round(config.top_ratio * flat.size)), 1))
    if candidates.size > n_keep:
        jittered = flat[candidates] * (1.0 + 1e-3 * rng.random(candidates.size, dtype=np.float32))
        part = np.argpartition(-jittered, n_keep - 1)[:n_keep]
        pool = candidates[part]  # (argpartition's order is deterministic: no sort needed)
    else:
        pool = candidates
    n_sample = min(config.num_samples, pool.size)
    sample = np.sort(rng.choice(pool, size=n_sample, replace=False)) if n_sample else pool[:0]
    return sample, pool


def _pixels(idx: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = flow.shape[1]
    p1 = np.stack((idx % w, idx // w), axis=-1).astype(np.float64)
    p2 = p1 + flow.reshape(-1, 2)[idx].astype(np.float64)
    return p1, p2


def _tangent_basis(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([1.0, 0.0, 0.0]) if abs(t[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = _unit(np.cross(t, a))
    return e1, np.cross(t, e1)


def _sampson_and_jacobian(p1: np.ndarray, p2: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed Sampson residuals (N) and their analytic derivatives w.r.t. the 9 entries of F (Nx9).

    ``r = e / s`` with ``e = x2^T F x1``, ``s = sqrt(D)``, ``D = |(F x1)_01|^2 + |(F^T x2)_01|^2``.
    With ``a = F x1`` and ``b = F^T x2`` (third entries zeroed), ``de/dF = x2 x1^T`` and
    ``dD/dF = 2 a x1^T + 2 x2 b^T``, so ``dr/dF = ((x2 - c a) x1^T - x2 (c b)^T) / s``, ``c = e / D``.
    """
    n = len(p1)
    x1 = np.empty((n, 3))
    x1[:, :2], x1[:, 2] = p1, 1.0
    x2 = np.empty((n, 3))
    x2[:, :2], x2[:, 2] = p2, 1.0
    a = x1 @ F.T  # F x1
    b = x2 @ F  # F^T x2
    e = np.einsum("ni,ni->n", x2, a)
    a[:, 2] = 0.0
    b[:, 2] = 0.0
    D = np.maximum(np.einsum("ni,ni->n", a, a) + np.einsum("ni,ni->n", b, b), 1e-300)
    s = np.sqrt(D)
    c = (e / D)[:, None]
    u = x2 - c * a
    J = (u[:, :, None] * x1[:, None, :] - x2[:, :, None] * (c * b)[:, None, :]).reshape(n, 9)
    return e / s, J / s[:, None]


def refine_pose(R: np.ndarray, t: np.ndarray, p1: np.ndarray, p2: np.ndarray, K: np.ndarray,
                loss_scale_px: float, max_iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Levenberg-Marquardt refinement of ``T_2_1`` = (R, unit t) on Sampson residuals (IRLS Huber).

    Five parameters: a rotation increment (axis-angle, applied on the left) and two tangent-plane
    coordinates of the translation direction, so the unit-norm constraint holds by construction.
    Huber weights with scale ``loss_scale_px`` keep the remaining outliers from pulling the pose.
    The Jacobian is analytic in F (Nx9) chained with a 9x5 finite-difference Jacobian of the
    parameters -> F map, which costs nothing; this is several times faster than a generic
    least-squares solver differentiating the residuals numerically (docs/bench_geometry.md).
    Returns the input if nothing improves.
    """
    e1, e2 = _tangent_basis(t)
    K_inv = invert_intrinsics(K)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return axis_angle_to_matrix_np(x[:3]) @ R, _unit(t + x[3] * e1 + x[4] * e2)

    def fmat(x: np.ndarray) -> np.ndarray:
        return fundamental_np(K, *unpack(x), K_inv=K_inv)

    def robust_cost(r: np.ndarray) -> float:
        a = np.abs(r)
        return float(np.sum(np.where(a <= loss_scale_px, 0.5 * a * a, loss_scale_px * (a - 0.5 * loss_scale_px))))

    x = np.zeros(5)
    r, J_F = _sampson_and_jacobian(p1, p2, fmat(x))
    cost = robust_cost(r)
    lam = 1e-3
    h = 1e-7
    for _ in range(max_iterations):
        dF = np.stack([(fmat(x + h * np.eye(5)[k]) - fmat(x - h * np.eye(5)[k])).ravel() / (2 * h)
                       for k in range(5)], axis=1)  # 9x5
        J = J_F @ dF
        w = np.minimum(1.0, loss_scale_px / np.maximum(np.abs(r), 1e-300))
        A = J.T @ (w[:, None] * J)
        g = J.T @ (w * r)
        improved = False
        for _ in range(6):
            try:
                delta = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), -g)
            except np.linalg.LinAlgError:
                return R, t
            r_new, J_new = _sampson_and_jacobian(p1, p2, fmat(x + delta))
            cost_new = robust_cost(r_new)
            if np.isfinite(cost_new) and cost_new < cost:
                x, r, J_F = x + delta, r_new, J_new
                rel = (cost - cost_new) / max(cost, 1e-300)
                cost, lam, improved = cost_new, max(lam / 10.0, 1e-9), True
                break
            lam *= 10.0
        # stop when the cost no longer drops, or the step is far below any meaningful precision
        if not improved or rel < 1e-6 or np.linalg.norm(delta) < 1e-10:
            break
    if not np.all(np.isfinite(x)):
        return R, t
    R_new, t_new = unpack(x)
    return project_to_rotation_np(R_new), t_new


def rigid_mask_from_pose(flow_fw: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray,
                         threshold_px: float, valid: Optional[np.ndarray] = None) -> np.ndarray:
    """HxW bool: pixels whose flow is explained by the camera motion ``T_2_1`` = (R, t).

    With translation: Sampson distance to the epipolar geometry < ``threshold_px``. Without
    (``t = 0``) the epipolar constraint is void, and the test is the distance to the rotation-only
    homography ``K R K^-1``.
    """
    h, w = flow_fw.shape[:2]
    flow = np.nan_to_num(np.asarray(flow_fw, dtype=np.float32), nan=1e6, posinf=1e6, neginf=1e6)
    if np.linalg.norm(t) > 1e-12:
        d = sampson_distance_dense_np(flow, fundamental_np(K, R, _unit(t)))
    else:
        H = (K @ R @ invert_intrinsics(K)).astype(np.float32)
        x = np.arange(w, dtype=np.float32)[None, :]
        y = np.arange(h, dtype=np.float32)[:, None]
        qz = H[2, 0] * x + H[2, 1] * y + H[2, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = (H[0, 0] * x + H[0, 1] * y + H[0, 2]) / qz - (x + flow[..., 0])
            dy = (H[1, 0] * x + H[1, 1] * y + H[1, 2]) / qz - (y + flow[..., 1])
        d = np.sqrt(dx * dx + dy * dy)
    rigid = np.nan_to_num(d, nan=np.inf) < threshold_px
    return rigid & valid if valid is not None else rigid


def pose_from_essential(E: np.ndarray, p1: np.ndarray, p2: np.ndarray, K: np.ndarray,
                        max_points: int = 300) -> tuple[np.ndarray, np.ndarray, int]:
    """The (R, unit t) of ``T_2_1`` among E's four decompositions that passes the cheirality test.

    Same decision as ``cv2.recoverPose`` (most points in front of both cameras) but on at most
    ``max_points`` evenly strided inliers, and with the two depths of each point in closed form
    instead of a full triangulation: the vote is unambiguous with a few hundred points and needs
    only the signs. With bearings ``b1``, ``b2`` and ``z2 b2 = z1 R b1 + t``, crossing with ``b2``
    (resp. ``R b1``) gives ``z1 = -(b2 x t).(b2 x R b1) / |b2 x R b1|^2`` and
    ``z2 = (R b1 x t).(R b1 x b2) / |R b1 x b2|^2``.
    Returns ``(R, t, votes)``.
    """
    R1, R2, t_col = cv2.decomposeEssentialMat(E)
    t = np.asarray(t_col).ravel()
    step = max(1, len(p1) // max_points)
    K_inv = invert_intrinsics(K)
    b1 = np.c_[p1[::step], np.ones(len(p1[::step]))] @ K_inv.T
    b2 = np.c_[p2[::step], np.ones(len(p2[::step]))] @ K_inv.T
    best: tuple[np.ndarray, np.ndarray, int] = (np.eye(3), np.zeros(3), -1)
    for R in (np.asarray(R1), np.asarray(R2)):
        rb1 = b1 @ R.T
        c = np.cross(b2, rb1)  # b2 x R b1
        cc = np.maximum(np.einsum("ni,ni->n", c, c), 1e-300)
        for tt in (t, -t):
            z1 = -np.einsum("ni,ni->n", np.cross(b2, tt), c) / cc
            z2 = -np.einsum("ni,ni->n", np.cross(rb1, tt), c) / cc  # (R b1 x b2) = -c
            votes = int(np.sum((z1 > 0) & (z2 > 0)))
            if votes > best[2]:
                best = (R, tt, votes)
    return best


def rotation_only_fit(p1: np.ndarray, p2: np.ndarray, K: np.ndarray, rounds: int = 3) -> tuple[np.ndarray, float]:
    """Best pure rotation ``R`` (``x2 ~ K R K^-1 x1``) of Nx2 correspondences and the median pixel residual
    left after it: the parallax, which is what translation can be triangulated from. A standing or
    purely rotating camera leaves ~0 (flow noise only). Kabsch on bearing vectors, trimmed ``rounds`` times.
    Returns ``(I, 0)`` for fewer than 3 correspondences.
    """
    if len(p1) < 3:
        return np.eye(3), 0.0
    K_inv = invert_intrinsics(K)
    b1 = np.c_[p1, np.ones(len(p1))] @ K_inv.T
    b2 = np.c_[p2, np.ones(len(p2))] @ K_inv.T
    b1 /= np.linalg.norm(b1, axis=1, keepdims=True)
    b2 /= np.linalg.norm(b2, axis=1, keepdims=True)
    keep = np.ones(len(p1), bool)
    R = np.eye(3)
    residual = np.zeros(len(p1))
    for _ in range(rounds):
        H = b1[keep].T @ b2[keep]
        U, _, Vt = np.linalg.svd(H)
        D = np.diag([1.0, 1.0, np.sign(np.linalg.det(Vt.T @ U.T))])
        R = Vt.T @ D @ U.T
        q = (b1 @ R.T) @ K.T
        with np.errstate(divide="ignore", invalid="ignore"):
            residual = np.hypot(q[:, 0] / q[:, 2] - p2[:, 0], q[:, 1] / q[:, 2] - p2[:, 1])
        residual = np.nan_to_num(residual, nan=np.inf)
        keep = residual <= max(3.0 * float(np.median(residual)), 1e-6)
        if keep.sum() < 3:
            break
    return project_to_rotation_np(R), float(np.median(residual))


# ------------------------------------------------------------------------------------ estimator


class TwoViewEstimator:
    """Two-view pose of one frame pair with fixed settings; stateless (every pair is solved on its own),
    so a pair without a usable pose is reported as ``failed``, never filled in from an earlier pair."""

    def __init__(self, config: Optional[TwoViewConfig] = None) -> None:
        self.config = config if config is not None else TwoViewConfig()

    def estimate(self, flow_fw: np.ndarray, K: np.ndarray, flow_bw: Optional[np.ndarray] = None,
                 mask: Optional[np.ndarray] = None, depth1: Optional[np.ndarray] = None) -> TwoViewResult:
        """Relative pose ``T_2_1`` of frame 2 w.r.t. frame 1 from the flow between them.

        Args:
            flow_fw: HxWx2 flow frame 1 -> frame 2 (pixels).
            K: 3x3 intrinsics of both frames.
            flow_bw: optional HxWx2 flow frame 2 -> frame 1 (enables fb scoring / occlusion).
            mask: optional HxW bool, False for pixels to ignore (e.g. known moving objects, sky).
            depth1: optional HxW depth of frame 1 (0 / non-finite = unknown); gives
                ``baseline_in_depth_units`` and enables the PnP fallback.
        """
        cfg = self.config
        flow_fw = _check_flow_np(flow_fw, "flow_fw")
        if flow_bw is not None:
            flow_bw = _check_flow_np(flow_bw, "flow_bw")
            if flow_bw.shape != flow_fw.shape:
                raise ValueError(f"two_view: flow_bw shape {flow_bw.shape} != flow_fw shape {flow_fw.shape}")
        K = validate_intrinsics(K, "two_view: K")
        if depth1 is not None:
            depth1 = np.asarray(depth1, dtype=np.float64)
            if depth1.shape != flow_fw.shape[:2]:
                raise ValueError(f"two_view: depth1 must be HxW = {flow_fw.shape[:2]}, got {depth1.shape}")
        h, w = flow_fw.shape[:2]
        rng = np.random.default_rng(cfg.seed)

        score, valid = correspondence_scores(flow_fw, flow_bw, mask, cfg)
        mean_flow = float(np.hypot(flow_fw[..., 0], flow_fw[..., 1])[valid].mean()) if valid.any() else 0.0
        sample, pool = select_correspondences(score, cfg, rng)
        p1, p2 = _pixels(sample, flow_fw)

        reason = ""
        result: Optional[TwoViewResult] = None
        if mean_flow < cfg.min_mean_flow_px:
            reason = f"mean flow {mean_flow:.2f}px < {cfg.min_mean_flow_px}px"
        elif sample.size < max(cfg.min_inliers, 5):
            reason = f"only {sample.size} valid correspondences"
        else:
            pose, reason = self._essential_pose(p1, p2, K)
            if pose is not None:
                candidates = [(pose, p1, p2, rng)]
                if cfg.restarts > 1:
                    candidates = self._ranked_restarts(candidates[0], pool, flow_fw, K, score)
                for (R, t), c1, c2, c_rng in candidates:  # the best pose that triangulates usably
                    R, t = self._refined(R, t, pool, flow_fw, K, c_rng)
                    result, reason = self._triangulated_result(R, t, c1, c2, K, h, w)
                    if result is not None:
                        break
        if result is not None:
            result.mean_flow = mean_flow
        if result is None and depth1 is not None:
            result, pnp_reason = self._from_pnp(p1, p2, depth1, K)
            reason = f"{reason}; {pnp_reason}" if pnp_reason else reason
            if result is not None:
                result.mean_flow = mean_flow
                result.message = reason
        if result is None:  # no pose: the identity, flagged (the caller decides what the step does)
            result = TwoViewResult(R=np.eye(3), t=np.zeros(3), status=TwoViewStatus.FAILED, confidence=0.0,
                                   num_inliers=0, mean_flow=mean_flow, pixels1=p1, pixels2=p2,
                                   inliers=np.zeros(len(p1), bool), message=reason)

        result.valid = valid
        result._rigid_mask_source = (flow_fw, K, cfg.rigid_threshold_px)
        if result.status == TwoViewStatus.OK and depth1 is not None and len(result.points):
            align = align_depth_to_points(depth1, result.points_pixels, result.points[:, 2],
                                          inlier_rel=cfg.scale_inlier_rel)
            if align is not None and math.isfinite(align.scale):
                result.baseline_in_depth_units, result.baseline_inlier_ratio = align.scale, align.inlier_ratio
        return result

    def _ranked_restarts(self, first: tuple, pool: np.ndarray, flow: np.ndarray, K: np.ndarray,
                         score: np.ndarray) -> list[tuple]:
        """``first`` and the essential-matrix poses from ``restarts - 1`` other seeds, as
        ``((R, t), p1, p2, rng)`` (the start's correspondences and the generator its LM refinement draws
        from), best first by truncated Sampson cost over one common set of usable pixels.

        With little motion, RANSAC can settle on a rotation/translation trade-off that explains the flow
        almost as well as the true pose (the bas-relief ambiguity); the true pose still explains it
        slightly better, which this compares. Only poses, no triangulation: the caller triangulates the
        winner (and the next one only if the winner is unusable).
        """
        cfg = self.config
        eval_rng = np.random.default_rng(cfg.seed + 7919)
        usable = np.flatnonzero(score.ravel() > 0)  # every usable pixel, not only the best-scored pool
        idx = eval_rng.choice(usable, size=min(10000, usable.size), replace=False) if usable.size else usable
        q1, q2 = _pixels(idx, flow)
        K_inv = invert_intrinsics(K)

        def cost(R: np.ndarray, t: np.ndarray) -> float:
            res = np.abs(sampson_residual_np(q1, q2, fundamental_np(K, R, t, K_inv=K_inv)))
            return float(np.mean(np.minimum(res, cfg.ransac_threshold_px)))

        ranked = [(cost(*first[0]), 0, first)]
        for k in range(1, cfg.restarts):
            rng = np.random.default_rng(cfg.seed + k)
            sample, _ = select_correspondences(score, cfg, rng)
            r1, r2 = _pixels(sample, flow)
            pose, _ = self._essential_pose(r1, r2, K)
            if pose is not None:
                ranked.append((cost(*pose), k, (pose, r1, r2, rng)))
        return [cand for _, _, cand in sorted(ranked, key=lambda item: item[:2])]  # ties: the first start

    # -- essential-matrix path ------------------------------------------------------------------

    def _essential_pose(self, p1: np.ndarray, p2: np.ndarray, K: np.ndarray
                        ) -> tuple[Optional[tuple[np.ndarray, np.ndarray]], str]:
        """(R, unit t) by E-RANSAC and the cheirality vote, or (None, why)."""
        cfg = self.config
        try:
            E, ransac_mask = cv2.findEssentialMat(p1, p2, K, RANSAC_METHODS[cfg.ransac_method], cfg.confidence,
                                                  cfg.ransac_threshold_px, cfg.max_iters)
        except cv2.error as exc:
            return None, f"findEssentialMat failed: {exc.msg if hasattr(exc, 'msg') else exc}"
        if E is None or E.shape[0] < 3 or not np.all(np.isfinite(E[:3])):
            return None, "no essential matrix found"
        E = E[:3]
        ransac_mask = ransac_mask.ravel().astype(np.uint8) if ransac_mask is not None else None
        n_ransac = int(ransac_mask.sum()) if ransac_mask is not None else 0
        if n_ransac < cfg.min_inliers:
            return None, f"{n_ransac} essential-matrix inliers < {cfg.min_inliers}"
        sel = ransac_mask.astype(bool)
        R, t, _ = pose_from_essential(E, p1[sel], p2[sel], K)
        R, t = project_to_rotation_np(R), _unit(t)
        if not (np.all(np.isfinite(R)) and np.linalg.norm(t) > 0.5):
            return None, "recoverPose returned an invalid pose"
        return (R, t), ""

    def _refined(self, R: np.ndarray, t: np.ndarray, pool: np.ndarray, flow: np.ndarray, K: np.ndarray,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """The LM refinement of a pose on up to ``refine_max_points`` of the pool (the pose itself when
        refinement is off or too few points agree with it)."""
        cfg = self.config
        if not cfg.refine:
            return R, t
        n_ref = min(cfg.refine_max_points, pool.size)
        ref_idx = rng.choice(pool, size=n_ref, replace=False) if pool.size > n_ref else pool
        q1, q2 = _pixels(ref_idx, flow)
        res0 = np.abs(sampson_residual_np(q1, q2, fundamental_np(K, R, t)))
        keep = res0 < 2.0 * cfg.ransac_threshold_px
        if int(keep.sum()) >= cfg.min_inliers:
            R, t = refine_pose(R, t, q1[keep], q2[keep], K, cfg.refine_loss_scale_px)
        return R, t

    def _triangulated_result(self, R: np.ndarray, t: np.ndarray, p1: np.ndarray, p2: np.ndarray, K: np.ndarray,
                             h: int, w: int) -> tuple[Optional[TwoViewResult], str]:
        """Inliers and triangulation of a pose, with the checks that make it usable, or (None, why)."""
        cfg = self.config
        inliers = np.abs(sampson_residual_np(p1, p2, fundamental_np(K, R, t))) < cfg.ransac_threshold_px
        tri = triangulate(p1[inliers], p2[inliers], K, R, t,
                          min_parallax_deg=cfg.min_triangulation_angle_deg,
                          max_reproj_px=cfg.max_reprojection_px, image_size=(h, w))
        # Cheirality vote after refinement: the pose must put most inliers in front of both cameras.
        in_front = np.mean((tri.depth1 > 0) & (tri.depth2 > 0)) if len(tri.depth1) else 0.0
        num_inliers = int(inliers.sum())
        if num_inliers < cfg.min_inliers:
            return None, f"{num_inliers} inliers after refinement < {cfg.min_inliers}"
        if in_front < 0.5:
            return None, f"only {in_front:.0%} of the inliers triangulate in front of both cameras"
        if tri.num_valid < cfg.min_triangulated:
            return None, (f"{tri.num_valid} triangulated points with parallax >= "
                          f"{cfg.min_triangulation_angle_deg} deg < {cfg.min_triangulated}")
        inlier_ratio = num_inliers / max(len(p1), 1)
        confidence = float(np.clip(inlier_ratio * min(1.0, num_inliers / (10.0 * cfg.min_inliers)), 0.0, 1.0))
        pix_in = p1[inliers]
        return TwoViewResult(R=R, t=t, status=TwoViewStatus.OK, confidence=confidence, num_inliers=num_inliers,
                             mean_flow=0.0, pixels1=p1, pixels2=p2, inliers=inliers,
                             points=tri.points[tri.valid], points_pixels=pix_in[tri.valid]), ""

    # -- PnP fallback ------------------------------------------------------------------------------

    def _from_pnp(self, p1: np.ndarray, p2: np.ndarray, depth1: np.ndarray,
                  K: np.ndarray) -> tuple[Optional[TwoViewResult], str]:
        """``T_2_1`` from 3D points of frame 1 (depth1 at p1) and their flow matches p2 in image 2."""
        cfg = self.config
        if len(p1) == 0:
            return None, "PnP: no correspondences"
        z = depth1[p1[:, 1].astype(np.int64), p1[:, 0].astype(np.int64)]
        ok = np.isfinite(z) & (z > 0)
        if int(ok.sum()) < max(cfg.min_inliers, 6):
            return None, f"PnP: only {int(ok.sum())} correspondences with valid depth"
        K_inv = invert_intrinsics(K)
        obj = (np.c_[p1[ok], np.ones(int(ok.sum()))] @ K_inv.T) * z[ok, None]
        img = p2[ok]
        try:
            found, rvec, tvec, inl = cv2.solvePnPRansac(
                obj, img, K, None, iterationsCount=cfg.pnp_iterations, reprojectionError=cfg.pnp_threshold_px,
                confidence=cfg.confidence, flags=cv2.SOLVEPNP_EPNP)
        except cv2.error as exc:
            return None, f"PnP failed: {exc}"
        if not found or inl is None or len(inl) < cfg.min_inliers:
            return None, f"PnP: {0 if inl is None else len(inl)} inliers < {cfg.min_inliers}"
        inl = inl.ravel()
        rvec, tvec = cv2.solvePnPRefineLM(obj[inl], img[inl], K, None, rvec, tvec)
        if not (np.all(np.isfinite(rvec)) and np.all(np.isfinite(tvec))):
            return None, "PnP: non-finite pose"
        R = project_to_rotation_np(cv2.Rodrigues(rvec)[0])
        t_full = tvec.ravel().astype(np.float64)
        length = float(np.linalg.norm(t_full))
        inliers = np.zeros(len(p1), bool)
        inliers[np.flatnonzero(ok)[inl]] = True
        confidence = float(np.clip(0.5 * len(inl) / len(p1), 0.0, 1.0))
        return TwoViewResult(R=R, t=_unit(t_full), status=TwoViewStatus.PNP_FALLBACK, confidence=confidence,
                             num_inliers=int(len(inl)), mean_flow=0.0, baseline_in_depth_units=length,
                             pixels1=p1, pixels2=p2, inliers=inliers), ""


def estimate_two_view(flow_fw: np.ndarray, K: np.ndarray, flow_bw: Optional[np.ndarray] = None,
                      mask: Optional[np.ndarray] = None, depth1: Optional[np.ndarray] = None,
                      config: Optional[TwoViewConfig] = None) -> TwoViewResult:
    """One-shot :meth:`TwoViewEstimator.estimate` (a pair without a usable pose: identity, status ``failed``)."""
    return TwoViewEstimator(config).estimate(flow_fw, K, flow_bw=flow_bw, mask=mask, depth1=depth1)
