"""Ego-motion / trajectory metrics used by the self-supervised depth-and-pose literature.

All functions take frame-aligned sequences of 4x4 camera-to-world poses ``T_world_cam`` (each maps
points of that camera's optical frame into the world frame, as KITTI / TUM ground truth files do).
Relative motion between frames i and j is ``T_ci_cj = inv(T_world_ci) @ T_world_cj`` (maps points of
camera j into camera i); every "relative" metric below compares these, so the arbitrary world frame
of an estimate never matters, only (for monocular estimates) its scale.

Metrics (see ``pose_summary`` for the keys):
* per-frame rotation error and translation-direction error of consecutive relative poses, with the
  definitions of ``geometry.pose_error`` shared by the VO and two-view code (scale-free, so they
  judge a monocular estimate without any alignment);
* ATE over 5-frame snippets with a least-squares scale (SfMLearner protocol, comparable with papers);
* full-trajectory ATE after Sim(3) Umeyama alignment, and ATE with "GT scale" (see ``ate_gt_scale``);
* RPE (translation, rotation) at a frame offset ``delta``;
* KITTI odometry t_err (%) / r_err (deg/100 m), the devkit definition (own implementation).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from depth_pose_ros.data.trajectory_io import associate, read_trajectory
from depth_pose_ros.eval.align import Sim3, least_squares_scale, umeyama
from depth_pose_ros.geometry.pose_error import relative_pose, relative_pose_errors, rotation_error_deg
from depth_pose_ros.geometry.se3_np import invert_np

KITTI_SEGMENTS_M: tuple[float, ...] = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0)
# On a path too short for the 100 m segment, segments are these fractions of the GT path length.
SHORT_PATH_SEGMENT_FRACTIONS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
KITTI_FIRST_FRAME_STEP = 10  # devkit: a segment starts at every 10th frame (1 s at 10 Hz)
_TINY = 1e-12


# ----------------------------------------------------------------------------------------------
# small pose helpers (angles and relative poses come from geometry/pose_error.py, so "rotation
# error per frame" means the same everywhere in the project)
# ----------------------------------------------------------------------------------------------
def as_pose_array(poses: Sequence[np.ndarray] | np.ndarray, name: str = "poses") -> np.ndarray:
    """Nx4x4 float64 array from a list/array of 4x4 (or KITTI-style 3x4) poses; clear errors."""
    try:
        T = np.asarray(poses, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: cannot convert to an array of 4x4 poses ({exc})") from exc
    if T.ndim != 3 or T.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{name}: expected Nx4x4 (or Nx3x4) poses, got shape {T.shape}")
    if T.shape[1] == 3:
        bottom = np.broadcast_to(np.array([0.0, 0.0, 0.0, 1.0]), (T.shape[0], 1, 4))
        T = np.concatenate([T, bottom], axis=1)
    if not np.isfinite(T).all():
        raise ValueError(f"{name}: poses contain non-finite values")
    return T


def motions_over(T_world_cam: np.ndarray, delta: int = 1) -> np.ndarray:
    """``T_ci_c(i+delta) = inv(T_world_ci) @ T_world_c(i+delta)`` for i = 0..N-1-delta, (N-delta)x4x4:
    the motion that maps points of camera i+delta into camera i, from camera-to-world ``T_world_cam``.
    (The inverse, ``T_c(i+delta)_ci``, is what ``pose_error.relative_pose`` gives for the per-frame
    errors; the trajectory metrics below are written with this forward-chaining form.)"""
    if delta < 1:
        raise ValueError(f"delta must be >= 1, got {delta}")
    return relative_pose(T_world_cam[delta:], T_world_cam[:-delta])


def path_length(T_world_cam: np.ndarray) -> float:
    """Length (m) of the polyline through the camera positions."""
    p = T_world_cam[:, :3, 3]
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


def _check_pair(pred: Sequence[np.ndarray] | np.ndarray, gt: Sequence[np.ndarray] | np.ndarray,
                min_frames: int = 2) -> tuple[np.ndarray, np.ndarray]:
    P = as_pose_array(pred, "pred_T_world_cam")
    G = as_pose_array(gt, "gt_T_world_cam")
    if P.shape[0] != G.shape[0]:
        raise ValueError(
            f"pred_T_world_cam has {P.shape[0]} poses but gt_T_world_cam has {G.shape[0]}; they must be "
            "frame-aligned (associate TUM trajectories by timestamp first)"
        )
    if P.shape[0] < min_frames:
        raise ValueError(f"need at least {min_frames} frames, got {P.shape[0]}")
    return P, G


def _nan_stats(x: np.ndarray) -> tuple[float, float]:
    """(mean, median) ignoring NaN; NaN when nothing is left (without numpy's warning)."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.mean()), float(np.median(x))


# ----------------------------------------------------------------------------------------------
# per-frame relative motion errors
# ----------------------------------------------------------------------------------------------
def relative_pose_errors_deg(
    pred: np.ndarray, gt: np.ndarray, delta: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(rotation error deg, translation-direction error deg) of every relative pose over ``delta``
    frames, ``T_c(i+delta)_ci`` (maps camera i into camera i+delta), with the project's definitions of
    ``geometry.pose_error``. Inputs: Nx4x4 camera-to-world ``T_world_cam``. Scale-free; the
    direction error is NaN where either camera did not move."""
    P, G = _check_pair(pred, gt, delta + 1)
    return relative_pose_errors(relative_pose(P[:-delta], P[delta:]), relative_pose(G[:-delta], G[delta:]))


def relative_rotation_errors_deg(pred: np.ndarray, gt: np.ndarray, delta: int = 1) -> np.ndarray:
    """Rotation errors (deg) of ``relative_pose_errors_deg`` (camera-to-world ``T_world_cam`` inputs)."""
    return relative_pose_errors_deg(pred, gt, delta)[0]


def translation_direction_errors_deg(pred: np.ndarray, gt: np.ndarray, delta: int = 1) -> np.ndarray:
    """Translation-direction errors (deg) of ``relative_pose_errors_deg`` (camera-to-world
    ``T_world_cam`` inputs); NaN where either camera did not move."""
    return relative_pose_errors_deg(pred, gt, delta)[1]


# ----------------------------------------------------------------------------------------------
# absolute trajectory errors
# ----------------------------------------------------------------------------------------------
def _rmse(err: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


def ate_sim3(pred: np.ndarray, gt: np.ndarray) -> tuple[float, Sim3]:
    """RMSE (m) of camera positions after the Sim(3) Umeyama alignment of ``pred`` onto ``gt``
    (both Nx4x4 camera-to-world ``T_world_cam``); also returns the alignment."""
    P, G = _check_pair(pred, gt)
    sim3 = umeyama(P[:, :3, 3], G[:, :3, 3], with_scale=True)
    return _rmse(sim3.apply(P[:, :3, 3]) - G[:, :3, 3]), sim3


def rescale_steps_to_gt(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Re-chain ``pred`` (Nx4x4 camera-to-world ``T_world_cam``) with each consecutive relative
    translation rescaled to the length of the matching GT step, keeping the predicted rotations and
    translation directions. A predicted step of zero length stays zero (it has no direction)."""
    P, G = _check_pair(pred, gt)
    rel = motions_over(P)
    gt_len = np.linalg.norm(motions_over(G)[:, :3, 3], axis=1)
    pred_len = np.linalg.norm(rel[:, :3, 3], axis=1)
    factor = np.where(pred_len > _TINY, gt_len / np.maximum(pred_len, _TINY), 0.0)
    rel[:, :3, 3] *= factor[:, None]
    out = np.empty_like(P)
    out[0] = P[0]
    for i in range(rel.shape[0]):
        out[i + 1] = out[i] @ rel[i]
    return out


def ate_gt_scale(pred: np.ndarray, gt: np.ndarray) -> float:
    """ATE (m, RMSE of positions) "with GT scale": the predicted trajectory is first re-chained with
    every step length set to the GT step length (``rescale_steps_to_gt``), then aligned to GT with a
    rigid SE(3) Umeyama alignment *without* scale. It therefore measures rotation / direction drift
    only, never scale error. Inputs: Nx4x4 camera-to-world ``T_world_cam``."""
    P, G = _check_pair(pred, gt)
    Q = rescale_steps_to_gt(P, G)
    se3 = umeyama(Q[:, :3, 3], G[:, :3, 3], with_scale=False)
    return _rmse(se3.apply(Q[:, :3, 3]) - G[:, :3, 3])


def ate_snippets(pred: np.ndarray, gt: np.ndarray, snippet: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Per-snippet ATE over all windows of ``snippet`` consecutive frames (stride 1), the
    SfMLearner (Zhou et al. 2017) protocol followed by later self-supervised papers.

    For a window starting at frame i, predicted and GT positions are expressed relative to frame i
    in frame i's camera (``inv(T_world_ci) @ T_world_cj``), one scale is fitted by least squares
    (``least_squares_scale``) and the position differences are measured. Returns two arrays with one
    value per window:

    * the *published* value ``sqrt(sum_j |e_j|^2) / snippet`` (what SfMLearner's evaluation computes
      and papers report, equal to the true RMSE divided by ``sqrt(snippet)``),
    * the true RMSE ``sqrt(mean_j |e_j|^2)``.

    Inputs: Nx4x4 camera-to-world ``T_world_cam``; N >= snippet.
    """
    P, G = _check_pair(pred, gt, snippet)
    published, rmse = [], []
    for i in range(P.shape[0] - snippet + 1):
        p = (invert_np(P[i]) @ P[i : i + snippet])[:, :3, 3]
        g = (invert_np(G[i]) @ G[i : i + snippet])[:, :3, 3]
        err = least_squares_scale(p, g) * p - g
        sq = float(np.sum(err**2))
        published.append(np.sqrt(sq) / snippet)
        rmse.append(np.sqrt(sq / snippet))
    return np.asarray(published), np.asarray(rmse)


# ----------------------------------------------------------------------------------------------
# relative pose error and KITTI odometry errors
# ----------------------------------------------------------------------------------------------
def rpe(pred: np.ndarray, gt: np.ndarray, delta: int = 1) -> tuple[float, float]:
    """Relative pose error at a frame offset ``delta``: RMSE over i of the translation (m) and of the
    rotation angle (deg) of ``E_i = inv(gt_rel_i) @ pred_rel_i`` with ``rel_i = T_ci_c(i+delta)``
    (TUM RGB-D benchmark definition). Inputs: Nx4x4 camera-to-world ``T_world_cam``, already at the
    intended scale (see ``pose_summary`` for monocular scale handling)."""
    P, G = _check_pair(pred, gt, delta + 1)
    E = invert_np(motions_over(G, delta)) @ motions_over(P, delta)
    trans = np.linalg.norm(E[:, :3, 3], axis=1)
    rot = rotation_error_deg(np.eye(3), E[:, :3, :3])  # angle of E's rotation
    return float(np.sqrt(np.mean(trans**2))), float(np.sqrt(np.mean(rot**2)))


def kitti_segment_lengths(gt: np.ndarray) -> tuple[list[float], bool]:
    """Segment lengths for the KITTI odometry error: the official 100..800 m when the GT path is
    longer than 100 m, else 10%..80% of the GT path length (returned flag ``standard=False``)."""
    length = path_length(as_pose_array(gt, "gt_T_world_cam"))
    if length > KITTI_SEGMENTS_M[0]:
        return list(KITTI_SEGMENTS_M), True
    return [f * length for f in SHORT_PATH_SEGMENT_FRACTIONS], False


def kitti_odometry_errors(
    pred: np.ndarray,
    gt: np.ndarray,
    lengths: Sequence[float] | None = None,
    step: int = KITTI_FIRST_FRAME_STEP,
) -> tuple[float, float, int]:
    """KITTI odometry devkit errors: for each first frame (every ``step``-th) and each segment
    length L, the last frame is the first whose GT distance along the path exceeds L; the error pose
    ``inv(pred_rel) @ gt_rel`` (``rel = inv(T_world_first) @ T_world_last``) gives translation error
    ``|t| / L`` and rotation error ``angle / L``. Returns (t_err in %, r_err in deg per 100 m,
    number of segments), averaged over all (first frame, length) pairs as the devkit does; NaN and 0
    when no segment fits. ``lengths`` defaults to ``kitti_segment_lengths(gt)``. Inputs: Nx4x4
    camera-to-world ``T_world_cam``, pred at the intended scale."""
    P, G = _check_pair(pred, gt)
    if lengths is None:
        lengths = kitti_segment_lengths(G)[0]
    steps = np.linalg.norm(np.diff(G[:, :3, 3], axis=0), axis=1)
    dist = np.concatenate([[0.0], np.cumsum(steps)])
    t_errs, r_errs = [], []
    for first in range(0, P.shape[0], step):
        for L in lengths:
            if L <= 0:
                continue
            beyond = np.nonzero(dist[first:] > dist[first] + L)[0]
            if beyond.size == 0:
                continue
            last = first + int(beyond[0])
            gt_rel = invert_np(G[first]) @ G[last]
            pred_rel = invert_np(P[first]) @ P[last]
            err = invert_np(pred_rel) @ gt_rel
            t_errs.append(np.linalg.norm(err[:3, 3]) / L)
            r_errs.append(float(rotation_error_deg(np.eye(3), err[:3, :3])) / L)
    if not t_errs:
        return float("nan"), float("nan"), 0
    return float(np.mean(t_errs) * 100.0), float(np.mean(r_errs) * 100.0), len(t_errs)


def scale_poses(T_world_cam: np.ndarray, scale: float) -> np.ndarray:
    """Multiply every position of camera-to-world poses ``T_world_cam`` by ``scale`` (rotations
    unchanged); relative translations scale by the same factor."""
    out = np.array(T_world_cam, dtype=np.float64, copy=True)
    out[:, :3, 3] *= scale
    return out


# ----------------------------------------------------------------------------------------------
# everything at once
# ----------------------------------------------------------------------------------------------
def pose_summary(
    pred_T_world_cam: Sequence[np.ndarray] | np.ndarray,
    gt_T_world_cam: Sequence[np.ndarray] | np.ndarray,
    *,
    rpe_delta: int = 10,
    scale_alignment: str = "sim3",
    snippet: int = 5,
) -> dict:
    """All pose metrics for frame-aligned camera-to-world trajectories (``T_world_cam``: maps camera
    points into the world frame), as one flat dict of floats / ints (plus a list and a note).

    ``scale_alignment`` decides the scale of ``pred`` for the metric-scale relative metrics (RPE and
    KITTI t_err / r_err): ``"sim3"`` (default, for monocular estimates) multiplies the predicted
    positions by the scale of the Sim(3) Umeyama alignment; ``"none"`` uses them as given (stereo,
    metric). Rotation errors and the ATE variants do not depend on it.

    Keys: ``num_frames``, ``path_length_m`` (GT), ``rot_err_deg_per_frame`` (mean of consecutive-frame
    rotation errors), ``rot_err_deg_median``, ``tdir_err_deg_mean``, ``tdir_err_deg_median``,
    ``ate_sim3_m``, ``sim3_scale``, ``ate_gt_scale_m`` (see ``ate_gt_scale``), ``ate_5frame_m`` /
    ``ate_5frame_std_m`` (published SfMLearner definition, see ``ate_snippets``), ``ate_5frame_rmse_m``
    (true RMSE, mean over snippets), ``rpe_trans_m`` / ``rpe_rot_deg`` (delta 1), ``rpe_delta``,
    ``rpe_trans_m_at_delta`` / ``rpe_rot_deg_at_delta``, ``t_err_pct``, ``r_err_deg_per_100m``,
    ``kitti_segments_m`` (lengths used), ``kitti_segments_standard`` (False when scaled to a short
    path), ``kitti_num_segments``, ``scale_alignment``. Metrics that need more frames than given
    are NaN.
    """
    if scale_alignment not in ("sim3", "none"):
        raise ValueError(f"scale_alignment must be 'sim3' or 'none', got {scale_alignment!r}")
    P, G = _check_pair(pred_T_world_cam, gt_T_world_cam)
    n = P.shape[0]
    nan = float("nan")

    rot, tdir = relative_pose_errors_deg(P, G)
    rot_mean, rot_median = _nan_stats(rot)
    tdir_mean, tdir_median = _nan_stats(tdir)

    try:
        ate_s, sim3 = ate_sim3(P, G)
        scale = sim3.scale
    except ValueError:  # predicted positions all identical: no Sim(3) exists
        ate_s, scale = nan, nan
    if n >= snippet:
        published, true_rmse = ate_snippets(P, G, snippet)
        ate5, ate5_std, ate5_rmse = float(published.mean()), float(published.std()), float(true_rmse.mean())
    else:
        ate5 = ate5_std = ate5_rmse = nan

    if scale_alignment == "sim3":
        P_metric = scale_poses(P, scale) if np.isfinite(scale) else P
    else:
        P_metric = P
    rpe_t, rpe_r = rpe(P_metric, G, 1)
    rpe_td, rpe_rd = rpe(P_metric, G, rpe_delta) if n > rpe_delta else (nan, nan)
    lengths, standard = kitti_segment_lengths(G)
    t_err, r_err, num_segments = kitti_odometry_errors(P_metric, G, lengths)

    return {
        "num_frames": int(n),
        "path_length_m": path_length(G),
        "rot_err_deg_per_frame": rot_mean,
        "rot_err_deg_median": rot_median,
        "tdir_err_deg_mean": tdir_mean,
        "tdir_err_deg_median": tdir_median,
        "ate_sim3_m": ate_s,
        "sim3_scale": scale,
        "ate_gt_scale_m": ate_gt_scale(P, G),
        "ate_5frame_m": ate5,
        "ate_5frame_std_m": ate5_std,
        "ate_5frame_rmse_m": ate5_rmse,
        "rpe_trans_m": rpe_t,
        "rpe_rot_deg": rpe_r,
        "rpe_delta": int(rpe_delta),
        "rpe_trans_m_at_delta": rpe_td,
        "rpe_rot_deg_at_delta": rpe_rd,
        "t_err_pct": t_err,
        "r_err_deg_per_100m": r_err,
        "kitti_segments_m": [float(x) for x in lengths],
        "kitti_segments_standard": bool(standard),
        "kitti_num_segments": int(num_segments),
        "scale_alignment": scale_alignment,
    }


# ----------------------------------------------------------------------------------------------
# trajectory files (what `depth-pose eval pose` scores)
# ----------------------------------------------------------------------------------------------
def evaluate_trajectory_files(
    pred_path: str, gt_path: str, *, pred_format: str = "kitti", gt_format: str = "kitti", max_dt: float = 0.02,
    rpe_delta: int = 10, scale_alignment: str = "sim3",
) -> tuple[dict, str, dict]:
    """``(counts, matching, pose_summary)`` of a predicted trajectory file against a ground-truth file.

    Poses are matched by timestamp (within ``max_dt`` s) when both files have them (TUM), else by line,
    and then the counts must agree. ``counts``: ``num_pred_poses``, ``num_gt_poses`` as read;
    ``matching`` says how the poses were matched.
    """
    pred_stamps, pred = read_trajectory(pred_path, pred_format)
    gt_stamps, gt = read_trajectory(gt_path, gt_format)
    counts = {"num_pred_poses": len(pred), "num_gt_poses": len(gt)}
    if pred_stamps is not None and gt_stamps is not None:
        ia, ib = associate(pred_stamps, gt_stamps, max_dt)
        if len(ia) < 2:
            raise ValueError(
                f"only {len(ia)} poses of {pred_path} match {gt_path} within --max-dt {max_dt} s"
            )
        pred, gt = pred[ia], gt[ib]
        matching = f"timestamps (max_dt {max_dt} s): {len(ia)} of {len(pred_stamps)} pred poses"
    else:
        if len(pred) != len(gt):
            raise ValueError(
                f"{pred_path} has {len(pred)} poses but {gt_path} has {len(gt)}; without timestamps on both "
                "sides poses are matched by line, so the counts must agree"
            )
        matching = "by line (frame-aligned)"
    summary = pose_summary(pred, gt, rpe_delta=rpe_delta, scale_alignment=scale_alignment)
    return counts, matching, summary
