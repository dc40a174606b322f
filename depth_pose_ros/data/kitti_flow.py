"""KITTI 2015 optical flow pairs and the KITTI flow PNG format.

Flow PNG: 16-bit, 3 channels (u, v, valid) in RGB order, ``flow = (value - 2^15) / 64`` pixels,
valid > 0 marks pixels with ground truth. OpenCV reads and writes channels in BGR order, so on disk
through cv2 the array is ``[valid, v, u]``. The representable range is about +-512 px with 1/64 px
steps.

Layout (``root`` is the folder holding ``training/``, or ``training/`` itself)::

    training/image_2/NNNNNN_10.png, NNNNNN_11.png   colour pair (frame 10 -> frame 11)
    training/flow_occ/NNNNNN_10.png                 GT flow, all pixels (occluded included)
    training/flow_noc/NNNNNN_10.png                 GT flow, non-occluded pixels only (optional)
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np

from depth_pose_ros.data.source import imread_unchanged, read_image

FLOW_PNG_OFFSET = 2.0**15
FLOW_PNG_SCALE = 64.0
FLOW_PNG_MAX = (65535.0 - FLOW_PNG_OFFSET) / FLOW_PNG_SCALE  # 511.98 px
FLOW_PNG_MIN = -FLOW_PNG_OFFSET / FLOW_PNG_SCALE  # -512 px


def read_kitti_flow_png(path: Union[str, Path]) -> tuple[np.ndarray, np.ndarray]:
    """(flow HxWx2 float32 (dx, dy) px, valid HxW bool) from a KITTI flow PNG; flow is 0 where invalid."""
    raw = imread_unchanged(path, "KITTI flow PNG")
    if raw.dtype != np.uint16 or raw.ndim != 3 or raw.shape[2] != 3:
        raise ValueError(f"KITTI flow PNG must be 16-bit 3-channel, got {raw.dtype} {raw.shape}: {path}")
    valid = raw[..., 0] > 0
    flow = (raw[..., 2:0:-1].astype(np.float32) - np.float32(FLOW_PNG_OFFSET)) / np.float32(FLOW_PNG_SCALE)
    flow[~valid] = 0.0
    return np.ascontiguousarray(flow), valid


def encode_kitti_flow(flow: np.ndarray, valid: np.ndarray | None = None, what: str = "flow") -> tuple[np.ndarray, int]:
    """HxWx2 (dx, dy) flow -> (HxWx3 uint16 in cv2's BGR order (valid, v, u), number of pixels dropped).

    ``valid`` defaults to "finite everywhere". Non-finite flow is written invalid; valid pixels whose
    flow exceeds the format's +-512 px range cannot be stored, so they are written invalid too (and
    counted) rather than silently clipped to a wrong value.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"{what} must be HxWx2, got {flow.shape}")
    finite = np.isfinite(flow).all(axis=2)
    if valid is None:
        valid = finite
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != flow.shape[:2]:
        raise ValueError(f"valid mask for {what} must be {flow.shape[:2]}, got {valid.shape}")
    valid = valid & finite
    out_of_range = valid & ((flow < FLOW_PNG_MIN) | (flow > FLOW_PNG_MAX)).any(axis=2)
    valid = valid & ~out_of_range
    enc = np.where(valid[..., None], flow, 0.0) * FLOW_PNG_SCALE + FLOW_PNG_OFFSET
    enc = np.clip(np.rint(enc), 0, 65535).astype(np.uint16)
    return np.dstack([valid.astype(np.uint16), enc[..., 1], enc[..., 0]]), int(out_of_range.sum())


def write_kitti_flow_png(path: Union[str, Path], flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write HxWx2 (dx, dy) flow as a KITTI flow PNG (see :func:`encode_kitti_flow`); warns on dropped pixels."""
    path = Path(path)
    bgr, dropped = encode_kitti_flow(flow, valid, what=f"flow for {path}")
    if dropped:
        warnings.warn(f"{path}: {dropped} pixels with |flow| beyond the KITTI PNG range "
                      f"(+-{FLOW_PNG_MAX:.0f} px) written as invalid", stacklevel=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), bgr):
        raise ValueError(f"could not write KITTI flow PNG: {path} (suffix must be .png)")


@dataclass
class FlowPair:
    """Two consecutive images and the GT forward flow from ``image1`` to ``image2``."""

    image1: np.ndarray  # HxWx3 RGB uint8 (or HxW gray)
    image2: np.ndarray
    flow: np.ndarray  # HxWx2 float32 (dx, dy) px, 0 where invalid
    valid: np.ndarray  # HxW bool
    name: str  # e.g. "000000_10"


class KittiFlow2015:
    """The KITTI 2015 flow training pairs: ``len``, ``[i] -> FlowPair``, iteration.

    Args:
        root: the folder holding ``training/`` (or the ``training`` folder itself).
        occ: True -> ``flow_occ`` (all pixels with GT); False -> ``flow_noc`` (non-occluded only).
    """

    def __init__(self, root: Union[str, Path], occ: bool = True) -> None:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"KITTI flow directory not found: {root}")
        self.dir = root / "training" if (root / "training").is_dir() else root
        self.occ = bool(occ)
        self.flow_dir = self.dir / ("flow_occ" if self.occ else "flow_noc")
        self.image_dir = self.dir / "image_2"
        for d in (self.flow_dir, self.image_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"KITTI 2015 folder not found: {d}")
        self.names = sorted(p.stem for p in self.flow_dir.glob("*_10.png"))
        if not self.names:
            raise FileNotFoundError(f"no *_10.png flow files in {self.flow_dir}")
        self.has_noc = (self.dir / "flow_noc").is_dir()

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> FlowPair:
        name = self.names[i]
        stem = name[: -len("_10")]
        flow, valid = read_kitti_flow_png(self.flow_dir / f"{name}.png")
        image1 = read_image(self.image_dir / f"{stem}_10.png")
        image2 = read_image(self.image_dir / f"{stem}_11.png")
        if image1.shape[:2] != flow.shape[:2] or image2.shape[:2] != flow.shape[:2]:
            raise ValueError(f"{self.image_dir}/{stem}_1x.png: image size differs from flow {flow.shape[:2]}")
        return FlowPair(image1=image1, image2=image2, flow=flow, valid=valid, name=name)

    def __iter__(self) -> Iterator[FlowPair]:
        for i in range(len(self)):
            yield self[i]
