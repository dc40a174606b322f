"""Offline runner: a frame source through the streaming Estimator, with metrics and files out.

Shared by ``depth-pose demo`` and ``depth-pose run`` so that both produce the same artefacts the
same way: per-frame depth / flow images, point clouds (PLY), the trajectory (TUM and KITTI), a
summary panel and, when the source has ground truth, the metrics against it.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import cv2
import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.geometry.camera import backproject_np
from depth_pose_ros.pipeline.estimator import Estimator
from depth_pose_ros.pipeline.result import Result
from depth_pose_ros.utils.viz import colorize_depth, flow_to_color


@dataclass
class SequenceRun:
    """What one pass over a source produced (everything at the network resolution)."""

    stamps: list[float] = field(default_factory=list)
    poses: list[np.ndarray] = field(default_factory=list)  # T_world_cam per frame
    gt_poses: list[Optional[np.ndarray]] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    ms_per_frame: list[float] = field(default_factory=list)
    depth_metrics: list[dict[str, float]] = field(default_factory=list)
    flow_metrics: list[dict[str, float]] = field(default_factory=list)
    cloud_xyz: list[np.ndarray] = field(default_factory=list)  # world-frame points (accumulated scene)
    cloud_rgb: list[np.ndarray] = field(default_factory=list)
    last: Optional[Result] = None
    panel_result: Optional[Result] = None  # the last result with flow (or the first frame): the summary panel

    @property
    def has_gt_pose(self) -> bool:
        return bool(self.gt_poses) and all(p is not None for p in self.gt_poses)


def depth_points(result: Result, stride: int = 4, max_depth: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame points (Nx3) and colours (Nx3 uint8) of a result's depth, every ``stride`` pixels."""
    return backproject_np(result.depth, result.K, stride, max_depth=max_depth, image=result.image)


def write_ply(path: Path, xyz: np.ndarray, rgb: np.ndarray) -> None:
    """Binary little-endian PLY with float xyz and uchar rgb (opens in MeshLab, CloudCompare, Open3D)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(xyz)
    header = ("ply\nformat binary_little_endian 1.0\n"
              f"element vertex {n}\nproperty float x\nproperty float y\nproperty float z\n"
              "property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n")
    rec = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")])
    rec["x"], rec["y"], rec["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    rec["r"], rec["g"], rec["b"] = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(rec.tobytes())


def read_ply_vertex_count(path: Path) -> int:
    """Number of vertices declared in a PLY header (for tests and sanity checks)."""
    with open(path, "rb") as f:
        for line in f:
            if line.startswith(b"element vertex"):
                return int(line.split()[2])
            if line.strip() == b"end_header":
                break
    raise ValueError(f"{path}: no vertex element in PLY header")


def trajectory_panel(poses: list[np.ndarray], gt: Optional[list[np.ndarray]], size: tuple[int, int]) -> np.ndarray:
    """Top-down (x right, z up) plot of the camera path (orange) against ground truth (green)."""
    h, w = size
    panel = np.full((h, w, 3), 255, np.uint8)
    est = np.array([p[:3, 3] for p in poses])
    paths = [("est", est, (230, 110, 20))]
    if gt is not None:
        g = np.array([p[:3, 3] for p in gt])
        if len(est) >= 3 and np.ptp(est, axis=0).max() > 1e-9:
            from depth_pose_ros.eval.align import umeyama  # monocular scale is arbitrary: show it aligned

            paths[0] = ("est", umeyama(est, g, with_scale=True).apply(est), (230, 110, 20))
        paths.insert(0, ("gt", g, (40, 160, 60)))
    pts = np.concatenate([p[:, [0, 2]] for _, p, _ in paths]) if paths else np.zeros((1, 2))
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = max(float((hi - lo).max()), 1e-6)
    scale = 0.85 * min(h, w) / span
    centre = (lo + hi) / 2
    for _name, p, colour in paths:
        xy = np.stack([(p[:, 0] - centre[0]) * scale + w / 2, h / 2 - (p[:, 2] - centre[1]) * scale], axis=1)
        cv2.polylines(panel, [np.round(xy).astype(np.int32)], False, colour, 2, cv2.LINE_AA)
    title = "top view: estimate (Sim(3)-aligned) orange, GT green" if gt is not None else "trajectory (top view)"
    cv2.putText(panel, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(panel, f"span {span:.1f} m", (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return panel


SUMMARY_MIN_PANEL_WIDTH = 480  # small networks (64x192) would give an unreadable picture otherwise


def flow_panel(result: Result, size: tuple[int, int]) -> np.ndarray:
    """The flow of a result coloured at ``size`` (the flow lives at the geometry size); white without flow."""
    if result.flow is None:
        return np.full((*size, 3), 255, np.uint8)
    return cv2.resize(flow_to_color(result.flow), (size[1], size[0]), interpolation=cv2.INTER_AREA)


def summary_image(run: SequenceRun) -> np.ndarray:
    """input | depth | flow | trajectory, as one RGB image (2x2 grid at the network resolution, enlarged
    by an integer factor to panels at least ``SUMMARY_MIN_PANEL_WIDTH`` wide)."""
    if run.panel_result is None:
        raise ValueError("summary_image: the run has no frames")
    r = run.panel_result
    image, depth_rgb = r.image, colorize_depth(r.depth)
    flow_rgb = flow_panel(r, depth_rgb.shape[:2])
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    f = int(np.ceil(SUMMARY_MIN_PANEL_WIDTH / depth_rgb.shape[1]))
    if f > 1:
        image, depth_rgb, flow_rgb = (cv2.resize(x, None, fx=f, fy=f, interpolation=cv2.INTER_LINEAR)
                                      for x in (image, depth_rgb, flow_rgb))
    h, w = depth_rgb.shape[:2]
    traj = trajectory_panel(run.poses, [p for p in run.gt_poses if p is not None] if run.has_gt_pose else None, (h, w))
    labelled = []
    for title, panel in (("input", image), ("depth", depth_rgb), ("optical flow", flow_rgb), ("", traj)):
        panel = panel.copy()
        if title:
            cv2.putText(panel, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 2, cv2.LINE_AA)
            cv2.putText(panel, title, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
        labelled.append(panel)
    return np.concatenate([np.concatenate(labelled[:2], 1), np.concatenate(labelled[2:], 1)], 0)


def _gt_flow_at_size(prev: Frame, size: tuple[int, int]) -> Optional[np.ndarray]:
    if prev.flow_next is None:
        return None
    h, w = size
    fh, fw = prev.flow_next.shape[:2]
    flow = cv2.resize(prev.flow_next, (w, h), interpolation=cv2.INTER_NEAREST)
    return flow * np.array([w / fw, h / fh], np.float32)


def run_sequence(frames: Iterable[Frame], estimator: Estimator, *, cloud_every: int = 5, cloud_stride: int = 4,
                 cloud_max_depth: float = 40.0, on_result=None, progress: Any = None) -> SequenceRun:
    """Run every frame through ``estimator`` (reset first) and collect trajectory, metrics, clouds.

    ``on_result(frame, result)`` is called for each frame (writers hook in there). ``progress`` is a
    tqdm-like object with ``update()``.
    """
    from depth_pose_ros.eval.depth_metrics import depth_metrics
    from depth_pose_ros.eval.flow_metrics import flow_metrics

    estimator.reset()
    run = SequenceRun()
    prev: Optional[Frame] = None
    for frame in frames:
        t0 = time.perf_counter()
        result = estimator.step(frame.image, frame.K, frame.stamp, frame.stereo_image, frame.stereo_baseline,
                                distortion=frame.distortion)
        run.ms_per_frame.append((time.perf_counter() - t0) * 1e3)
        run.stamps.append(float(frame.stamp))
        run.poses.append(result.T_world_cam.copy())
        run.gt_poses.append(None if frame.T_world_cam is None else frame.T_world_cam.copy())
        run.statuses.append(result.status)
        size = result.depth.shape
        if frame.depth is not None:
            gt = cv2.resize(frame.depth, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
            if (gt > 0).sum() > 100:
                run.depth_metrics.append(depth_metrics(result.depth, gt, median_scale=True))
        if prev is not None and result.flow is not None:
            size = result.flow.shape[:2]  # the geometry resolution
            gt_flow = _gt_flow_at_size(prev, size)
            if gt_flow is not None:
                valid = np.isfinite(gt_flow).all(axis=2)
                if prev.occlusion_next is not None:
                    occ = cv2.resize(prev.occlusion_next.astype(np.uint8), (size[1], size[0]),
                                     interpolation=cv2.INTER_NEAREST).astype(bool)
                    valid &= ~occ
                run.flow_metrics.append(flow_metrics(result.flow, np.nan_to_num(gt_flow), valid))
        if cloud_every > 0 and (len(run.poses) - 1) % cloud_every == 0:  # frames 0, k, 2k, ...
            xyz, rgb = depth_points(result, cloud_stride, cloud_max_depth)
            T = result.T_world_cam
            run.cloud_xyz.append((xyz @ T[:3, :3].T + T[:3, 3]).astype(np.float32))
            run.cloud_rgb.append(rgb)
        if result.flow is not None or run.panel_result is None:
            run.panel_result = result  # coloured once, in summary_image
        run.last = result
        if on_result is not None:
            on_result(frame, result)
        if progress is not None:
            progress.update()
        prev = frame
    return run


def summarize(run: SequenceRun) -> dict[str, Any]:
    """Metrics of a run: pose errors vs GT, depth (median scaled) and flow (EPE) averages, speed."""
    out: dict[str, Any] = {"num_frames": len(run.poses)}
    counts: dict[str, int] = {}
    for s in run.statuses:
        counts[s] = counts.get(s, 0) + 1
    out["status_counts"] = counts
    if run.ms_per_frame:
        steady = run.ms_per_frame[1:] or run.ms_per_frame
        out["ms_per_frame"] = float(np.mean(steady))
    if run.has_gt_pose and len(run.poses) >= 3:
        from depth_pose_ros.eval.pose_metrics import pose_summary

        out["pose"] = pose_summary(np.stack(run.poses), np.stack([p for p in run.gt_poses if p is not None]))
    if run.depth_metrics:
        keys = run.depth_metrics[0].keys()
        out["depth"] = {k: float(np.mean([m[k] for m in run.depth_metrics])) for k in keys}
    if run.flow_metrics:
        flow_keys = [k for k in run.flow_metrics[0] if isinstance(run.flow_metrics[0][k], (int, float))]
        out["flow"] = {k: float(np.mean([m[k] for m in run.flow_metrics])) for k in flow_keys}
    return out
