"""Monocular scale carried by geometry from one frame pair to the next (classical monocular VO).

Two-view geometry gives each pair's translation only up to its length. Pairs (k-1, k) and (k, k+1)
share frame k: the points the first pair triangulated, moved into frame k and scaled by its known
length, and the points the second pair triangulates with a unit baseline see the same surfaces. The
robust ratio of their depths at the same pixels is the second pair's length in the same units, so the
trajectory keeps one scale without any depth network or ground truth. Used by the streaming Estimator
and by ``depth-pose vo --scale geometry``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol

import numpy as np

from depth_pose_ros.geometry.scale_align import align_scale

#: Pixels of the two pairs are matched on a grid of cells this wide (triangulated samples differ).
CELL_PX = 4.0


class TriangulatedPair(Protocol):
    """What the chain reads of a pair's two-view result (``geometry.two_view.TwoViewResult``; a protocol: the
    chain itself needs neither torch nor OpenCV, and ``odometry_policy`` imports it)."""

    R: np.ndarray  # rotation of T_2_1
    t: np.ndarray  # unit translation of T_2_1
    points: np.ndarray  # Mx3 triangulated in frame 1, unit baseline
    points_pixels: np.ndarray  # Mx2 their image-1 pixels


@dataclass
class Structure:
    """Points triangulated by the last pair, seen from its second frame: pixels and depths (chain units)."""

    pixels: np.ndarray  # Nx2
    depth: np.ndarray  # N


def _cell_keys(pixels: np.ndarray) -> np.ndarray:
    q = np.floor(np.asarray(pixels, dtype=np.float64) / CELL_PX).astype(np.int64)
    return q[:, 1] * 1_000_003 + q[:, 0]


def structure_in_second_frame(tv: TriangulatedPair, K: np.ndarray, length: float) -> Optional[Structure]:
    """A pair's triangulated points moved into its second camera and scaled to ``length`` units."""
    if not len(tv.points) or length <= 0:
        return None
    X2 = tv.points @ np.asarray(tv.R).T + np.asarray(tv.t)
    z = X2[:, 2]
    ok = z > 1e-9
    uv = X2[ok] @ np.asarray(K).T
    return Structure(uv[:, :2] / uv[:, 2:3], z[ok] * length)


class ScaleChain:
    """The structure of the last pair and the rule that turns it into the next pair's length."""

    def __init__(self, min_shared_points: int = 30, max_scale_jump: float = 3.0) -> None:
        self.min_shared_points = min_shared_points
        self.max_scale_jump = max_scale_jump
        self.structure: Optional[Structure] = None

    def reset(self) -> None:
        """Break the chain (a pair without triangulation, a restart): the next length comes from elsewhere."""
        self.structure = None

    def propagate(self, tv: TriangulatedPair, last_length: Optional[float]) -> Optional[float]:
        """This pair's translation length in the chain's units, or None (no chain, too few shared points,
        inconsistent depths, or a jump of more than ``max_scale_jump`` against ``last_length``)."""
        s = self.structure
        if s is None or not len(s.pixels) or not len(tv.points):
            return None
        keys_prev = _cell_keys(s.pixels)
        order = np.argsort(keys_prev)
        keys_sorted = keys_prev[order]
        keys_new = _cell_keys(tv.points_pixels)
        pos = np.clip(np.searchsorted(keys_sorted, keys_new), 0, len(keys_sorted) - 1)
        hit = keys_sorted[pos] == keys_new
        if int(hit.sum()) < self.min_shared_points:
            return None
        prev_depth = s.depth[order[pos[hit]]]
        new_depth = tv.points[hit, 2]
        # Inverse-variance weights in the log domain: a triangulated depth's relative error grows with its
        # (unit-baseline) depth, so far points, which also carry the triangulation bias, count less.
        fit = align_scale(new_depth, prev_depth, weights=1.0 / np.maximum(new_depth, 1e-9) ** 2, inlier_rel=0.1)
        if fit is None or fit.inlier_ratio < 0.3:
            return None
        if last_length is not None and last_length > 0 and \
                not 1.0 / self.max_scale_jump < fit.scale / last_length < self.max_scale_jump:
            return None
        return float(fit.scale)

    def advance(self, tv: TriangulatedPair, K: np.ndarray, length: float) -> None:
        """Keep this pair's structure (scaled by the length it was given) for the next pair."""
        self.structure = structure_in_second_frame(tv, K, length)
