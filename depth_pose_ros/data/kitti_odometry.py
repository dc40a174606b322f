"""KITTI odometry sequences (and the same layout written by the synthetic world).

Layout read (``root`` is the folder holding ``sequences/`` and ``poses/``)::

    root/sequences/XX/calib.txt          P0..P3 (3x4 rectified projections, 12 numbers, row-major)
    root/sequences/XX/image_0|1/NNNNNN.png   left / right grayscale
    root/sequences/XX/image_2|3/NNNNNN.png   left / right colour
    root/sequences/XX/times.txt          optional, seconds per frame (else index / 10 Hz)
    root/sequences/XX/depth/NNNNNN.png   optional, 16-bit millimetres, 0 = invalid (synthetic world)
    root/sequences/XX/flow/NNNNNN.png    optional, KITTI flow PNG, forward flow to frame N+1
                                         (``Frame.flow_next``; NaN where the PNG marks it invalid)
    root/sequences/XX/occlusion/NNNNNN.png  optional, 8-bit, nonzero = not visible in frame N+1
    root/sequences/XX/moving/NNNNNN.png  optional, 8-bit, nonzero = independently moving object
    root/poses/XX.txt                    optional, 3x4 camera-0-to-world per line (row-major)

All four cameras share one rectified frame, so each projection is ``P_k = K [I | t_k]``: the camera's
offset from camera 0 is ``t_k = K^-1 P_k[:, 3]`` (camera k sees camera-0 point X at X + t_k). That
gives the stereo baseline (``-P1[0,3] / P1[0,0]`` = 0.537 m for the grayscale pair) and the GT pose of
cameras other than 0: ``T_world_camk = T_world_cam0 @ T_cam0_camk`` with ``T_cam0_camk = [I | -t_k]``.

The depth/, flow/, occlusion/ and moving/ folders belong to the reference camera of the sequence
(camera 0 / 2, which coincide for the synthetic world), so they are attached only with
``camera="left"``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import FrameSelection, FrameSource, read_depth_png, read_image
from depth_pose_ros.data.trajectory_io import read_kitti_poses  # one reader for GT and predictions

__all__ = [
    "KittiOdometry",
    "read_kitti_calib",
    "read_kitti_poses",
    "split_projection",
    "stereo_baseline_from_projections",
]

KITTI_ODOMETRY_FPS = 10.0


def read_kitti_calib(path: Union[str, Path]) -> dict[str, np.ndarray]:
    """Parse a KITTI ``calib.txt`` (``KEY: numbers`` lines) into arrays; P* and Tr become 3x4."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calibration file not found: {path}")
    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, rest = line.partition(":")
        if not sep:
            raise ValueError(f"{path}:{lineno}: expected 'KEY: numbers', got {line[:40]!r}")
        try:
            values = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric value in {key.strip()!r}") from None
        key = key.strip()
        if key.startswith("P") or key == "Tr":
            if values.size != 12:
                raise ValueError(f"{path}:{lineno}: {key} needs 12 numbers, got {values.size}")
            values = values.reshape(3, 4)
        out[key] = values
    return out


def split_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K 3x3, t 3) with ``P = K [I | t]`` for a rectified KITTI projection matrix."""
    K = np.array(P[:, :3], dtype=np.float64)
    t = np.linalg.solve(K, P[:, 3])
    return K, t


def stereo_baseline_from_projections(P_left: np.ndarray, P_right: np.ndarray) -> float:
    """x offset (metres) of the right camera from the left one: ``t_left.x - t_right.x``."""
    return float(split_projection(P_left)[1][0] - split_projection(P_right)[1][0])


def read_times(path: Path, n: int) -> Optional[np.ndarray]:
    """Per-frame stamps from ``times.txt`` (one float per line), or None when the file is absent."""
    if not path.is_file():
        return None
    try:
        stamps = np.array([float(v) for v in path.read_text().split()], dtype=np.float64)
    except ValueError:
        raise ValueError(f"{path}: expected one number (seconds) per line") from None
    if stamps.size < n:
        raise ValueError(f"{path}: {stamps.size} stamps for {n} images")
    return stamps[:n]


class KittiOdometry(FrameSource):
    """One KITTI odometry sequence as a FrameSource.

    Args:
        root: the dataset root (holding ``sequences/``) or a sequence directory ``.../sequences/06``.
        sequence: sequence name under ``root/sequences`` (ignored when ``root`` is a sequence dir; None
            picks the only sequence present).
        camera: "left" (camera 0 gray / 2 colour) or "right" (1 / 3).
        color: True for image_2/3, False for image_0/1, None = whichever exists (grayscale first).
        stereo: also load the other camera of the pair into ``Frame.stereo_image``;
            ``stereo_baseline`` is the signed x offset of that partner camera (+0.537 m for the
            right camera seen from the left, negative when ``camera="right"``).
        frames: sub-selection (slice / range / list) of the sequence.
        gray: convert colour images to gray on load.
    """

    uniform_size = True  # one camera's PNGs: an image of another size is a broken file

    def __init__(self, root: Union[str, Path], sequence: Optional[str] = "06", camera: str = "left",
                 color: Optional[bool] = None, stereo: bool = False, frames: FrameSelection = None,
                 gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"KITTI odometry directory not found: {root}")
        if (root / "calib.txt").is_file():
            self.seq_dir = root
            self.sequence = root.name
            self.root = root.parent.parent if root.parent.name == "sequences" else root.parent
        else:
            seqs = root / "sequences"
            if not seqs.is_dir():
                raise FileNotFoundError(
                    f"{root}: neither a KITTI sequence (calib.txt) nor a root with sequences/"
                )
            if sequence is None:
                found = sorted(p.name for p in seqs.iterdir() if (p / "calib.txt").is_file())
                if len(found) != 1:
                    raise ValueError(f"{seqs}: choose a sequence (sequence=...), found {found}")
                sequence = found[0]
            sequence = str(sequence)
            if sequence.isdigit() and len(sequence) < 2:
                sequence = sequence.zfill(2)
            self.seq_dir = seqs / sequence
            self.sequence = sequence
            self.root = root
            if not self.seq_dir.is_dir():
                avail = sorted(p.name for p in seqs.iterdir() if p.is_dir())
                raise FileNotFoundError(f"KITTI sequence {sequence!r} not found in {seqs} (have {avail})")

        if camera not in ("left", "right"):
            raise ValueError(f"camera must be 'left' or 'right', got {camera!r}")
        self.camera = camera
        if color is None:
            color = not (self.seq_dir / "image_0").is_dir() and (self.seq_dir / "image_2").is_dir()
        self.color = bool(color)
        left_id, right_id = (2, 3) if self.color else (0, 1)
        self.cam_id = left_id if camera == "left" else right_id
        self.partner_id = right_id if camera == "left" else left_id
        self.stereo = bool(stereo)

        calib_path = self.seq_dir / "calib.txt"
        calib = read_kitti_calib(calib_path)
        needed = [self.cam_id] + ([self.partner_id] if self.stereo else [])
        for cid in needed:
            if f"P{cid}" not in calib:
                raise ValueError(f"{calib_path}: no P{cid} line (needed for camera image_{cid})")
        self.calib = calib
        self.K, t_cam = split_projection(calib[f"P{self.cam_id}"])
        self.T_cam0_cam = np.eye(4)
        self.T_cam0_cam[:3, 3] = -t_cam
        self.baseline: Optional[float] = None
        if self.stereo:
            t_partner = split_projection(calib[f"P{self.partner_id}"])[1]
            self.baseline = float(t_cam[0] - t_partner[0])

        self.image_dir = self.seq_dir / f"image_{self.cam_id}"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"KITTI image folder not found: {self.image_dir}")
        self.files = sorted(self.image_dir.glob("*.png"))
        if not self.files:
            raise FileNotFoundError(f"no PNG images in {self.image_dir}")
        if self.stereo:
            self.partner_dir = self.seq_dir / f"image_{self.partner_id}"
            if not self.partner_dir.is_dir():
                raise FileNotFoundError(f"KITTI stereo partner folder not found: {self.partner_dir}")

        n = len(self.files)
        times = read_times(self.seq_dir / "times.txt", n)
        self._stamps = times if times is not None else np.arange(n, dtype=np.float64) / KITTI_ODOMETRY_FPS
        self.fps = KITTI_ODOMETRY_FPS if times is None else _rate_or_default(times)

        self.pose_path = self.root / "poses" / f"{self.sequence}.txt"
        self.poses: Optional[np.ndarray] = None
        if self.pose_path.is_file():
            poses = read_kitti_poses(self.pose_path)
            if len(poses) < n:
                raise ValueError(f"{self.pose_path}: {len(poses)} poses for {n} images in {self.image_dir}")
            self.poses = poses[:n] @ self.T_cam0_cam
        self.depth_dir = self.seq_dir / "depth"
        self.flow_dir = self.seq_dir / "flow"
        self.occlusion_dir = self.seq_dir / "occlusion"
        self.moving_dir = self.seq_dir / "moving"
        ref = camera == "left"
        self._masks = ref and (self.occlusion_dir.is_dir() or self.moving_dir.is_dir())
        self.has_gt_pose = self.poses is not None
        self.has_gt_depth = ref and self.depth_dir.is_dir()
        self.has_gt_flow = ref and self.flow_dir.is_dir()
        self.has_stereo = self.stereo
        self.name = f"kitti_odometry:{self.sequence}:image_{self.cam_id}"

    def _num_raw(self) -> int:
        return len(self.files)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        path = self.files[raw_index]
        frame = Frame(image=read_image(path), K=self.K.copy(), stamp=float(self._stamps[raw_index]),
                      index=_file_index(path, raw_index), source=self.name)
        if self.poses is not None:
            frame.T_world_cam = self.poses[raw_index].copy()
        if self.stereo:
            frame.stereo_image = read_image(self.partner_dir / path.name)
            frame.stereo_baseline = self.baseline
        if self.has_gt_depth:
            depth_path = self.depth_dir / path.name
            if depth_path.is_file():
                frame.depth = read_depth_png(depth_path, scale=1000.0)
        if self.has_gt_flow:
            flow_path = self.flow_dir / path.name
            if flow_path.is_file():
                from depth_pose_ros.data.kitti_flow import read_kitti_flow_png

                flow, valid = read_kitti_flow_png(flow_path)
                flow[~valid] = np.nan
                frame.flow_next = flow
        if self._masks:
            frame.occlusion_next = _read_mask(self.occlusion_dir / path.name)
            frame.moving_mask = _read_mask(self.moving_dir / path.name)
        return frame


def _read_mask(path: Path) -> Optional[np.ndarray]:
    """HxW bool of an 8-bit mask PNG (nonzero = set), None when the file does not exist."""
    if not path.is_file():
        return None
    image = read_image(path)
    return (image if image.ndim == 2 else image[..., 0]) > 0


def _file_index(path: Path, fallback: int) -> int:
    """Frame number from the file name (``000042.png`` -> 42), else the position."""
    return int(path.stem) if path.stem.isdigit() else fallback


def _rate_or_default(stamps: np.ndarray) -> float:
    d = np.diff(stamps)
    d = d[d > 0]
    return float(1.0 / np.median(d)) if d.size else KITTI_ODOMETRY_FPS
