"""The common shape of every frame source, and ``open_source`` which picks the right one for a path.

Every reader (KITTI odometry/raw, TUM RGB-D, image folder, video, rosbag, synthetic world) is a
``FrameSource``: random access (``len(src)``, ``src[i] -> Frame``) *and* plain iteration, so a
``torch.utils.data.Dataset`` on top is trivial and streaming consumers (the estimator, the VO) just
loop. Subclasses implement two things only: how many frames the recording holds and how to load one
(:meth:`FrameSource._read`), plus the stamps of all frames (cheap, read at construction) so that clip
datasets can find timestamp gaps without decoding images.

The ``frames`` option selects a sub-range of the recording. Positions in the source (``src[i]``) are
positions inside that selection, while ``Frame.index`` keeps the recording's own frame number, so
ground truth stays easy to align with files on disk.

One bad file must not cost a whole run: a frame that cannot be read or decoded (corrupt or unreadable
file, or a different image size mid-sequence in a source whose frames share one size) raises
:class:`FrameReadError` on random access and is *skipped* by iteration. Either way it is logged once
with a warning and kept in ``src.skipped`` (``(index, reason)`` pairs, index in the whole recording) so
that the caller can report it at the end (:func:`skipped_summary`). A source that cannot be opened at
all (missing folder, no images, none of its frames readable) stays an error.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.utils.image import to_gray_u8, to_uint8

FrameSelection = Union[slice, range, Sequence[int], None]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
BAG2_FILE_SUFFIXES = (".mcap", ".db3")

# Default focal length guess for cameras without calibration, as a multiple of the larger image
# side: 1.2 * max(W, H) (horizontal field of view of about 45 deg for a landscape image). It is the
# heuristic SfM tools use for uncalibrated images; depth scale and pose rotation will be off by the
# error of this guess, so callers warn whenever it is used.
GUESSED_FOCAL_FACTOR = 1.2

log = logging.getLogger(__name__)


class FrameReadError(ValueError):
    """One frame of an otherwise readable source could not be read or decoded.

    A ValueError so that callers that treated a corrupt file as bad input keep working; callers that
    can do without the frame (iteration, clip datasets) catch this class only, so real bugs still raise.

    Attributes:
        position: position of the frame in the source (``src[position]``).
        index: the frame's index in the whole recording (as in ``raw_indices`` and ``src.skipped``).
        reason: what went wrong, naming the file where there is one.
    """

    def __init__(self, source: str, position: int, index: int, reason: str) -> None:
        super().__init__(f"{source}: frame {index} cannot be read: {reason}")
        self.source = source
        self.position = int(position)
        self.index = int(index)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # picklable with its fields (multiprocessing re-raises exceptions from their constructor args)
        return (type(self), (self.source, self.position, self.index, self.reason))


# What a reader raises for one bad frame: decoding (ValueError, cv2.error), the file system (OSError),
# truncated containers (EOFError). Anything else is a bug and propagates.
FRAME_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError, cv2.error)


def skipped_summary(skipped: Sequence[tuple[Any, str]], limit: int = 5) -> str:
    """``"skipped 2 unreadable frames: 3 (reason), 17 (reason)"`` for the end-of-run report (the first
    ``limit`` named; an index may be any label, e.g. ``"source:index"``)."""
    n = len(skipped)
    items = ", ".join(f"{index} ({reason})" for index, reason in list(skipped)[:limit])
    more = f", ... ({n - limit} more)" if n > limit else ""
    return f"skipped {n} unreadable frame{'s' if n != 1 else ''}: {items}{more}"


def skipped_records(skipped: Sequence[tuple[Any, str]]) -> list[dict[str, Any]]:
    """``skipped`` as JSON records ``{"index": i, "reason": text}`` (the ``skipped_frames`` metric)."""
    return [{"index": index if isinstance(index, str) else int(index), "reason": str(reason)}
            for index, reason in skipped]


class FrameSource(ABC):
    """A recorded camera sequence: random access and iteration over :class:`Frame` objects.

    Attributes (set by subclasses):
        name: short human-readable description (dataset kind + sequence), also put into ``Frame.source``.
        fps: nominal frame rate in Hz, or None when unknown.
        has_gt_pose: frames carry ``T_world_cam`` (camera-to-world, maps camera points into the world).
        has_gt_depth: frames carry ``depth`` (HxW float32 metres, 0 = unknown).
        has_gt_flow: frames carry ``flow_next`` (forward flow to the next frame).
        has_stereo: frames carry ``stereo_image`` and ``stereo_baseline``.
    """

    name: str = ""
    fps: Optional[float] = None
    has_gt_pose: bool = False
    has_gt_depth: bool = False
    has_gt_flow: bool = False
    has_stereo: bool = False
    #: every frame has the size of the first readable one (one camera writing files); a frame of
    #: another size is then a broken file and is skipped. False where sizes may legitimately differ
    #: (split files over several drives, bags checked against their CameraInfo, in-memory frames).
    uniform_size: bool = False

    def __init__(self, frames: FrameSelection = None, gray: bool = False) -> None:
        self._frames_option = frames
        self.gray = bool(gray)
        self._selection: Optional[np.ndarray] = None  # raw indices, resolved lazily on first use
        self._skipped: dict[int, str] = {}  # raw index -> reason, in the order found
        self._image_hw: Optional[tuple[int, int]] = None  # reference size when ``uniform_size``

    # ---- what subclasses implement -------------------------------------------------------------
    @abstractmethod
    def _num_raw(self) -> int:
        """Number of frames in the whole recording (before the ``frames`` selection)."""

    @abstractmethod
    def _raw_stamps(self) -> np.ndarray:
        """Stamps (seconds, float64) of every frame of the whole recording, without decoding images."""

    @abstractmethod
    def _read(self, raw_index: int) -> Frame:
        """Load frame ``raw_index`` of the whole recording (as stored; gray conversion is done here)."""

    # ---- selection -----------------------------------------------------------------------------
    @property
    def raw_indices(self) -> np.ndarray:
        """Indices into the whole recording of the frames this source presents, in order."""
        if self._selection is None:
            self._selection = resolve_selection(self._frames_option, self._num_raw(), self.name)
        return self._selection

    def stamps(self) -> np.ndarray:
        """Stamps (seconds, float64) of the selected frames; no image is decoded."""
        return np.asarray(self._raw_stamps(), dtype=np.float64)[self.raw_indices]

    # ---- unreadable frames ---------------------------------------------------------------------
    @property
    def skipped(self) -> list[tuple[int, str]]:
        """``(index in the recording, reason)`` of every frame found unreadable so far (this process)."""
        return list(self._skipped.items())

    def _note_unreadable(self, position: int, raw: int, reason: str) -> FrameReadError:
        if raw not in self._skipped:
            self._skipped[raw] = reason
            log.warning("%s: skipping frame %d: %s", self.name, raw, reason)
        return FrameReadError(self.name, position, raw, reason)

    def _reference_hw(self) -> Optional[tuple[int, int]]:
        """Size of the first readable frame of the recording (the size every frame must have)."""
        if self._image_hw is None:
            for raw in range(self._num_raw()):
                try:
                    image = self._read(raw).image
                except FRAME_READ_ERRORS:
                    continue
                self._image_hw = (int(image.shape[0]), int(image.shape[1]))
                break
        return self._image_hw

    # ---- sequence protocol ---------------------------------------------------------------------
    def __len__(self) -> int:
        return int(len(self.raw_indices))

    def __getitem__(self, i: int) -> Frame:
        """Frame at position ``i``; raises :class:`FrameReadError` (and records it) when it is unreadable."""
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"{self.name}: frame index must be an int, got {type(i).__name__}")
        n = len(self)
        j = int(i) + n if i < 0 else int(i)
        if not 0 <= j < n:
            raise IndexError(f"{self.name}: frame {i} out of range (source has {n} frames)")
        raw = int(self.raw_indices[j])
        try:
            frame = self._read(raw)
        except FRAME_READ_ERRORS as exc:
            raise self._note_unreadable(j, raw, str(exc) or type(exc).__name__) from exc
        if self.uniform_size:
            hw = (int(frame.image.shape[0]), int(frame.image.shape[1]))
            if self._image_hw is None and raw == 0:
                self._image_hw = hw  # frame 0 is the reference: no second read
            ref = self._reference_hw()
            if ref is not None and hw != ref:
                raise self._note_unreadable(j, raw, f"image is {hw[1]}x{hw[0]} but the sequence's frames are "
                                                    f"{ref[1]}x{ref[0]}")
        if self.gray:
            frame = to_gray_frame(frame)
        if not frame.source:
            frame = dataclasses.replace(frame, source=self.name)
        return frame

    # ---- open handles (decoders, bag readers) -----------------------------------------------------
    #: attributes holding an open handle, with the value they take in a copy sent to another process
    #: (DataLoader workers): a handle cannot be pickled, so each process opens its own on first access.
    _process_local: dict[str, Any] = {}

    def close(self) -> None:  # noqa: B027 - a no-op default: only readers with open handles override it
        """Release open files or decoders (reopened on the next access); nothing to do for most readers."""

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(self._process_local)
        return state

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # pragma: no cover - interpreter shutdown
            pass

    def __iter__(self) -> Iterator[Frame]:
        """Every readable frame in order; unreadable ones are skipped (see ``skipped``).

        Raises ValueError when not one frame could be read: that is a broken source, not a bad frame.
        """
        yielded = 0
        for i in range(len(self)):
            try:
                frame = self[i]
            except FrameReadError:
                continue
            yielded += 1
            yield frame
        if yielded == 0 and self._skipped:
            first = next(iter(self._skipped.values()))
            raise ValueError(f"{self.name}: none of its {len(self)} frames could be read (first: {first})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} frames, fps={self.fps})"


def resolve_selection(frames: FrameSelection, n: int, what: str = "source") -> np.ndarray:
    """Turn a ``frames`` option (slice, range, sequence of ints or None) into raw indices.

    Slices are clipped like Python slices (``slice(0, 1000)`` on 51 frames gives 51); explicit
    ranges and lists must lie inside the recording, because asking for frame 60 of 51 is a mistake.
    """
    if frames is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(frames, slice):
        return np.arange(n, dtype=np.int64)[frames]
    if isinstance(frames, str):
        return resolve_selection(parse_frames(frames), n, what)
    idx = np.asarray(list(frames), dtype=np.int64)
    if idx.ndim != 1:
        raise ValueError(f"{what}: frames must be a 1-D list of indices")
    bad = idx[(idx < -n) | (idx >= n)]
    if bad.size:
        raise ValueError(f"{what}: frames {bad.tolist()[:5]} out of range (recording has {n} frames)")
    return np.where(idx < 0, idx + n, idx)


def parse_frames(text: str) -> slice:
    """Parse a command-line frame selection ``"START:STOP[:STEP]"`` (Python slice syntax)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"frames {text!r}: expected START:STOP[:STEP]")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise ValueError(f"frames {text!r}: expected integers in START:STOP[:STEP]") from None
    return slice(*values)


# ---- image helpers shared by the readers -------------------------------------------------------
def to_gray_frame(frame: Frame) -> Frame:
    """A copy of the frame with gray images (the ``gray=True`` option of every source)."""
    stereo = None if frame.stereo_image is None else to_gray_u8(frame.stereo_image)
    return dataclasses.replace(frame, image=to_gray_u8(frame.image), stereo_image=stereo)


def decoded_to_rgb(image: np.ndarray) -> np.ndarray:
    """RGB (HxWx3) or gray (HxW) uint8 from an OpenCV-decoded image (BGR / BGRA / gray)."""
    image = to_uint8(image)
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def imread_unchanged(path: Union[str, Path], what: str = "image file") -> np.ndarray:
    """The stored pixels of an image file (``cv2.IMREAD_UNCHANGED``: bit depth and channels as written).

    The one place files are decoded: raises FileNotFoundError / ValueError naming the file (``what``
    says which kind), because cv2.imread only returns None; the readers turn that into a skipped frame.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        raise ValueError(f"cannot decode {what} (corrupt or unsupported format): {path}")
    return raw


def read_image(path: Union[str, Path]) -> np.ndarray:
    """Read an image file as stored: HxWx3 RGB uint8 or HxW gray uint8 (16-bit scaled to 8)."""
    return decoded_to_rgb(imread_unchanged(path, "image file"))


def read_depth_png(path: Union[str, Path], scale: float) -> np.ndarray:
    """HxW float32 metres from a 16-bit depth PNG holding ``metres * scale`` (0 = invalid).

    KITTI-layout depth written by the synthetic world uses millimetres (``scale=1000``); TUM RGB-D
    uses ``scale=5000``.
    """
    raw = imread_unchanged(path, "depth PNG")
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise ValueError(f"depth PNG must be single-channel 16-bit, got {raw.dtype} {raw.shape}: {path}")
    return (raw.astype(np.float32) / np.float32(scale)).astype(np.float32)


# ---- intrinsics helpers --------------------------------------------------------------------------
def K_from_params(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3x3 float64 pinhole matrix."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def guess_intrinsics(width: int, height: int) -> np.ndarray:
    """A plausible K for an uncalibrated camera: f = 1.2 * max(W, H), principal point at the centre.

    The centre is ((W-1)/2, (H-1)/2) because pixel centres sit at integer coordinates.
    """
    f = GUESSED_FOCAL_FACTOR * max(width, height)
    return K_from_params(f, f, (width - 1) / 2.0, (height - 1) / 2.0)


def as_K(value: Any, what: str = "K") -> np.ndarray:
    """Accept intrinsics as a 3x3 matrix, (fx, fy, cx, cy), 9 numbers or an intrinsics YAML path."""
    if isinstance(value, (str, Path)):
        from depth_pose_ros.data.image_folder import read_intrinsics_yaml

        return read_intrinsics_yaml(value).K
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape == (4,):
        return K_from_params(*arr.tolist())
    if arr.size == 9:
        arr = arr.reshape(3, 3)
        if not (np.allclose(arr[2], [0.0, 0.0, 1.0]) and arr[0, 0] > 0 and arr[1, 1] > 0):
            raise ValueError(f"{what}: not a pinhole matrix (last row must be 0 0 1, fx, fy > 0): {arr}")
        return arr.copy()
    raise ValueError(f"{what}: expected a 3x3 matrix, (fx, fy, cx, cy) or a YAML path, got shape {arr.shape}")


def warn_guessed_intrinsics(what: str, K: np.ndarray) -> None:
    """Warn once per source that intrinsics were guessed (depth scale and rotations will be off)."""
    warnings.warn(
        f"{what}: no camera intrinsics given; guessing fx = fy = {K[0, 0]:.1f} "
        f"({GUESSED_FOCAL_FACTOR} x the larger image side), principal point at the image centre. "
        "Pass K=... (or an intrinsics.yaml) for metric results.",
        stacklevel=3,
    )


def nominal_period(stamps: np.ndarray, fps: Optional[float] = None) -> Optional[float]:
    """Frame period in seconds: 1/fps when known, else the median positive stamp difference."""
    if fps:
        return 1.0 / float(fps)
    d = np.diff(np.asarray(stamps, dtype=np.float64))
    d = d[d > 0]
    return float(np.median(d)) if d.size else None


def fps_from_stamps(stamps: np.ndarray) -> Optional[float]:
    """Frame rate estimated from stamps (median period), None with fewer than two distinct stamps."""
    period = nominal_period(stamps)
    return None if not period else 1.0 / period


# ---- opening a source from a path ----------------------------------------------------------------
KNOWN_OPTIONS = ("frames", "gray", "camera", "sequence", "image_topic", "info_topic", "K", "fps", "stereo",
                 "color")


def open_source(spec: Union[str, Path], **kw: Any) -> FrameSource:
    """Open whatever ``spec`` names as a :class:`FrameSource`, detecting the kind from the path.

    Recognised (in this order):
      * ``data:REL`` -> ``REL`` under the real-data root (``$DEPTH_POSE_DATA``, default ``../shared/data``),
        so that configs name shared data without a machine-specific path;
      * ``synthetic[:seed=N,length=L,height=H,width=W,...]`` -> the procedural synthetic world;
      * a ``.bag`` file (ROS 1), a ``.mcap`` / ``.db3`` file or a directory with ``metadata.yaml``
        (rosbag2) -> :class:`~depth_pose_ros.data.rosbag_source.RosbagSource`;
      * a video file (.mp4 .avi .mkv .mov .m4v .webm) -> :class:`~depth_pose_ros.data.video.VideoSource`;
      * a KITTI odometry sequence directory (``calib.txt`` + ``image_0``/``image_2``) or a KITTI
        odometry root holding ``sequences/`` (choose with ``sequence=``);
      * a KITTI raw drive directory (``image_02/data``);
      * a TUM RGB-D sequence (``rgb.txt``) or the small pairs layout (``case_*/img_prev.png``);
      * any other directory with images (``intrinsics.yaml`` inside, or ``K=``) -> image folder.

    Options (None means "not given"): ``frames`` (slice, range, list or "START:STOP[:STEP]"),
    ``gray``, ``camera``, ``sequence``, ``image_topic``, ``info_topic``, ``K`` (intrinsics override:
    3x3, (fx, fy, cx, cy) or YAML path), ``fps``, ``stereo``, ``color``. An option the detected kind
    cannot use is reported with a warning rather than silently dropped.
    """
    unknown = sorted(set(kw) - set(KNOWN_OPTIONS))
    if unknown:
        raise TypeError(f"open_source: unknown option(s) {unknown}; known: {list(KNOWN_OPTIONS)}")
    opts = {k: v for k, v in kw.items() if v is not None}
    spec_str = str(spec)

    if spec_str == "synthetic" or spec_str.startswith("synthetic:"):
        return _open_synthetic(spec_str, opts)

    if spec_str.startswith("data:"):
        from depth_pose_ros.utils.paths import data_root

        spec_str = str(data_root() / spec_str[len("data:"):].lstrip("/"))
    path = Path(spec_str).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"source not found: {path}")

    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".bag" or suffix in BAG2_FILE_SUFFIXES:
            return _make("rosbag", path, opts)
        if suffix in VIDEO_SUFFIXES:
            return _make("video", path, opts)
        raise ValueError(
            f"cannot tell what kind of source {path} is: expected a directory, a bag "
            f"(.bag {' '.join(BAG2_FILE_SUFFIXES)}) or a video ({' '.join(VIDEO_SUFFIXES)})"
        )

    if (path / "metadata.yaml").is_file():
        return _make("rosbag", path, opts)
    if (path / "calib.txt").is_file() and any((path / f"image_{c}").is_dir() for c in range(4)):
        return _make("kitti_odometry", path, opts)
    if (path / "sequences").is_dir():
        return _make("kitti_odometry", path, opts)
    if (path / "image_02" / "data").is_dir() or (path / "image_00" / "data").is_dir():
        return _make("kitti_raw", path, opts)
    from depth_pose_ros.data.tum import is_tum_directory

    if is_tum_directory(path):
        return _make("tum", path, opts)
    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir() if p.is_file()):
        return _make("image_folder", path, opts)
    raise ValueError(
        f"cannot tell what kind of source the directory {path} is: no rosbag2 metadata.yaml, KITTI "
        "odometry calib.txt/image_N or sequences/, KITTI raw image_02/data, TUM rgb.txt or case_*/ "
        "pairs, nor image files"
    )


# Options each kind accepts (constructor keyword names).
_ACCEPTS: dict[str, tuple[str, ...]] = {
    "kitti_odometry": ("frames", "gray", "camera", "sequence", "stereo", "color"),
    "kitti_raw": ("frames", "gray", "camera", "stereo"),
    "tum": ("frames", "gray", "K"),
    "image_folder": ("frames", "gray", "K", "fps"),
    "video": ("frames", "gray", "K", "fps"),
    "rosbag": ("frames", "gray", "K", "image_topic", "info_topic"),
}


def _make(kind: str, path: Path, opts: dict[str, Any]) -> FrameSource:
    accepted = _ACCEPTS[kind]
    ignored = sorted(k for k in opts if k not in accepted)
    if ignored:
        warnings.warn(f"open_source({path}): option(s) {ignored} do not apply to a {kind} source; ignored",
                      stacklevel=3)
    args = {k: v for k, v in opts.items() if k in accepted}
    if isinstance(args.get("frames"), str):
        args["frames"] = parse_frames(args["frames"])
    if kind == "kitti_odometry":
        from depth_pose_ros.data.kitti_odometry import KittiOdometry

        args.setdefault("sequence", None)  # a root with one sequence needs no sequence= option
        return KittiOdometry(path, **args)
    if kind == "kitti_raw":
        from depth_pose_ros.data.kitti_raw import KittiRaw

        return KittiRaw(path, **args)
    if kind == "tum":
        from depth_pose_ros.data.tum import TumRgbd

        return TumRgbd(path, **args)
    if kind == "image_folder":
        from depth_pose_ros.data.image_folder import ImageFolder

        return ImageFolder(path, **args)
    if kind == "video":
        from depth_pose_ros.data.video import VideoSource

        return VideoSource(path, **args)
    from depth_pose_ros.data.rosbag_source import RosbagSource

    return RosbagSource(path, **args)


_SYNTH_INT = ("seed", "length", "height", "width", "num_moving")
_SYNTH_FLOAT = ("fps", "stereo_baseline", "camera_height", "hfov_deg", "pose_jitter_deg", "lighting_noise")
_SYNTH_BOOL = ("gray", "antialias", "close_traffic")
_SYNTH_WORLDS = ("street", "room")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _synth_bool(key: str, value: str) -> bool:
    v = value.lower()
    if key == "gray":  # historical: anything but a true word is False
        return v in _TRUE
    if v not in _TRUE + _FALSE:
        raise ValueError(f"{key} must be one of 1/0/true/false/yes/no, got {value!r}")
    return v in _TRUE


def _synth_range(key: str, value: str) -> tuple[float, float]:
    lo, sep, hi = value.partition(":")
    try:
        pair = (float(lo), float(hi)) if sep else (float(value), float(value))
    except ValueError:
        raise ValueError(f"{key} must be MIN:MAX in m/s (e.g. {key}=3:8) or one number, got {value!r}") from None
    if not 0 < pair[0] <= pair[1]:
        raise ValueError(f"{key} must satisfy 0 < MIN <= MAX, got {value!r}")
    return pair


def parse_synthetic_spec(spec: str) -> dict[str, Any]:
    """``synthetic:seed=1,length=20,height=96,width=320`` -> keyword arguments of SyntheticSequence.

    Keys: ``world`` (street | room; default street), integers ``seed length height width num_moving``,
    numbers ``fps stereo_baseline camera_height hfov_deg pose_jitter_deg lighting_noise``, booleans
    ``gray antialias close_traffic`` (1/0/true/false/yes/no), ``speed_range=MIN:MAX`` (m/s; one number
    = constant speed) and ``traffic=dense`` (= ``close_traffic=1``, and ``num_moving=6`` unless given;
    ``traffic=normal`` changes nothing). Value ranges are checked when the sequence is built.
    """
    params: dict[str, Any] = {}
    if spec == "synthetic":
        return params
    body = spec[len("synthetic:"):]
    known = list(_SYNTH_INT + _SYNTH_FLOAT + _SYNTH_BOOL) + ["world", "speed_range", "traffic"]
    dense = False
    for item in filter(None, (s.strip() for s in body.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_]\w*", key):
            raise ValueError(f"synthetic spec {spec!r}: expected key=value items, got {item!r}")
        value = value.strip()
        try:
            if key in params or (key == "traffic" and dense):
                raise ValueError(f"key {key!r} given twice")
            if key in _SYNTH_INT:
                params[key] = int(value)
            elif key in _SYNTH_FLOAT:
                params[key] = float(value)
            elif key in _SYNTH_BOOL:
                params[key] = _synth_bool(key, value)
            elif key == "world":
                if value not in _SYNTH_WORLDS:
                    raise ValueError(f"world must be one of {list(_SYNTH_WORLDS)}, got {value!r}")
                params[key] = value
            elif key == "speed_range":
                params[key] = _synth_range(key, value)
            elif key == "traffic":
                if value not in ("dense", "normal"):
                    raise ValueError(f"traffic must be 'dense' or 'normal', got {value!r}")
                dense = value == "dense"
            else:
                raise ValueError(f"unknown key {key!r} (known: {known})")
        except ValueError as exc:
            raise ValueError(f"synthetic spec {spec!r}: {exc}") from None
    if dense:
        params["close_traffic"] = True
        params.setdefault("num_moving", 6)
    return params


def _synth_desc(params: dict[str, Any]) -> str:
    """``k=v,...`` of parsed spec parameters (ranges as MIN:MAX, as they are written in a spec)."""
    return ",".join(f"{k}={v[0]:g}:{v[1]:g}" if isinstance(v, tuple) else f"{k}={v}" for k, v in params.items())


class SequenceSource(FrameSource):
    """Wrap any random-access sequence of Frames (a list, the synthetic world) as a FrameSource.

    Stamps, in order of preference: the ``stamps`` argument; ``frames_of.stamps()`` when it has one;
    the frames' own stamps when ``frames_of`` is an in-memory list/tuple; ``index / fps`` otherwise
    (so that building a clip dataset never renders or decodes every frame just for its stamp).
    """

    def __init__(self, frames_of: Any, name: str, fps: Optional[float] = None,
                 frames: FrameSelection = None, gray: bool = False, has_gt_pose: bool = False,
                 has_gt_depth: bool = False, has_gt_flow: bool = False, has_stereo: bool = False,
                 stamps: Optional[Sequence[float]] = None) -> None:
        super().__init__(frames=frames, gray=gray)
        self.inner = frames_of
        self.name = name
        self.fps = fps
        self.has_gt_pose = has_gt_pose
        self.has_gt_depth = has_gt_depth
        self.has_gt_flow = has_gt_flow
        self.has_stereo = has_stereo
        self._stamps = None if stamps is None else np.asarray(stamps, dtype=np.float64)
        if self._stamps is not None and len(self._stamps) != len(frames_of):
            raise ValueError(f"{name}: {len(self._stamps)} stamps for {len(frames_of)} frames")

    def _num_raw(self) -> int:
        return len(self.inner)

    def _raw_stamps(self) -> np.ndarray:
        if self._stamps is None:
            inner_stamps = getattr(self.inner, "stamps", None)
            if callable(inner_stamps):
                self._stamps = np.asarray(inner_stamps(), dtype=np.float64)
            elif isinstance(self.inner, (list, tuple)) or not self.fps:
                self._stamps = np.array([f.stamp for f in self.inner], dtype=np.float64)
            else:
                self._stamps = np.arange(len(self.inner), dtype=np.float64) / self.fps
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        return self.inner[raw_index]


def _open_synthetic(spec: str, opts: dict[str, Any]) -> FrameSource:
    params = parse_synthetic_spec(spec)
    if "gray" in opts:
        params["gray"] = bool(opts["gray"])
    from depth_pose_ros.data.synthetic import SyntheticSequence  # written by another module owner

    try:
        seq = SyntheticSequence(**params)
    except ValueError as exc:
        raise ValueError(f"synthetic spec {spec!r}: {exc}") from None
    if isinstance(seq, FrameSource):
        if "frames" in opts:
            seq._frames_option, seq._selection = opts["frames"], None
        return seq
    fps = float(getattr(seq, "fps", params.get("fps", 10.0)) or 10.0)
    stereo = getattr(seq, "stereo_baseline", None)
    desc = _synth_desc(params)
    frames = opts.get("frames")
    if isinstance(frames, str):
        frames = parse_frames(frames)
    return SequenceSource(seq, name=f"synthetic:{desc}" if desc else "synthetic", fps=fps, frames=frames,
                          has_gt_pose=True, has_gt_depth=True, has_gt_flow=True,
                          has_stereo=bool(stereo) and not (isinstance(stereo, float) and math.isnan(stereo)))
