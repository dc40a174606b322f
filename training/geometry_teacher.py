"""Geometry as the depth teacher: triangulated two-view points at a resolution above the network's.

Why: the two-view module on classical DIS flow triangulates accurate relative depth when it sees the
images at a useful resolution, and poor depth at the network's small training size (measured in
docs/bench_training.md). The teacher runs the module once per consecutive frame pair on the source rendered
or read at ``scale`` x the training source's size, keeps the triangulated inliers of the first frame of
each pair, and stores them as a sparse depth map at the training source's size (0 = no point). Depth from
one pair is known only up to that pair's unknown scale, so the loss that uses it (``depth_teacher``,
:func:`depth_pose_ros.losses.geometric.scale_invariant_log_loss`) compares log-depth *shapes* only.

The same pass keeps each pair's camera motion ``T_{i+1,i}`` (unit translation, in the units of frame i's teacher
depth): ``two_view_flow: teacher`` warps the photometric terms with it, its translation scaled by aligning the
network depth to the same frame's teacher points, instead of re-running the two-view module on the 64x192
training images every step (poorer rotation and direction, and a per-sample scale from noisy low-resolution
triangulation).

No labels are used: only the images. The maps are computed once per source and cached on disk
(``cache_dir``, keyed by the source spec, its options, the scale and the two-view settings), so both runs of a
side-by-side comparison and every resume share one computation.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros.data.source import FrameReadError, open_source
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewStatus, estimate_two_view

#: Version of the cached format and computation; bump when either changes.
CACHE_VERSION = 2


def teacher_spec(spec: str, scale: float) -> str:
    """The source spec at ``scale`` x its size: ``height=`` / ``width=`` options multiplied (rendered sources
    such as ``synthetic:``); a spec without them (recorded frames at their native size) is returned as is."""
    def times(match: re.Match) -> str:
        return f"{match.group(1)}={int(round(int(match.group(2)) * scale))}"

    return re.sub(r"\b(height|width)=(\d+)", times, spec)


def _sparse_at(points_px: np.ndarray, z: np.ndarray, in_hw: tuple[int, int], out_hw: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray]:
    """(flat indices, depths) of points given at ``in_hw`` pixels on the ``out_hw`` grid; points landing on
    one output pixel are averaged in log depth."""
    (ih, iw), (oh, ow) = in_hw, out_hw
    u = np.rint((points_px[:, 0] + 0.5) * (ow / iw) - 0.5).astype(np.int64)
    v = np.rint((points_px[:, 1] + 0.5) * (oh / ih) - 0.5).astype(np.int64)
    ok = (u >= 0) & (u < ow) & (v >= 0) & (v < oh) & np.isfinite(z) & (z > 0)
    flat = v[ok] * ow + u[ok]
    if flat.size == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    idx, inverse = np.unique(flat, return_inverse=True)
    logs = np.bincount(inverse, weights=np.log(z[ok])) / np.bincount(inverse)
    return idx.astype(np.int32), np.exp(logs).astype(np.float32)


def compute_teacher(source: Any, out_hw: tuple[int, int], config: TwoViewConfig, dis_preset: str = "medium"
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, int]]:
    """Sparse teacher depth and next-frame motion of every frame of ``source`` (the teacher-resolution frames).

    Frame i uses the pair (i, i+1) (the last frame: (i, i-1)); its points are the pair's triangulated inliers
    in frame i. Returns ``(offsets N+1, flat indices, depths, poses Nx4x4, counts)``: frame i's points are
    ``indices[offsets[i]:offsets[i+1]]`` on the ``out_hw`` grid, ``poses[i]`` is ``T_{i+1,i}`` with a unit
    translation in the units of those depths (NaN for the last frame and failed pairs). Unreadable frames
    and failed pairs give no points (counted in ``counts``), never an error: one bad frame must not stop a
    training run.
    """
    n = len(source)
    counts = {"frames": n, "with_points": 0, "failed_pairs": 0, "unreadable": 0}
    frames: dict[int, Any] = {}  # the two frames of the current pair (read once each)

    def frame(i: int) -> Any:
        if i not in frames:
            try:
                frames[i] = source[i]
            except FrameReadError:
                frames[i] = None
                counts["unreadable"] += 1
            for old in [k for k in frames if k < i - 1]:
                del frames[old]
        return frames[i]

    offsets, all_idx, all_z = [0], [], []
    poses = np.full((n, 4, 4), np.nan)
    for i in range(n):
        j = i + 1 if i + 1 < n else i - 1
        lo, hi = frame(min(i, j)), frame(max(i, j))
        a, b = (lo, hi) if i <= j else (hi, lo)
        idx, z = np.zeros(0, np.int32), np.zeros(0, np.float32)
        if a is not None and b is not None and j >= 0:
            fw, bw = dis_flow(a.image, b.image, dis_preset), dis_flow(b.image, a.image, dis_preset)
            tv = estimate_two_view(fw, np.asarray(a.K, dtype=np.float64), flow_bw=bw, config=config)
            if tv.status == TwoViewStatus.OK and len(tv.points):
                idx, z = _sparse_at(tv.points_pixels, tv.points[:, 2], a.image.shape[:2], out_hw)
                if j == i + 1:
                    poses[i] = tv.T_2_1
            else:
                counts["failed_pairs"] += 1
        counts["with_points"] += int(idx.size > 0)
        all_idx.append(idx)
        all_z.append(z)
        offsets.append(offsets[-1] + idx.size)
    return (np.asarray(offsets, np.int64), np.concatenate(all_idx) if all_idx else np.zeros(0, np.int32),
            np.concatenate(all_z) if all_z else np.zeros(0, np.float32), poses, counts)


class TeacherDepth:
    """Sparse teacher depth maps of one training source: ``teacher[i]`` is an HxW float32 map (0 = none);
    ``teacher.pose(i)`` is ``T_{i+1,i}`` (4x4, unit translation in the units of ``teacher[i]``; NaN: none)."""

    def __init__(self, offsets: np.ndarray, indices: np.ndarray, depths: np.ndarray, poses: np.ndarray,
                 hw: tuple[int, int], counts: Optional[dict[str, int]] = None) -> None:
        self.offsets, self.indices, self.depths, self.poses = offsets, indices, depths, poses
        self.hw = (int(hw[0]), int(hw[1]))
        self.counts = counts or {}

    def pose(self, i: int) -> np.ndarray:
        return self.poses[i]

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        out = np.zeros(self.hw[0] * self.hw[1], np.float32)
        a, b = int(self.offsets[i]), int(self.offsets[i + 1])
        out[self.indices[a:b]] = self.depths[a:b]
        return out.reshape(self.hw)

    @classmethod
    def build(cls, spec: str, options: dict, scale: float, out_hw: tuple[int, int], config: TwoViewConfig,
              cache_dir: Optional[Path] = None, log: Any = print) -> TeacherDepth:
        """The teacher of source ``spec`` (+ ``options``) whose frames are ``out_hw``, from the same source at
        ``scale`` x size; read from ``cache_dir`` when computed before."""
        hi_spec = teacher_spec(spec, scale)
        key = json.dumps({"v": CACHE_VERSION, "spec": hi_spec, "options": options, "hw": list(out_hw),
                          "two_view": asdict(config)}, sort_keys=True, default=str)
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"teacher_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
            if path.is_file():
                with np.load(path) as f:
                    return cls(f["offsets"], f["indices"], f["depths"], f["poses"], out_hw,
                               json.loads(str(f["counts"])))
        source = open_source(hi_spec, **options)
        offsets, indices, depths, poses, counts = compute_teacher(source, out_hw, config)
        log(f"geometry teacher for {spec} at {hi_spec}: {counts['with_points']}/{counts['frames']} frames with "
            f"points, {indices.size / max(counts['frames'], 1):.0f} points per frame, "
            f"{counts['failed_pairs']} failed pairs, {counts['unreadable']} unreadable frames")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, offsets=offsets, indices=indices, depths=depths, poses=poses, counts=json.dumps(counts))
            tmp.replace(path)
        return cls(offsets, indices, depths, poses, out_hw, counts)
