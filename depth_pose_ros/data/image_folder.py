"""A folder of images (any camera) plus an intrinsics YAML: the simplest way to bring your own data.

Images: ``*.png`` / ``*.jpg`` / ``*.jpeg`` (and other formats OpenCV reads) sorted in natural order
(``img2`` before ``img10``). Intrinsics, in the first of these that exists: the ``K`` argument, or
``intrinsics.yaml`` / ``intrinsics.yml`` / ``camera_info.yaml`` / ``camera.yaml`` in the folder.
Two YAML forms are read::

    fx: 718.9            # plain form
    fy: 718.9
    cx: 607.2
    cy: 185.2
    fps: 10              # optional (both forms)

    image_width: 1241    # ROS camera_info form (camera_calibration / camera_info_manager output)
    image_height: 376
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob          # optional: the lens distortion of the stored images
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}

The distortion (any model of ``geometry.distortion.MODELS``: plumb_bob, rational_polynomial, equidistant,
and their aliases; ``distortion_model`` defaults to plumb_bob) goes to ``Frame.distortion``, exactly as the
node takes it from ``camera_info``; the images are not undistorted here (the Estimator and the training clips
do that). An unsupported model is warned about and the images are used as they are (as the node does);
non-finite or too many coefficients are an error. A ``K`` argument replaces the folder's YAML, distortion
included (a YAML path as ``K`` gives its distortion too).

Without intrinsics the focal length is guessed (see ``source.guess_intrinsics``) with a warning.

Stamps (seconds), in the first of these that applies:

1. ``times.txt`` beside the images: one stamp per image, in file-name order (the KITTI layout; ``#``
   comments and blank lines ignored). A count that differs from the number of images is an error.
2. File names that are all integer nanoseconds (``01764757961901789696.jpg`` -> 1764757961.901789696 s):
   digits only, strictly increasing, and a median step between 1 ms and 10 s (so frame numbers such as
   ``000000.png`` or millisecond names are not mistaken for nanoseconds).
3. ``index / fps`` (``index`` seconds when the rate is unknown).

``fps`` is the ``fps`` argument, else the YAML's ``fps``, else (with stamps from 1. or 2.) the median rate of
the stamps. The image size (for the intrinsics check and the guess) is that of the first image that decodes:
a corrupt file is a skipped frame (``FrameSource.skipped``), not a reason to refuse the folder.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import yaml

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import (
    FRAME_READ_ERRORS,
    IMAGE_SUFFIXES,
    FrameSelection,
    FrameSource,
    K_from_params,
    as_K,
    fps_from_stamps,
    guess_intrinsics,
    read_image,
    warn_guessed_intrinsics,
)
from depth_pose_ros.geometry.distortion import Distortion, UnknownDistortionModel

INTRINSICS_FILE_NAMES = ("intrinsics.yaml", "intrinsics.yml", "camera_info.yaml", "camera.yaml")
TIMES_FILE_NAME = "times.txt"
#: Median step (ns) between file names read as nanosecond stamps: a camera between 0.1 and 1000 Hz.
NS_NAME_STEP_RANGE = (1_000_000, 10_000_000_000)


@dataclass
class Intrinsics:
    """Parsed intrinsics YAML: K, and image size / frame rate / lens distortion when the file states them."""

    K: np.ndarray
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None
    distortion: Optional[Distortion] = None


def read_intrinsics_yaml(path: Union[str, Path]) -> Intrinsics:
    """Read ``{fx, fy, cx, cy}`` or ROS camera_info YAML (``camera_matrix: {rows, cols, data}``, with the
    optional ``distortion_model`` + ``distortion_coefficients: {rows, cols, data}``; see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"intrinsics file not found: {path}")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: expected a mapping with fx/fy/cx/cy or camera_matrix")
    try:
        if "camera_matrix" in doc:
            cm = doc["camera_matrix"]
            data = cm["data"] if isinstance(cm, dict) else cm
            if isinstance(cm, dict) and (int(cm.get("rows", 3)), int(cm.get("cols", 3))) != (3, 3):
                raise ValueError("camera_matrix must be 3x3")
            K = as_K(np.asarray(data, dtype=np.float64), what=f"{path}: camera_matrix")
        elif all(k in doc for k in ("fx", "fy", "cx", "cy")):
            K = K_from_params(*(float(doc[k]) for k in ("fx", "fy", "cx", "cy")))
        elif "K" in doc or "k" in doc:
            K = as_K(doc.get("K", doc.get("k")), what=f"{path}: K")
        else:
            raise ValueError("expected fx, fy, cx, cy keys or a camera_matrix")
        width = _opt_int(doc, "image_width", "width")
        height = _opt_int(doc, "image_height", "height")
        fps = float(doc["fps"]) if doc.get("fps") is not None else None
        distortion = _distortion(doc, path)
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: bad intrinsics ({exc})") from None
    if fps is not None and fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    return Intrinsics(K=K, width=width, height=height, fps=fps, distortion=distortion)


def _distortion(doc: dict[str, Any], path: Path) -> Optional[Distortion]:
    """``distortion_model`` + ``distortion_coefficients`` (camera_info YAML form; also ``D`` / ``d``) as a
    Distortion; None when absent or all zero, or (with a warning) when the model is not supported."""
    coeffs = doc.get("distortion_coefficients")
    if coeffs is None:
        coeffs = doc.get("D", doc.get("d"))
    if coeffs is None:
        return None
    data = coeffs["data"] if isinstance(coeffs, dict) else coeffs
    model = doc.get("distortion_model") or "plumb_bob"
    try:
        return Distortion.create(str(model), data)
    except UnknownDistortionModel as exc:
        warnings.warn(f"{path}: {exc}", stacklevel=4)
        return None


def read_times_file(path: Union[str, Path]) -> np.ndarray:
    """Stamps (seconds, float64) of a KITTI-style ``times.txt``: one number per line (``#`` comments and blank
    lines skipped)."""
    path = Path(path)
    values = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            values.append(float(text.split()[0]))
        except ValueError:
            raise ValueError(f"{path}:{n}: expected a stamp in seconds, got {line.strip()!r}") from None
    stamps = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(stamps)):
        raise ValueError(f"{path}: stamps must be finite")
    return stamps


def stamps_from_ns_names(files: list[Path]) -> Optional[np.ndarray]:
    """Stamps (seconds) when every file name is an integer number of nanoseconds (see the module doc), else
    None."""
    if len(files) < 2 or not all(p.stem.isdigit() for p in files):
        return None
    ns = [int(p.stem) for p in files]
    steps = np.diff(np.asarray(ns, dtype=np.float64))
    if np.any(steps <= 0):
        return None
    lo, hi = NS_NAME_STEP_RANGE
    if not lo <= float(np.median(steps)) <= hi:
        return None
    return np.array([v // 1_000_000_000 + (v % 1_000_000_000) * 1e-9 for v in ns], dtype=np.float64)


def _opt_int(doc: dict[str, Any], *keys: str) -> Optional[int]:
    for k in keys:
        if doc.get(k) is not None:
            return int(doc[k])
    return None


def natural_key(path: Path) -> list[Any]:
    """Sort key treating digit runs as numbers, so ``img2.png`` sorts before ``img10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` in natural order."""
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
                  key=natural_key)


class ImageFolder(FrameSource):
    """Images of one folder as a FrameSource (no ground truth).

    Args:
        root: the folder.
        K: intrinsics override (3x3, (fx, fy, cx, cy) or YAML path, whose distortion is then used); else the
            folder's YAML (K and distortion); else guessed.
        fps: frame rate override (else the YAML's ``fps``, else from the stamps, else unknown); stamps come
            from ``times.txt`` or nanosecond file names before ``index / fps`` (module doc).
        frames: sub-selection; gray: convert to gray on load.
    """

    uniform_size = True  # one camera's files: an image of another size is a broken file

    def __init__(self, root: Union[str, Path], K: Any = None, fps: Optional[float] = None,
                 frames: FrameSelection = None, gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"image folder not found: {root}")
        self.root = root
        self.files = list_images(root)
        if not self.files:
            raise FileNotFoundError(f"no image files ({' '.join(IMAGE_SUFFIXES)}) in {root}")
        self.name = f"image_folder:{root.name}"
        first_path, first = _first_readable(self.files)
        height, width = first.shape[:2]
        self._image_hw = (int(height), int(width))

        self.intrinsics_path: Optional[Path] = None
        info: Optional[Intrinsics] = None
        if K is None:
            for fname in INTRINSICS_FILE_NAMES:
                if (root / fname).is_file():
                    self.intrinsics_path = root / fname
                    info = read_intrinsics_yaml(self.intrinsics_path)
                    break
        self.distortion: Optional[Distortion] = None
        if K is not None:
            if isinstance(K, (str, Path)):
                info_K = read_intrinsics_yaml(K)
                self.K, self.distortion = info_K.K, info_K.distortion
            else:
                self.K = as_K(K)
        elif info is not None:
            if (info.width, info.height) not in ((None, None), (width, height)):
                raise ValueError(f"{self.intrinsics_path}: calibrated for {info.width}x{info.height} but "
                                 f"{first_path} is {width}x{height}")
            self.K = info.K
            self.distortion = info.distortion
        else:
            self.K = guess_intrinsics(width, height)
            warn_guessed_intrinsics(str(root), self.K)
        self.K_guessed = K is None and info is None
        self.fps = float(fps) if fps else (info.fps if info is not None else None)
        n = len(self.files)
        self.times_path: Optional[Path] = root / TIMES_FILE_NAME if (root / TIMES_FILE_NAME).is_file() else None
        stamps: Optional[np.ndarray] = None
        if self.times_path is not None:
            stamps = read_times_file(self.times_path)
            if len(stamps) != n:
                raise ValueError(f"{self.times_path}: {len(stamps)} stamps for {n} images in {root} (one stamp "
                                 "per image, in file-name order, is expected)")
            self.stamps_from = "times.txt"
        else:
            stamps = stamps_from_ns_names(self.files)
            self.stamps_from = "file names (ns)" if stamps is not None else "index / fps"
        if stamps is None:
            stamps = np.arange(n, dtype=np.float64) / (self.fps or 1.0)
        elif not self.fps:
            self.fps = fps_from_stamps(stamps)
        self._stamps = stamps

    def _num_raw(self) -> int:
        return len(self.files)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        return Frame(image=read_image(self.files[raw_index]), K=self.K.copy(),
                     stamp=float(self._stamps[raw_index]), index=raw_index, distortion=self.distortion,
                     source=self.name)


def _first_readable(files: list[Path]) -> tuple[Path, np.ndarray]:
    """The first file that decodes, and its image; ValueError naming the first failure when none does."""
    first_error = ""
    for path in files:
        try:
            return path, read_image(path)
        except FRAME_READ_ERRORS as exc:
            first_error = first_error or str(exc)
    raise ValueError(f"none of the {len(files)} images in {files[0].parent} can be read (first: {first_error})")
