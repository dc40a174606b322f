"""KITTI raw drives with LiDAR depth ground truth, and Eigen split files.

Layout (as downloaded; the calibration folder is the date folder above the drive)::

    2011_09_26/calib_cam_to_cam.txt             S_rect_0k, R_rect_00, P_rect_0k, ...
    2011_09_26/calib_velo_to_cam.txt            R (9), T (3): velodyne -> camera 0 (unrectified)
    2011_09_26/2011_09_26_drive_0002_sync/
        image_02/data/0000000000.png            left colour (image_00/01 gray, image_03 right colour)
        image_02/timestamps.txt                 "2011-09-26 13:02:25.964389445" per frame
        velodyne_points/data/0000000000.bin     float32 x y z reflectance per point

Depth GT follows the standard protocol of the Eigen split evaluation: keep points in front of the
scanner (x > 0 in velodyne coordinates), map them with ``P_rect_0k @ R_rect_00 @ T_cam0_velo``,
keep those that land inside the image, and when several points land on one pixel keep the nearest.
Depth is the z of the rectified camera k. Pixels are rounded to the nearest integer coordinate
(pixel centres at integers, the project convention); ``legacy_pixel_offset=True`` additionally
subtracts 1 like the MATLAB-derived code behind the published ``gt_depths.npz`` files, for
bit-exact comparison with those.

Eigen split files list ``<date>/<drive> <frame> <l|r>`` per line; :class:`KittiRawSplit` serves the
listed frames (each with GT depth) from a KITTI raw root.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Union

import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.kitti_odometry import split_projection
from depth_pose_ros.data.source import FrameSelection, FrameSource, read_image

KITTI_RAW_FPS = 10.0
_CAMERA_ALIASES = {"left": "02", "right": "03", "l": "02", "r": "03", "gray_left": "00", "gray_right": "01"}
_PARTNER = {"00": "01", "01": "00", "02": "03", "03": "02"}


def read_calib_file(path: Union[str, Path]) -> dict[str, np.ndarray]:
    """``KEY: numbers`` lines of a KITTI raw calibration file; non-numeric entries (dates) skipped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"KITTI calibration file not found: {path}")
    out: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        try:
            out[key.strip()] = np.array([float(v) for v in rest.split()], dtype=np.float64)
        except ValueError:
            continue  # calib_time and similar text fields
    return out


@dataclass
class RawCalibration:
    """What depth projection and intrinsics need from a KITTI raw date folder."""

    R_rect_00: np.ndarray  # 3x3 rectifying rotation of camera 0
    P_rect: dict[str, np.ndarray]  # camera id ("00".."03") -> 3x4 rectified projection
    T_cam0_velo: np.ndarray  # 4x4: maps velodyne points into (unrectified) camera 0
    image_size: dict[str, tuple[int, int]]  # camera id -> (width, height) from S_rect_0k

    def velo_to_image(self, camera: str) -> np.ndarray:
        """3x4 matrix mapping homogeneous velodyne points to homogeneous pixels of rectified ``camera``."""
        R = np.eye(4)
        R[:3, :3] = self.R_rect_00
        return self.P_rect[camera] @ R @ self.T_cam0_velo


def read_raw_calibration(calib_dir: Union[str, Path]) -> RawCalibration:
    """Parse ``calib_cam_to_cam.txt`` and ``calib_velo_to_cam.txt`` of a KITTI raw date folder."""
    calib_dir = Path(calib_dir)
    c2c_path = calib_dir / "calib_cam_to_cam.txt"
    v2c_path = calib_dir / "calib_velo_to_cam.txt"
    c2c = read_calib_file(c2c_path)
    v2c = read_calib_file(v2c_path)
    if c2c.get("R_rect_00", np.empty(0)).size != 9:
        raise ValueError(f"{c2c_path}: missing or malformed R_rect_00 (9 numbers)")
    P_rect, sizes = {}, {}
    for cam in ("00", "01", "02", "03"):
        P = c2c.get(f"P_rect_{cam}")
        if P is not None:
            if P.size != 12:
                raise ValueError(f"{c2c_path}: P_rect_{cam} needs 12 numbers, got {P.size}")
            P_rect[cam] = P.reshape(3, 4)
        S = c2c.get(f"S_rect_{cam}")
        if S is not None and S.size == 2:
            sizes[cam] = (int(round(S[0])), int(round(S[1])))
    if v2c.get("R", np.empty(0)).size != 9 or v2c.get("T", np.empty(0)).size != 3:
        raise ValueError(f"{v2c_path}: missing or malformed R (9 numbers) / T (3 numbers)")
    T = np.eye(4)
    T[:3, :3] = v2c["R"].reshape(3, 3)
    T[:3, 3] = v2c["T"]
    return RawCalibration(R_rect_00=c2c["R_rect_00"].reshape(3, 3), P_rect=P_rect, T_cam0_velo=T,
                          image_size=sizes)


def read_velodyne_bin(path: Union[str, Path]) -> np.ndarray:
    """N x 4 float32 (x, y, z, reflectance) points of a KITTI velodyne scan."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"velodyne scan not found: {path}")
    size = path.stat().st_size
    if size % 16:
        raise ValueError(f"velodyne scan of {size} bytes is not a whole number of 16-byte points "
                         f"(truncated?): {path}")
    return np.fromfile(path, dtype=np.float32).reshape(-1, 4)


def velodyne_depth_map(points: np.ndarray, velo_to_image: np.ndarray, height: int, width: int,
                       legacy_pixel_offset: bool = False) -> np.ndarray:
    """HxW float32 z-depth (metres, 0 = no point) of velodyne points projected into an image.

    ``velo_to_image`` is the 3x4 map from homogeneous velodyne points to homogeneous pixels
    (:meth:`RawCalibration.velo_to_image`). Nearest point wins where several hit one pixel.
    """
    pts = np.asarray(points, dtype=np.float64)[:, :3]
    pts = pts[pts[:, 0] > 0]  # in front of the scanner
    proj = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(velo_to_image).T
    z = proj[:, 2]
    front = z > 1e-6
    proj, z = proj[front], z[front]
    u = np.rint(proj[:, 0] / z).astype(np.int64)
    v = np.rint(proj[:, 1] / z).astype(np.int64)
    if legacy_pixel_offset:
        u -= 1
        v -= 1
    inside = (u >= 0) & (v >= 0) & (u < width) & (v < height)
    u, v, z = u[inside], v[inside], z[inside]
    depth = np.full(height * width, np.inf)
    np.minimum.at(depth, v * width + u, z)
    depth[~np.isfinite(depth)] = 0.0
    return depth.reshape(height, width).astype(np.float32)


def parse_kitti_timestamp(text: str) -> float:
    """POSIX seconds (UTC) of ``2011-09-26 13:02:25.964389445`` (nanosecond digits kept)."""
    text = text.strip()
    main, _, frac = text.partition(".")
    base = datetime.strptime(main, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0." + frac) if frac else 0.0)


def resolve_camera(camera: str) -> str:
    """Camera id "00".."03" from "left"/"right"/"gray_left"/"gray_right"/"02"/"image_02"/..."""
    cam = _CAMERA_ALIASES.get(str(camera).lower(), str(camera).lower().removeprefix("image_"))
    if cam in ("0", "1", "2", "3"):
        cam = "0" + cam
    if cam not in _PARTNER:
        raise ValueError(f"camera must be left/right/gray_left/gray_right or 00..03, got {camera!r}")
    return cam


class KittiRaw(FrameSource):
    """One KITTI raw drive (``..._sync`` folder) as a FrameSource with velodyne depth GT.

    Args:
        drive_dir: e.g. ``.../2011_09_26/2011_09_26_drive_0002_sync``.
        calib_dir: folder with the calib_*.txt files (default: the drive's parent, the date folder).
        camera: "left" (02), "right" (03), or an id "00".."03".
        stereo: load the other camera of the pair (stereo_baseline = signed x offset of the partner).
        with_depth: project the velodyne scan of each frame into a depth map when it exists.
        legacy_pixel_offset: see module docstring.
        frames: sub-selection; gray: convert to gray on load.
    """

    uniform_size = True  # one camera's PNGs: an image of another size is a broken file

    def __init__(self, drive_dir: Union[str, Path], calib_dir: Union[str, Path, None] = None,
                 camera: str = "left", stereo: bool = False, with_depth: bool = True,
                 legacy_pixel_offset: bool = False, frames: FrameSelection = None,
                 gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        drive_dir = Path(drive_dir).expanduser()
        if not drive_dir.is_dir():
            raise FileNotFoundError(f"KITTI raw drive directory not found: {drive_dir}")
        self.drive_dir = drive_dir
        self.calib_dir = Path(calib_dir).expanduser() if calib_dir is not None else drive_dir.parent
        self.camera = resolve_camera(camera)
        self.calib = read_raw_calibration(self.calib_dir)
        if self.camera not in self.calib.P_rect:
            raise ValueError(f"{self.calib_dir / 'calib_cam_to_cam.txt'}: no P_rect_{self.camera}")
        self.K, t_cam = split_projection(self.calib.P_rect[self.camera])
        self.legacy_pixel_offset = bool(legacy_pixel_offset)
        self.image_dir = drive_dir / f"image_{self.camera}" / "data"
        if not self.image_dir.is_dir():
            raise FileNotFoundError(f"KITTI raw image folder not found: {self.image_dir}")
        self.files = sorted(self.image_dir.glob("*.png"))
        if not self.files:
            raise FileNotFoundError(f"no PNG images in {self.image_dir}")
        self.stereo = bool(stereo)
        self.baseline: Optional[float] = None
        if self.stereo:
            partner = _PARTNER[self.camera]
            if partner not in self.calib.P_rect:
                raise ValueError(f"{self.calib_dir / 'calib_cam_to_cam.txt'}: no P_rect_{partner} for stereo")
            self.partner_dir = drive_dir / f"image_{partner}" / "data"
            if not self.partner_dir.is_dir():
                raise FileNotFoundError(f"KITTI raw stereo partner folder not found: {self.partner_dir}")
            self.baseline = float(t_cam[0] - split_projection(self.calib.P_rect[partner])[1][0])
        self.velo_dir = drive_dir / "velodyne_points" / "data"
        self.with_depth = bool(with_depth) and self.velo_dir.is_dir()
        self._velo_to_image = self.calib.velo_to_image(self.camera)

        # Frame number of each file (the line of timestamps.txt it belongs to).
        self.numbers = [int(p.stem) if p.stem.isdigit() else i for i, p in enumerate(self.files)]
        self._by_number = {num: i for i, num in enumerate(self.numbers)}
        ts_path = drive_dir / f"image_{self.camera}" / "timestamps.txt"
        if ts_path.is_file():
            lines = [ln for ln in ts_path.read_text().splitlines() if ln.strip()]
            if len(lines) <= max(self.numbers):
                raise ValueError(f"{ts_path}: {len(lines)} stamps but frames up to {max(self.numbers)}")
            try:
                self._stamps = np.array([parse_kitti_timestamp(lines[num]) for num in self.numbers])
            except ValueError:
                raise ValueError(f"{ts_path}: expected 'YYYY-MM-DD HH:MM:SS.fffffffff' lines") from None
        else:
            self._stamps = np.asarray(self.numbers, dtype=np.float64) / KITTI_RAW_FPS
        self.fps = KITTI_RAW_FPS
        self.has_gt_depth = self.with_depth
        self.has_stereo = self.stereo
        self.name = f"kitti_raw:{drive_dir.name}:image_{self.camera}"

    def _num_raw(self) -> int:
        return len(self.files)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def depth_for(self, raw_index: int, height: int, width: int) -> Optional[np.ndarray]:
        """Velodyne depth map of frame ``raw_index`` (None when its scan file is missing)."""
        scan = self.velo_dir / (self.files[raw_index].stem + ".bin")
        if not scan.is_file():
            return None
        return velodyne_depth_map(read_velodyne_bin(scan), self._velo_to_image, height, width,
                                  self.legacy_pixel_offset)

    def _read(self, raw_index: int) -> Frame:
        path = self.files[raw_index]
        image = read_image(path)
        frame = Frame(image=image, K=self.K.copy(), stamp=float(self._stamps[raw_index]),
                      index=self.numbers[raw_index], source=self.name)
        if self.stereo:
            frame.stereo_image = read_image(self.partner_dir / path.name)
            frame.stereo_baseline = self.baseline
        if self.with_depth:
            frame.depth = self.depth_for(raw_index, image.shape[0], image.shape[1])
        return frame

    def raw_index_of(self, frame_number: int) -> int:
        """Position of the file ``NNNNNNNNNN.png`` with that frame number in this drive."""
        if frame_number not in self._by_number:
            raise IndexError(f"{self.image_dir}: no frame {frame_number:010d}.png")
        return self._by_number[frame_number]


@dataclass(frozen=True)
class EigenSplitEntry:
    """One line of an Eigen split file: ``2011_09_26/2011_09_26_drive_0002_sync 0000000069 l``."""

    drive: str  # "<date>/<drive folder>"
    frame: int
    side: str  # "l" (image_02) or "r" (image_03)

    @property
    def date(self) -> str:
        return self.drive.split("/")[0]


def read_eigen_split(path: Union[str, Path]) -> list[EigenSplitEntry]:
    """Parse a split file (one ``<date>/<drive> <frame> <l|r>`` per line; blank lines ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    entries = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or parts[2] not in ("l", "r") or not parts[1].isdigit() or "/" not in parts[0]:
            raise ValueError(
                f"{path}:{lineno}: expected '<date>/<drive> <frame> <l|r>', got {line.strip()!r}"
            )
        entries.append(EigenSplitEntry(drive=parts[0].strip("/"), frame=int(parts[1]), side=parts[2]))
    return entries


class KittiRawSplit(FrameSource):
    """The frames listed in an Eigen split file, served from a KITTI raw root (with depth GT).

    Frames come from different drives, so they are not a continuous sequence (no clips); ``stamp``
    is each frame's own timestamp. One :class:`KittiRaw` per drive is opened lazily and cached.
    """

    def __init__(self, root: Union[str, Path], split: Union[str, Path, list[EigenSplitEntry]],
                 with_depth: bool = True, legacy_pixel_offset: bool = False,
                 frames: FrameSelection = None, gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FileNotFoundError(f"KITTI raw root not found: {self.root}")
        self.entries = list(split) if isinstance(split, list) else read_eigen_split(split)
        if not self.entries:
            raise ValueError(f"split {split} lists no frames")
        self.with_depth = with_depth
        self.legacy_pixel_offset = legacy_pixel_offset
        self._drives: dict[tuple[str, str], KittiRaw] = {}
        self.name = f"kitti_raw_split:{Path(str(split)).name if not isinstance(split, list) else 'list'}"
        self.fps = None
        self.has_gt_depth = with_depth
        self._stamps: Optional[np.ndarray] = None

    def _drive(self, entry: EigenSplitEntry) -> KittiRaw:
        key = (entry.drive, entry.side)
        if key not in self._drives:
            self._drives[key] = KittiRaw(self.root / entry.drive, calib_dir=self.root / entry.date,
                                         camera=entry.side, with_depth=self.with_depth,
                                         legacy_pixel_offset=self.legacy_pixel_offset)
        return self._drives[key]

    def _num_raw(self) -> int:
        return len(self.entries)

    def _raw_stamps(self) -> np.ndarray:
        if self._stamps is None:
            self._stamps = np.array([self._drive(e)._stamps[self._drive(e).raw_index_of(e.frame)]
                                     for e in self.entries], dtype=np.float64)
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        entry = self.entries[raw_index]
        drive = self._drive(entry)
        frame = drive._read(drive.raw_index_of(entry.frame))
        frame.source = f"kitti_raw:{entry.drive}:{entry.frame:010d}:{entry.side}"
        return frame
