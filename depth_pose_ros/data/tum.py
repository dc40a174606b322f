"""TUM RGB-D sequences: the standard layout and the small "pairs" layout of the shared test data.

Standard layout (as downloaded, e.g. ``rgbd_dataset_freiburg1_xyz/``)::

    rgb.txt, depth.txt     "timestamp filename" lines ('#' comments)
    groundtruth.txt        "timestamp tx ty tz qx qy qz qw" (camera-to-world, 100 Hz motion capture)
    rgb/*.png, depth/*.png colour 640x480, 16-bit depth with value / 5000 = metres (0 = invalid)

Every colour frame is matched to the depth image nearest in time if it is within 0.02 s (TUM's
``associate.py`` rule); with ``require_depth=True`` (default) colour frames without such a match are
dropped, as the benchmark tools do. The GT pose at a colour stamp is interpolated (linear
translation, slerp rotation) between the two motion-capture samples around it when they are at most
``max_gt_gap`` apart, else taken from the nearest sample within 0.02 s, else left unknown.

Pairs layout (``tum_fr1_xyz_pairs``): ``case_*/img_prev.png, img_curr.png, dep_prev.png, dep_curr.png,
pose_prev.txt, pose_curr.txt`` (one "tx ty tz qx qy qz qw" line each). Pass a case folder (2 frames)
or the folder holding the cases (2 frames per case, in case order). There are no stamps in this
layout: frames of case ``k`` (0-based) get ``1000 k`` and ``1000 k + 1/30`` s, so consecutive frames
inside a case are one 30 Hz period apart and different cases are separated by a large gap that clip
datasets treat as a sequence break.

Intrinsics default to the published values of the Freiburg camera named in the directory name
(freiburg1/2/3; freiburg1 otherwise), and so does the lens distortion: frames carry that camera's published
plumb_bob coefficients in ``Frame.distortion`` (none for freiburg3, whose images are already undistorted; none
either when ``K`` is given). The images and depth maps are returned as recorded, not undistorted: the
Estimator and the training clips undistort them (``data.frame.undistort_frame``).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import FrameSelection, FrameSource, as_K, read_depth_png, read_image
from depth_pose_ros.geometry.distortion import Distortion

TUM_DEPTH_SCALE = 5000.0
TUM_FPS = 30.0
TUM_MAX_ASSOC_DIFF = 0.02
# fx, fy, cx, cy of the three Freiburg Kinects (TUM RGB-D "file formats" page, ROS default for fr3).
TUM_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
PAIRS_CASE_GAP = 1000.0  # seconds between the synthetic stamps of two cases of the pairs layout

_PAIR_FILES = ("img_prev.png", "img_curr.png")


def is_tum_directory(path: Path) -> bool:
    """True for a standard TUM sequence, a pairs case folder, or a folder of pairs cases."""
    if (path / "rgb.txt").is_file():
        return True
    if _is_case_dir(path):
        return True
    return any(_is_case_dir(p) for p in path.iterdir() if p.is_dir())


def _is_case_dir(path: Path) -> bool:
    return all((path / f).is_file() for f in _PAIR_FILES)


def pose_from_tum(values: Any) -> np.ndarray:
    """4x4 float64 camera-to-world pose from ``tx ty tz qx qy qz qw`` (quaternion normalised)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (7,):
        raise ValueError(f"TUM pose needs 7 numbers (tx ty tz qx qy qz qw), got {v.size}")
    T = np.eye(4)
    T[:3, :3] = Rotation.from_quat(v[3:]).as_matrix()  # scipy quaternions are (x, y, z, w) like TUM
    T[:3, 3] = v[:3]
    return T


def read_tum_list(path: Path) -> tuple[np.ndarray, list[list[str]]]:
    """(stamps, remaining fields per line) of a TUM text file; '#' lines are comments."""
    if not path.is_file():
        raise FileNotFoundError(f"TUM list file not found: {path}")
    stamps, rest = [], []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.replace(",", " ").split()
        try:
            stamps.append(float(parts[0]))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: expected a timestamp first, got {parts[0]!r}") from None
        rest.append(parts[1:])
    return np.asarray(stamps, dtype=np.float64), rest


def associate_nearest(a: np.ndarray, b: np.ndarray, max_diff: float) -> np.ndarray:
    """For each stamp of ``a``, the index of the nearest stamp of ``b`` within ``max_diff``, else -1."""
    if b.size == 0:
        return np.full(a.shape, -1, dtype=np.int64)
    order = np.argsort(b, kind="stable")
    bs = b[order]
    pos = np.searchsorted(bs, a)
    lo = np.clip(pos - 1, 0, bs.size - 1)
    hi = np.clip(pos, 0, bs.size - 1)
    pick = np.where(np.abs(a - bs[lo]) <= np.abs(bs[hi] - a), lo, hi)
    out = order[pick]
    out[np.abs(b[out] - a) > max_diff] = -1
    return out


def interpolate_poses(gt_stamps: np.ndarray, gt_poses: np.ndarray, query: np.ndarray,
                      max_gap: float = 0.1,
                      max_diff: float = TUM_MAX_ASSOC_DIFF) -> list[Optional[np.ndarray]]:
    """Camera-to-world poses at ``query`` stamps from sampled poses (translation lerp, rotation slerp).

    A query between two samples at most ``max_gap`` s apart is interpolated; otherwise the nearest
    sample within ``max_diff`` s is used; otherwise the pose is unknown (None).
    """
    order = np.argsort(gt_stamps, kind="stable")
    ts, Ps = gt_stamps[order], gt_poses[order]
    out: list[Optional[np.ndarray]] = [None] * len(query)
    if ts.size == 0:
        return out
    nearest = associate_nearest(query, ts, max_diff)
    pos = np.searchsorted(ts, query, side="right")
    for i, (t, p) in enumerate(zip(query, pos)):
        if 0 < p < ts.size and 0 < ts[p] - ts[p - 1] <= max_gap + 1e-9:
            a, b = Ps[p - 1], Ps[p]
            w = (t - ts[p - 1]) / (ts[p] - ts[p - 1])
            slerp = Slerp([0.0, 1.0], Rotation.from_matrix(np.stack([a[:3, :3], b[:3, :3]])))
            T = np.eye(4)
            T[:3, :3] = slerp([w]).as_matrix()[0]
            T[:3, 3] = (1 - w) * a[:3, 3] + w * b[:3, 3]
            out[i] = T
        elif nearest[i] >= 0:
            out[i] = Ps[nearest[i]].copy()
    return out


#: plumb_bob distortion of the Freiburg cameras (TUM RGB-D's published calibration; fr3 images are
#: already undistorted). The TUM images are stored as recorded, so the pipeline must undistort them.
TUM_DISTORTION = {
    "freiburg1": (0.2624, -0.9531, -0.0054, 0.0026, 1.1633),
    "freiburg2": (0.2312, -0.7849, -0.0033, -0.0001, 0.9172),
    "freiburg3": (0.0, 0.0, 0.0, 0.0, 0.0),
}


def _freiburg_camera(path: Path) -> str:
    match = re.search(r"(freiburg[123]|fr[123])", str(path.resolve()).lower())
    return "freiburg" + match.group(1)[-1] if match else "freiburg1"


def default_tum_distortion(path: Path) -> Optional[Distortion]:
    """Lens distortion of the Freiburg camera named in the path (freiburg1 when none is named)."""
    return Distortion.create("plumb_bob", TUM_DISTORTION[_freiburg_camera(path)])


def default_tum_K(path: Path) -> np.ndarray:
    """Intrinsics of the Freiburg camera named in the path (freiburg1 when none is named)."""
    fx, fy, cx, cy = TUM_INTRINSICS[_freiburg_camera(path)]
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], dtype=np.float64)


class TumRgbd(FrameSource):
    """A TUM RGB-D sequence (standard or pairs layout) as a FrameSource with GT depth and poses.

    Args:
        root: sequence folder (rgb.txt), a pairs case folder or a folder of cases.
        K: intrinsics override (3x3, (fx, fy, cx, cy) or YAML path; the frames then carry no distortion);
            default: Freiburg camera by name (K and distortion).
        require_depth: standard layout only: drop colour frames without a depth image within 0.02 s.
        max_gt_gap: largest motion-capture gap (s) to interpolate the GT pose across.
        frames: sub-selection; gray: convert to gray on load.
    """

    uniform_size = True  # one Kinect's PNGs: an image of another size is a broken file

    def __init__(self, root: Union[str, Path], K: Any = None, require_depth: bool = True,
                 max_gt_gap: float = 0.1, frames: FrameSelection = None, gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"TUM RGB-D directory not found: {root}")
        self.root = root
        self.K = as_K(K) if K is not None else default_tum_K(root)
        self.distortion = None if K is not None else default_tum_distortion(root)
        self.fps = TUM_FPS
        self.name = f"tum:{root.name}"
        self.image_paths: list[Path] = []
        self.depth_paths: list[Optional[Path]] = []
        self.poses: list[Optional[np.ndarray]] = []
        if (root / "rgb.txt").is_file():
            stamps = self._load_standard(require_depth, max_gt_gap)
        else:
            stamps = self._load_pairs()
        self._stamps = stamps
        if not self.image_paths:
            raise ValueError(f"{root}: no frames (no colour image with an associated depth image?)")
        self.has_gt_depth = any(p is not None for p in self.depth_paths)
        self.has_gt_pose = any(p is not None for p in self.poses)

    def _load_standard(self, require_depth: bool, max_gt_gap: float) -> np.ndarray:
        rgb_t, rgb_rest = read_tum_list(self.root / "rgb.txt")
        depth_file = self.root / "depth.txt"
        if depth_file.is_file():
            depth_t, depth_rest = read_tum_list(depth_file)
            match = associate_nearest(rgb_t, depth_t, TUM_MAX_ASSOC_DIFF)
        else:
            depth_rest, match = [], np.full(rgb_t.shape, -1, dtype=np.int64)
        keep = match >= 0 if (require_depth and depth_file.is_file()) else np.ones(rgb_t.shape, bool)
        order = np.argsort(rgb_t, kind="stable")
        order = order[keep[order]]
        for i in order:
            self.image_paths.append(self.root / rgb_rest[i][0])
            self.depth_paths.append(self.root / depth_rest[match[i]][0] if match[i] >= 0 else None)
        stamps = rgb_t[order]
        gt_file = self.root / "groundtruth.txt"
        if gt_file.is_file():
            gt_t, gt_rest = read_tum_list(gt_file)
            try:
                gt_T = np.stack([pose_from_tum([float(v) for v in r]) for r in gt_rest]) if gt_rest else \
                    np.zeros((0, 4, 4))
            except ValueError as exc:
                raise ValueError(f"{gt_file}: {exc}") from None
            self.poses = interpolate_poses(gt_t, gt_T, stamps, max_gap=max_gt_gap)
        else:
            self.poses = [None] * len(stamps)
        return stamps

    def _load_pairs(self) -> np.ndarray:
        if _is_case_dir(self.root):
            cases = [self.root]
        else:
            cases = sorted((p for p in self.root.iterdir() if p.is_dir() and _is_case_dir(p)),
                           key=lambda p: _case_key(p.name))
        stamps = []
        for k, case in enumerate(cases):
            for j, tag in enumerate(("prev", "curr")):
                self.image_paths.append(case / f"img_{tag}.png")
                dep = case / f"dep_{tag}.png"
                self.depth_paths.append(dep if dep.is_file() else None)
                pose_file = case / f"pose_{tag}.txt"
                self.poses.append(_read_single_pose(pose_file) if pose_file.is_file() else None)
                stamps.append(PAIRS_CASE_GAP * k + j / TUM_FPS)
        return np.asarray(stamps, dtype=np.float64)

    def _num_raw(self) -> int:
        return len(self.image_paths)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        frame = Frame(image=read_image(self.image_paths[raw_index]), K=self.K.copy(),
                      stamp=float(self._stamps[raw_index]), index=raw_index, source=self.name,
                      distortion=self.distortion)
        dep = self.depth_paths[raw_index]
        if dep is not None:
            frame.depth = read_depth_png(dep, scale=TUM_DEPTH_SCALE)
            if frame.depth.shape != frame.image.shape[:2]:
                raise ValueError(f"{dep}: depth size {frame.depth.shape} differs from the colour image")
        pose = self.poses[raw_index]
        frame.T_world_cam = None if pose is None else pose.copy()
        return frame


def _case_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _read_single_pose(path: Path) -> np.ndarray:
    try:
        values = [float(v) for v in path.read_text().split()]
        return pose_from_tum(values)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
