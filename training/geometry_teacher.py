"""Geometry as the depth teacher: triangulated two-view points at a resolution above the network's.

Why: the two-view module on classical DIS flow triangulates accurate relative depth when it sees the
images at a useful resolution, and poor depth at the network's small training size (measured in
docs/bench_training.md). The teacher runs the module once per consecutive frame pair on the source rendered
or read at ``size_factor`` x the training source's size (``data.teacher.size_factor``), keeps the triangulated
inliers of the first frame of each pair, and stores them as a sparse depth map at the training source's size
(0 = no point). Depth from
one pair is known only up to that pair's unknown scale, so the loss that uses it (``depth_teacher``,
:func:`depth_pose_ros.losses.geometric.scale_invariant_log_loss`) compares log-depth *shapes* only.

The same pass keeps each pair's camera motion ``T_{i+1,i}`` (unit translation, in the units of frame i's teacher
depth): ``two_view_flow: teacher`` warps the photometric terms with it, its translation scaled by aligning the
network depth to the same frame's teacher points, instead of re-running the two-view module on the 64x192
training images every step (poorer rotation and direction, and a per-sample scale from noisy low-resolution
triangulation). It also keeps each pair's DIS flows (resized to the training source's size) for
``losses.flow_distillation.source: teacher``: flow computed at 3x the size and shrunk is far more accurate
than DIS on the small training images themselves.

Frames with a lens distortion are undistorted first, by the same ``Undistorter`` as the training clips and
the node (:func:`depth_pose_ros.data.frame.undistort_frame`; K unchanged), so the teacher's points, poses and
flows live on the undistorted images the network is trained on.

No labels are used: only the images. The maps are computed once per source and cached on disk
(``cache_dir``, keyed by the source spec, its options, the size factor and the two-view settings), so both runs
of a side-by-side comparison and every resume share one computation.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from depth_pose_ros.data.frame import undistort_frame
from depth_pose_ros.data.source import FrameReadError, open_source
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.two_view import TwoViewConfig, TwoViewStatus, estimate_two_view

#: Version of the cached format and computation; bump when either changes (4: distorted frames undistorted).
CACHE_VERSION = 4


def teacher_spec(spec: str, size_factor: float) -> str:
    """The source spec at ``size_factor`` x its size: ``height=`` / ``width=`` options multiplied (rendered sources
    such as ``synthetic:``); a spec without them (recorded frames at their native size) is returned as is."""
    def times(match: re.Match) -> str:
        return f"{match.group(1)}={int(round(int(match.group(2)) * size_factor))}"

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


def _flow_at(flow: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """HxWx2 flow at the teacher's size -> 2 x out_h x out_w float16 at the training source's size (area mean,
    values scaled with the size)."""
    (ih, iw), (oh, ow) = flow.shape[:2], out_hw
    small = cv2.resize(flow, (ow, oh), interpolation=cv2.INTER_AREA) * np.array([ow / iw, oh / ih], np.float32)
    return small.transpose(2, 0, 1).astype(np.float16)


@dataclass
class TeacherData:
    """What the teacher computed for the N frames of one source (see :func:`compute_teacher`)."""

    offsets: np.ndarray  # N+1: frame i's points are indices/depths[offsets[i]:offsets[i+1]]
    indices: np.ndarray  # flat pixel indices on the out_hw grid
    depths: np.ndarray  # triangulated depth of each point, unit translation of its pair
    poses: np.ndarray  # N x 4 x 4 T_{i+1,i} (NaN: none)
    flows_fw: np.ndarray  # N x 2 x H x W float16 DIS flow i -> i+1 on i's grid at out_hw (NaN: none; 0 rows: not kept)
    flows_bw: np.ndarray  # N x 2 x H x W float16 DIS flow i+1 -> i on (i+1)'s grid
    counts: dict[str, int]

    ARRAYS = ("offsets", "indices", "depths", "poses", "flows_fw", "flows_bw")


def compute_teacher(source: Any, out_hw: tuple[int, int], config: TwoViewConfig, dis_preset: str = "medium",
                    with_flow: bool = False) -> TeacherData:
    """Sparse teacher depth, next-frame motion and flow of every frame of ``source`` (teacher-resolution frames).

    Frame i uses the pair (i, i+1) (the last frame: (i, i-1)); its points are the pair's triangulated inliers
    in frame i on the ``out_hw`` grid, its pose ``T_{i+1,i}`` has a unit translation in the units of those
    depths, and its flows are the pair's DIS flows (forward on i's grid, backward on i+1's) resized to
    ``out_hw`` (only ``with_flow``: they cost 8 bytes per pixel and frame). Frames with a ``distortion`` are
    undistorted first, as the training clips and the node do. The last frame has no pose or flows
    (NaN), failed pairs no points or pose. Unreadable frames and failed pairs are counted in ``counts``, never
    an error: one bad frame must not stop a training run.
    """
    n = len(source)
    oh, ow = out_hw
    counts = {"frames": n, "with_points": 0, "failed_pairs": 0, "unreadable": 0}
    frames: dict[int, Any] = {}  # the two frames of the current pair (read once each)

    def frame(i: int) -> Any:
        if i not in frames:
            try:
                frames[i] = undistort_frame(source[i])
            except FrameReadError:
                frames[i] = None
                counts["unreadable"] += 1
            for old in [k for k in frames if k < i - 1]:
                del frames[old]
        return frames[i]

    offsets, all_idx, all_z = [0], [], []
    poses = np.full((n, 4, 4), np.nan)
    flows_fw = np.full((n if with_flow else 0, 2, oh, ow), np.nan, np.float16)
    flows_bw = np.full((n if with_flow else 0, 2, oh, ow), np.nan, np.float16)
    for i in range(n):
        j = i + 1 if i + 1 < n else i - 1
        lo, hi = frame(min(i, j)), frame(max(i, j))
        a, b = (lo, hi) if i <= j else (hi, lo)
        idx, z = np.zeros(0, np.int32), np.zeros(0, np.float32)
        if a is not None and b is not None and j >= 0:
            fw, bw = dis_flow(a.image, b.image, dis_preset), dis_flow(b.image, a.image, dis_preset)
            if with_flow and j == i + 1:
                flows_fw[i], flows_bw[i] = _flow_at(fw, out_hw), _flow_at(bw, out_hw)
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
    return TeacherData(np.asarray(offsets, np.int64), np.concatenate(all_idx) if all_idx else np.zeros(0, np.int32),
                       np.concatenate(all_z) if all_z else np.zeros(0, np.float32), poses, flows_fw, flows_bw, counts)


class TeacherDepth:
    """The geometry teacher of one training source: ``teacher[i]`` is frame i's sparse depth, an HxW float32
    map (0 = none); ``teacher.pose(i)`` is ``T_{i+1,i}`` (4x4, unit translation in the units of ``teacher[i]``;
    NaN: none); ``teacher.flow(i)`` is the pair's DIS flows (forward, backward), each 2xHxW float32, when built
    ``with_flow`` (``has_flow``)."""

    def __init__(self, data: TeacherData, hw: tuple[int, int]) -> None:
        self.data = data
        self.hw = (int(hw[0]), int(hw[1]))

    @property
    def counts(self) -> dict[str, int]:
        return self.data.counts

    def pose(self, i: int) -> np.ndarray:
        return self.data.poses[i]

    @property
    def has_flow(self) -> bool:
        return len(self.data.flows_fw) == len(self)

    def flow(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.has_flow:
            raise ValueError("this geometry teacher was built without flows (data.teacher.flow: false)")
        return self.data.flows_fw[i].astype(np.float32), self.data.flows_bw[i].astype(np.float32)

    def __len__(self) -> int:
        return len(self.data.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        out = np.zeros(self.hw[0] * self.hw[1], np.float32)
        a, b = int(self.data.offsets[i]), int(self.data.offsets[i + 1])
        out[self.data.indices[a:b]] = self.data.depths[a:b]
        return out.reshape(self.hw)

    @classmethod
    def build(cls, spec: str, options: dict, size_factor: float, out_hw: tuple[int, int], config: TwoViewConfig,
              cache_dir: Optional[Path] = None, log: Any = print, with_flow: bool = False) -> TeacherDepth:
        """The teacher of source ``spec`` (+ ``options``) whose frames are ``out_hw``, from the same source at
        ``size_factor`` x size (keeping the pairs' flows ``with_flow``); read from ``cache_dir`` when computed
        before."""
        hi_spec = teacher_spec(spec, size_factor)
        key = json.dumps({"v": CACHE_VERSION, "spec": hi_spec, "options": options, "hw": list(out_hw),
                          "two_view": asdict(config), "flow": bool(with_flow)}, sort_keys=True, default=str)
        path = None
        if cache_dir is not None:
            path = Path(cache_dir) / f"teacher_{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
            if path.is_file():
                with np.load(path) as f:
                    arrays = {k: f[k] for k in TeacherData.ARRAYS}
                    return cls(TeacherData(**arrays, counts=json.loads(str(f["counts"]))), out_hw)
        source = open_source(hi_spec, **options)
        data = compute_teacher(source, out_hw, config, with_flow=with_flow)
        counts = data.counts
        log(f"geometry teacher for {spec} at {hi_spec}: {counts['with_points']}/{counts['frames']} frames with "
            f"points, {data.indices.size / max(counts['frames'], 1):.0f} points per frame, "
            f"{counts['failed_pairs']} failed pairs, {counts['unreadable']} unreadable frames")
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, **{k: getattr(data, k) for k in TeacherData.ARRAYS}, counts=json.dumps(counts))
            tmp.replace(path)
        return cls(data, out_hw)
