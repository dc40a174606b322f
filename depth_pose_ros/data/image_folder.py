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

Without intrinsics the focal length is guessed (see ``source.guess_intrinsics``) with a warning.
Stamps are ``index / fps`` (``index`` seconds when the rate is unknown). The image size (for the
intrinsics check and the guess) is that of the first image that decodes: a corrupt file is a skipped
frame (``FrameSource.skipped``), not a reason to refuse the folder.
"""
from __future__ import annotations

import re
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
    guess_intrinsics,
    read_image,
    warn_guessed_intrinsics,
)

INTRINSICS_FILE_NAMES = ("intrinsics.yaml", "intrinsics.yml", "camera_info.yaml", "camera.yaml")


@dataclass
class Intrinsics:
    """Parsed intrinsics YAML: K, and image size / frame rate when the file states them."""

    K: np.ndarray
    width: Optional[int] = None
    height: Optional[int] = None
    fps: Optional[float] = None


def read_intrinsics_yaml(path: Union[str, Path]) -> Intrinsics:
    """Read ``{fx, fy, cx, cy}`` or ROS camera_info YAML (``camera_matrix: {rows, cols, data}``)."""
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
    except (TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: bad intrinsics ({exc})") from None
    if fps is not None and fps <= 0:
        raise ValueError(f"{path}: fps must be positive, got {fps}")
    return Intrinsics(K=K, width=width, height=height, fps=fps)


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
        K: intrinsics override (3x3, (fx, fy, cx, cy) or YAML path); else the folder's YAML; else guessed.
        fps: frame rate override (else the YAML's ``fps``, else unknown).
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
        if K is not None:
            self.K = as_K(K)
        elif info is not None:
            if (info.width, info.height) not in ((None, None), (width, height)):
                raise ValueError(f"{self.intrinsics_path}: calibrated for {info.width}x{info.height} but "
                                 f"{first_path} is {width}x{height}")
            self.K = info.K
        else:
            self.K = guess_intrinsics(width, height)
            warn_guessed_intrinsics(str(root), self.K)
        self.K_guessed = K is None and info is None
        self.fps = float(fps) if fps else (info.fps if info is not None else None)
        n = len(self.files)
        self._stamps = np.arange(n, dtype=np.float64) / (self.fps or 1.0)

    def _num_raw(self) -> int:
        return len(self.files)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        return Frame(image=read_image(self.files[raw_index]), K=self.K.copy(),
                     stamp=float(self._stamps[raw_index]), index=raw_index, source=self.name)


def _first_readable(files: list[Path]) -> tuple[Path, np.ndarray]:
    """The first file that decodes, and its image; ValueError naming the first failure when none does."""
    first_error = ""
    for path in files:
        try:
            return path, read_image(path)
        except FRAME_READ_ERRORS as exc:
            first_error = first_error or str(exc)
    raise ValueError(f"none of the {len(files)} images in {files[0].parent} can be read (first: {first_error})")
