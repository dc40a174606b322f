"""vid2depth 3D point-cloud alignment loss (Mahjourian et al., CVPR 2018; papers/mahjourian2018_vid2depth.md).

The point cloud of frame t (from its predicted depth) is moved into frame s with the predicted
ego-motion T_s_t and aligned by ICP to the point cloud of frame s. If depths and ego-motion agree,
ICP has nothing left to do. What it does find is penalised:

    L_3D = |T' - I|_1 + |r|_1

with T' the residual rigid transform ICP finds (T' T_s_t Q_t ~ Q_s) and r the residual point
distances after applying it. Gradients flow *approximately*, as in the paper: ICP's iterations
(correspondence search and incremental transforms) run without gradient, and one final Gauss-Newton
step on the fixed correspondences (and fixed normals) is taken with gradient. That step's transform is a
smooth function of the two clouds, so |T' - I| pushes the ego-motion (through the moved cloud) and both
depths towards agreement, and |r| pushes the depths of the matched points together.

Validity masks (the paper's "principled masks"): a pixel of t whose point projects outside image s (or
behind camera s) has no counterpart and is ignored; likewise for s seen from t.

Two correspondence rules are offered:
* ``"projective"`` (default): project each moved point into image s and take s's point at that pixel
  (bilinear). Dense, O(HW), the standard choice for depth-map ICP (KinectFusion). Each step minimises
  the *point-to-plane* distance (normals of s's depth map): with projective pairs the point-to-point
  error is directed along the viewing ray, so on surfaces seen at grazing angles (road, walls) a
  small offset becomes a long, wrongly oriented residual and point-to-point ICP drifts away even
  from a small perturbation, while point-to-plane recovers a large motion from a zero guess
  (docs/bench_losses.md, "Synthetic corridor").
* ``"nearest"``: brute-force nearest neighbour between random subsamples of both clouds with
  point-to-point steps (the paper's rule); O(N M) so it runs on ``num_points`` samples. Point-to-point
  ICP slides along planar surfaces, so it only corrects small residual motions (docs/bench_losses.md,
  "Synthetic corridor"): use it once the pose is roughly right.
In both, the reported residual r is point-to-point (paper), and pairs farther apart than
``outlier_factor`` times the median pair distance (depth edges, occlusions) are dropped each round.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional, overload

import torch
import torch.nn.functional as F

from depth_pose_ros.geometry.camera import backproject, invert_intrinsics, pixel_grid, project
from depth_pose_ros.geometry.se3 import compose, invert, pose_vec_to_mat, transform_points
from depth_pose_ros.geometry.warp import warp_by_flow
from depth_pose_ros.losses.reduction import LossOut, check_bchw, check_intrinsics, check_pose, check_same_hw

_DAMPING = 1e-6
_PLANE_DAMPING = 1e-4
DEFAULT_OUTLIER_FACTOR = 3.0
_OUTLIER_FLOOR_REL = 0.01


@dataclass
class IcpResult:
    """Output of :func:`icp` / :func:`icp_depth_maps`.

    ``transform`` is Bx4x4 ``T_target_source'``: maps the (already moved) source points onto the target
    cloud. ``residual`` is BxNx3 ``matched_target - transform * source`` and ``valid`` BxN float marks
    the points that had a valid correspondence in the last association.
    """

    transform: torch.Tensor
    residual: torch.Tensor
    valid: torch.Tensor


def rigid_step(
    a: torch.Tensor, b: torch.Tensor, weights: torch.Tensor, normals: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """One Gauss-Newton step of weighted rigid alignment: Bx4x4 ``T`` with ``T a ~ b``.

    Point-to-point (``normals`` None): minimises sum_i w_i |a_i + w x a_i + v - b_i|^2 over the small
    motion (w, v), linearised about the identity, on clouds centred at a's weighted centroid. With
    J_i = [-[a_i]_x, I] and sum w_i a_i = 0 the 6x6 normal equations split into
        (sum w_i (|a_i|^2 I - a_i a_i^T)) w = sum w_i a_i x b_i,      v = sum w_i b_i / sum w_i,
    so only 3x3 moments are needed (O(N) memory). Exact in one step for a pure translation.

    Point-to-plane (``normals`` BxNx3, unit normals at b): minimises sum_i w_i (n_i . (a_i + w x a_i + v
    - b_i))^2, J_i = [a_i x n_i, n_i]; a damped 6x6 solve. Directions the scene does not constrain
    (sliding along a single plane) stay at zero thanks to the damping.

    The small motion becomes a rotation by Rodrigues' formula and the centring is undone. Differentiable
    in ``a`` and ``b`` (linear solves, no SVD whose gradient breaks on symmetric clouds). Accumulated in
    float64: moments of clouds tens of metres away lose precision in float32.

    Args:
        a, b: BxNx3 corresponding points.
        weights: BxN non-negative weights (0 = ignore the pair).
        normals: optional BxNx3 surface normals at ``b`` (point-to-plane).
    """
    if a.shape != b.shape or a.dim() != 3 or a.shape[-1] != 3:
        raise ValueError(f"rigid_step: a and b must both be BxNx3, got {tuple(a.shape)} and {tuple(b.shape)}")
    if weights.shape != a.shape[:2]:
        raise ValueError(f"rigid_step: weights must be BxN {tuple(a.shape[:2])}, got {tuple(weights.shape)}")
    if normals is not None and normals.shape != a.shape:
        raise ValueError(f"rigid_step: normals must be BxNx3 like a, got {tuple(normals.shape)}")
    dtype = a.dtype
    a64, b64, w = a.double(), b.double(), weights.double().unsqueeze(-1)
    wsum = w.sum(dim=1).clamp_min(1e-12)  # Bx1
    centre = (w * a64).sum(dim=1) / wsum  # Bx3
    ac, bc = a64 - centre[:, None], b64 - centre[:, None]
    if normals is None:
        eye3 = torch.eye(3, dtype=torch.float64, device=a.device)
        second = torch.einsum("bn,bni,bnj->bij", w[..., 0], ac, ac)  # sum w a a^T
        A = second.diagonal(dim1=-2, dim2=-1).sum(-1)[:, None, None] * eye3 - second
        rhs = (w * torch.cross(ac, bc, dim=-1)).sum(dim=1)  # sum w a x b
        damp = _DAMPING * A.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-9)[:, None, None]
        omega = torch.linalg.solve(A + damp * eye3, rhs.unsqueeze(-1)).squeeze(-1)
        v = (w * bc).sum(dim=1) / wsum
    else:
        n = normals.double()
        jac = torch.cat((torch.cross(ac, n, dim=-1), n), dim=-1)  # BxNx6
        err = (n * (ac - bc)).sum(dim=-1, keepdim=True)  # BxNx1
        hess = torch.einsum("bn,bni,bnj->bij", w[..., 0], jac, jac)
        grad = (w * err * jac).sum(dim=1)  # Bx6
        eye6 = torch.eye(6, dtype=torch.float64, device=a.device)
        damp = _PLANE_DAMPING * hess.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-9)[:, None, None]
        delta = -torch.linalg.solve(hess + damp * eye6, grad.unsqueeze(-1)).squeeze(-1)
        omega, v = delta[:, :3], delta[:, 3:]
    step_c = pose_vec_to_mat(omega, v)
    # Undo the centring: T = Tr(c) * step_c * Tr(-c).
    shift = torch.eye(4, dtype=torch.float64, device=a.device).repeat(a.shape[0], 1, 1)
    shift[:, :3, 3] = centre
    return compose(compose(shift, step_c), invert(shift)).to(dtype)


def depth_normals(points: torch.Tensor) -> torch.Tensor:
    """Unit surface normals Bx3xHxW of an organised point map Bx3xHxW (central differences, border
    replicated). The sign is arbitrary (point-to-plane errors are squared); degenerate pixels get 0."""
    padded = F.pad(points, (1, 1, 1, 1), mode="replicate")
    du = padded[:, :, 1:-1, 2:] - padded[:, :, 1:-1, :-2]
    dv = padded[:, :, 2:, 1:-1] - padded[:, :, :-2, 1:-1]
    n = torch.cross(du, dv, dim=1)
    return n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _masked_median(x: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Median over the BxN entries where ``ok`` is set -> Bx1 (inf where nothing is set)."""
    masked = torch.where(ok > 0, x, torch.full_like(x, float("nan")))
    return torch.nan_to_num(torch.nanmedian(masked, dim=1, keepdim=True).values, nan=float("inf"))


def _reject_outliers(
    dist: torch.Tensor,
    ok: torch.Tensor,
    points: torch.Tensor,
    factor: Optional[float],
    max_distance: Optional[float],
) -> torch.Tensor:
    """Drop pairs (BxN) farther than ``max_distance`` or than ``factor`` x the item's median distance.

    The relative threshold never goes below 1% of the median range of ``points`` (BxNx3): once the
    clouds are aligned the median distance is ~0 and would otherwise reject good pairs at random.
    """
    if max_distance is not None:
        ok = ok * (dist <= max_distance).to(ok.dtype)
    if factor is not None:
        floor = _OUTLIER_FLOOR_REL * _masked_median(points.norm(dim=-1), ok)
        limit = torch.maximum(factor * _masked_median(dist, ok), floor)
        ok = ok * (dist <= limit).to(ok.dtype)
    return ok


def _nearest(
    moved: torch.Tensor, target: torch.Tensor, target_valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index (BxN) and distance (BxN) of each moved point's nearest *valid* target point."""
    dist = torch.cdist(moved, target)  # BxNxM
    dist = dist.masked_fill(target_valid.unsqueeze(1) < 0.5, float("inf"))
    d, idx = dist.min(dim=-1)
    return idx, d


def _gather(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return torch.gather(points, 1, idx.unsqueeze(-1).expand(-1, -1, 3))


def icp(
    source: torch.Tensor,
    target: torch.Tensor,
    source_valid: Optional[torch.Tensor] = None,
    target_valid: Optional[torch.Tensor] = None,
    iterations: int = 5,
    max_distance: Optional[float] = None,
    outlier_factor: Optional[float] = DEFAULT_OUTLIER_FACTOR,
) -> IcpResult:
    """Point-to-point ICP with brute-force nearest neighbours: ``T`` (Bx4x4) with ``T source ~ target``.

    Args:
        source: BxNx3 points; target: BxMx3 points (same frame, e.g. camera s).
        source_valid, target_valid: BxN / BxM float masks (1 = usable point).
        iterations: association + Gauss-Newton rounds run without gradient; one more differentiable
            step on the final correspondences follows (see the module docstring).
        max_distance: pairs farther apart than this (metres) are dropped (None = no absolute limit).
        outlier_factor: pairs farther than this times the median pair distance are dropped (None = keep).

    Returns:
        :class:`IcpResult` with the residual transform, residuals and correspondence validity.
    """
    if source.dim() != 3 or source.shape[-1] != 3:
        raise ValueError(f"icp: source must be BxNx3, got {tuple(source.shape)}")
    if target.dim() != 3 or target.shape[-1] != 3 or target.shape[0] != source.shape[0]:
        raise ValueError(f"icp: target must be BxMx3 with the batch of source, got {tuple(target.shape)}")
    if iterations < 0:
        raise ValueError(f"icp: iterations must be >= 0, got {iterations}")
    bsz = source.shape[0]
    sv = source.new_ones(source.shape[:2]) if source_valid is None else source_valid.to(source.dtype)
    tv = target.new_ones(target.shape[:2]) if target_valid is None else target_valid.to(target.dtype)
    sv, tv = sv.detach(), tv.detach()

    def associate(T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        moved = transform_points(T, source.detach().transpose(1, 2)).transpose(1, 2)
        idx, d = _nearest(moved, target.detach(), tv)
        ok = sv * torch.isfinite(d).to(sv.dtype)
        d = torch.nan_to_num(d, posinf=0.0)
        return idx, _reject_outliers(d, ok, moved, outlier_factor, max_distance)

    T_acc = torch.eye(4, dtype=source.dtype, device=source.device).repeat(bsz, 1, 1)
    with torch.no_grad():
        for _ in range(iterations):
            idx, ok = associate(T_acc)
            moved = transform_points(T_acc, source.transpose(1, 2)).transpose(1, 2)
            T_acc = compose(rigid_step(moved, _gather(target, idx), ok), T_acc)
        idx, ok = associate(T_acc)
    moved = transform_points(T_acc, source.transpose(1, 2)).transpose(1, 2)
    matched = _gather(target, idx)
    T_step = rigid_step(moved, matched, ok)
    transform = compose(T_step, T_acc)
    residual = matched - transform_points(T_step, moved.transpose(1, 2)).transpose(1, 2)
    return IcpResult(transform=transform, residual=residual * ok.unsqueeze(-1), valid=ok)


def icp_depth_maps(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    valid_t: Optional[torch.Tensor] = None,
    valid_s: Optional[torch.Tensor] = None,
    iterations: int = 5,
    max_distance: Optional[float] = None,
    outlier_factor: Optional[float] = DEFAULT_OUTLIER_FACTOR,
) -> IcpResult:
    """Projective-association, point-to-plane ICP between the clouds of two depth maps.

    The cloud of t is moved by ``T_s_t`` (Bx4x4 ``T_source_target``: maps target-camera points into the
    source camera s) and aligned to the cloud of s. ``IcpResult.transform`` is the residual ``T'`` (so
    ``T' T_s_t`` is ICP's refined ``T_s_t``); ``residual`` (point-to-point, Bx(HW)x3) and ``valid``
    (Bx(HW)) are in the pixel order of t. Args as in :func:`icp`; K is Bx3x3 or 3x3.
    """
    check_bchw("depth_t", depth_t, channels=1)
    check_same_hw(("depth_t", depth_t), ("depth_s", depth_s), ("valid_t", valid_t), ("valid_s", valid_s))
    b, _, h, w = depth_t.shape
    check_pose("T_s_t", T_s_t, b)
    K = check_intrinsics("K", K, b).to(depth_t.dtype)
    K_inv = invert_intrinsics(K)
    moved0 = transform_points(T_s_t.to(depth_t.dtype), backproject(depth_t, K_inv))
    points_s = backproject(depth_s, K_inv)
    vs = torch.ones_like(depth_s) if valid_s is None else valid_s.to(depth_s.dtype)
    vt = torch.ones_like(depth_t) if valid_t is None else valid_t.to(depth_t.dtype)
    vs = (vs * (depth_s > 0).to(vs.dtype)).detach()
    vt = (vt * (depth_t > 0).to(vt.dtype)).detach()
    grid = pixel_grid(h, w, device=depth_t.device, dtype=depth_t.dtype)
    with torch.no_grad():
        lookup = torch.cat((points_s, depth_normals(points_s), vs), dim=1)  # what association samples

    def flat(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(b, x.shape[1], h * w).transpose(1, 2)  # BxHWxC

    def associate(moved: torch.Tensor, table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample ``table`` at the projections of ``moved``; validity after outlier rejection (BxHW)."""
        pix, z = project(moved, K)
        sampled, inside = warp_by_flow(table, pix.detach() - grid)
        # A bilinear sample touching an invalid s pixel mixes in a bad point: require all four valid.
        ok = inside * (z > 1e-6).to(vt.dtype) * (sampled[:, -1:] > 0.999).to(vt.dtype) * vt
        dist = (sampled[:, :3] - moved).norm(dim=1, keepdim=True)
        ok = _reject_outliers(
            flat(dist.detach())[..., 0], flat(ok.detach())[..., 0], flat(moved.detach()), outlier_factor,
            max_distance,
        )
        return sampled, ok

    T_acc = torch.eye(4, dtype=depth_t.dtype, device=depth_t.device).repeat(b, 1, 1)
    with torch.no_grad():
        for _ in range(iterations):
            moved = transform_points(T_acc, moved0)
            sampled, ok = associate(moved, lookup)
            normals = F.normalize(flat(sampled[:, 3:6]), dim=-1)
            T_acc = compose(rigid_step(flat(moved), flat(sampled[:, :3]), ok, normals), T_acc)
        moved = transform_points(T_acc, moved0)
        sampled_ng, ok = associate(moved, lookup)
        normals = F.normalize(flat(sampled_ng[:, 3:6]), dim=-1)
    # Final differentiable step: pixels, normals and weights fixed; both clouds carry gradients.
    moved = transform_points(T_acc, moved0)
    pix, _ = project(moved.detach(), K)
    matched, _ = warp_by_flow(points_s, pix - grid)
    a, bb = flat(moved), flat(matched)
    T_step = rigid_step(a, bb, ok, normals)
    residual = bb - transform_points(T_step, a.transpose(1, 2)).transpose(1, 2)
    return IcpResult(transform=compose(T_step, T_acc), residual=residual * ok.unsqueeze(-1), valid=ok)


def view_overlap_mask(depth: torch.Tensor, T_other_this: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """vid2depth's principled mask, Bx1xHxW: 1 where this view's point projects inside the other image.

    ``T_other_this`` (Bx4x4) maps this camera's points into the other camera. Points landing outside the
    other image or behind its camera have no counterpart there, so no loss should be asked of them.
    """
    h, w = depth.shape[-2:]
    K = K.to(depth.dtype)
    points = transform_points(T_other_this.to(depth.dtype), backproject(depth, invert_intrinsics(K)))
    pix, z = project(points, K)
    x, y = pix[:, 0:1], pix[:, 1:2]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1) & (z > 1e-6) & (depth > 0)
    return inside.to(depth.dtype)


def _subsample(
    points: torch.Tensor, valid: torch.Tensor, n: int, generator: Optional[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random n of the HW points per batch item, valid ones first: (BxNx3 points, BxN validity, BxN idx)."""
    b, _, h, w = points.shape
    flat_p = points.reshape(b, 3, h * w).transpose(1, 2)
    flat_v = valid.reshape(b, h * w)
    n = min(n, h * w)
    score = torch.rand(b, h * w, generator=generator, device=points.device) + 2.0 * flat_v.detach()
    idx = score.topk(n, dim=1).indices
    return _gather(flat_p, idx), torch.gather(flat_v, 1, idx), idx


@overload
def icp_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    valid_t: Optional[torch.Tensor] = ...,
    valid_s: Optional[torch.Tensor] = ...,
    association: str = ...,
    iterations: int = ...,
    num_points: int = ...,
    max_distance: Optional[float] = ...,
    outlier_factor: Optional[float] = ...,
    transform_weight: float = ...,
    residual_weight: float = ...,
    generator: Optional[torch.Generator] = ...,
    return_map: Literal[False] = ...,
) -> torch.Tensor: ...


@overload
def icp_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    valid_t: Optional[torch.Tensor] = ...,
    valid_s: Optional[torch.Tensor] = ...,
    association: str = ...,
    iterations: int = ...,
    num_points: int = ...,
    max_distance: Optional[float] = ...,
    outlier_factor: Optional[float] = ...,
    transform_weight: float = ...,
    residual_weight: float = ...,
    generator: Optional[torch.Generator] = ...,
    return_map: Literal[True] = ...,
) -> tuple[torch.Tensor, torch.Tensor]: ...


@overload
def icp_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    valid_t: Optional[torch.Tensor] = ...,
    valid_s: Optional[torch.Tensor] = ...,
    association: str = ...,
    iterations: int = ...,
    num_points: int = ...,
    max_distance: Optional[float] = ...,
    outlier_factor: Optional[float] = ...,
    transform_weight: float = ...,
    residual_weight: float = ...,
    generator: Optional[torch.Generator] = ...,
    return_map: bool = ...,
) -> LossOut: ...


def icp_loss(
    depth_t: torch.Tensor,
    depth_s: torch.Tensor,
    T_s_t: torch.Tensor,
    K: torch.Tensor,
    valid_t: Optional[torch.Tensor] = None,
    valid_s: Optional[torch.Tensor] = None,
    association: str = "projective",
    iterations: int = 5,
    num_points: int = 1024,
    max_distance: Optional[float] = None,
    outlier_factor: Optional[float] = DEFAULT_OUTLIER_FACTOR,
    transform_weight: float = 1.0,
    residual_weight: float = 1.0,
    generator: Optional[torch.Generator] = None,
    return_map: bool = False,
) -> LossOut:
    """vid2depth 3D loss: L = w_T mean|T' - I|_1 + w_r mean_{valid}|r|_1 after ICP of t's cloud onto s's.

    Args:
        depth_t, depth_s: Bx1xHxW predicted depths of frames t and s (metres).
        T_s_t: Bx4x4 ``T_source_target``, the predicted ego-motion: maps points of camera t into camera s.
        K: Bx3x3 intrinsics (both frames).
        valid_t, valid_s: optional Bx1xHxW masks; combined with the principled overlap masks.
        association: ``"projective"`` or ``"nearest"`` (see module docstring).
        iterations: ICP rounds without gradient before the final differentiable step.
        num_points: sample size per cloud for ``"nearest"``.
        max_distance: pairs farther apart than this (metres) are dropped (None = no absolute limit).
        outlier_factor: pairs farther than this times the median pair distance are dropped (None = keep).
        transform_weight, residual_weight: weights of the two terms.
        generator: RNG for the ``"nearest"`` subsample (on the tensors' device).
        return_map: also return a Bx1xHxW map of |r|_1 at the pixels of t that were used.

    |T' - I|_1 is averaged over the 12 entries of the top 3x4 block and the batch; |r|_1 sums the three
    coordinates and averages over valid correspondences. Identical clouds with the true motion give 0.
    """
    check_bchw("depth_t", depth_t, channels=1)
    check_bchw("depth_s", depth_s, channels=1)
    check_same_hw(("depth_t", depth_t), ("depth_s", depth_s), ("valid_t", valid_t), ("valid_s", valid_s))
    b, _, h, w = depth_t.shape
    check_pose("T_s_t", T_s_t, b)
    K = check_intrinsics("K", K, b).to(depth_t.dtype)
    T_s_t = T_s_t.to(depth_t.dtype)
    overlap_t = view_overlap_mask(depth_t.detach(), T_s_t.detach(), K)
    overlap_s = view_overlap_mask(depth_s.detach(), invert(T_s_t.detach()), K)
    vt = overlap_t if valid_t is None else overlap_t * valid_t.to(depth_t.dtype)
    vs = overlap_s if valid_s is None else overlap_s * valid_s.to(depth_s.dtype)

    if association == "projective":
        result = icp_depth_maps(depth_t, depth_s, T_s_t, K, vt, vs, iterations, max_distance, outlier_factor)
        pixel_index = None
    elif association == "nearest":
        K_inv = invert_intrinsics(K)
        moved = transform_points(T_s_t, backproject(depth_t, K_inv))
        src, src_v, pixel_index = _subsample(moved, vt, num_points, generator)
        tgt, tgt_v, _ = _subsample(backproject(depth_s, K_inv), vs, num_points, generator)
        result = icp(src, tgt, src_v, tgt_v, iterations, max_distance, outlier_factor)
    else:
        raise ValueError(f"association: must be 'projective' or 'nearest', got {association!r}")

    eye = torch.eye(4, dtype=depth_t.dtype, device=depth_t.device)
    transform_term = (result.transform - eye)[:, :3, :].abs().mean()
    r_abs = result.residual.abs().sum(dim=-1)  # BxN
    residual_term = r_abs.sum() / result.valid.sum().clamp_min(1e-7)
    loss = transform_weight * transform_term + residual_weight * residual_term
    if not return_map:
        return loss
    per_pixel = depth_t.new_zeros(b, h * w)
    if pixel_index is None:
        per_pixel = r_abs
    else:
        per_pixel = per_pixel.scatter(1, pixel_index, r_abs)
    return loss, per_pixel.reshape(b, 1, h, w).detach()
