"""``ddad_mini``: single colour images of a car's six cameras, each with one LiDAR sweep projected into it.

Layout (``<data_root>/ddad_mini``, DDAD / TRI dgp test data)::

    image/<stem>.jpg          colour 1936x1216 (rectified, no distortion)
    depth/<stem>.png          uint16, metres * 256 (KITTI depth convention), 0 = no LiDAR point
    intrinsics/<stem>.yaml    fx, fy, cx, cy (and image_width / image_height)

Images are independent (six cameras, three sweeps of two scenes): a reader returns them one by one,
never as a sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from depth_pose_ros.data.source import K_from_params, read_depth_png, read_image
from depth_pose_ros.utils.config import load_yaml

DDAD_DEPTH_SCALE = 256.0  # PNG value per metre


@dataclass
class DdadSample:
    """One image with its LiDAR depth (metres, 0 = unknown) and 3x3 intrinsics."""

    name: str
    image: np.ndarray  # HxWx3 RGB uint8
    K: np.ndarray
    depth: np.ndarray  # HxW float32 metres


def ddad_stems(root: Union[str, Path]) -> list[str]:
    """Stems with an image, a depth map and intrinsics, sorted."""
    root = Path(root)
    if not (root / "image").is_dir():
        raise FileNotFoundError(f"ddad_mini: no image/ folder under {root}")
    stems = sorted(p.stem for p in (root / "image").glob("*.jpg"))
    stems = [s for s in stems if (root / "depth" / f"{s}.png").is_file()
             and (root / "intrinsics" / f"{s}.yaml").is_file()]
    if not stems:
        raise ValueError(f"ddad_mini: no image with depth/ and intrinsics/ files under {root}")
    return stems


def read_ddad_sample(root: Union[str, Path], stem: str) -> DdadSample:
    """Image, LiDAR depth and K of ``stem``; the intrinsics must describe the image's size when they name it."""
    root = Path(root)
    image = read_image(root / "image" / f"{stem}.jpg")
    depth = read_depth_png(root / "depth" / f"{stem}.png", DDAD_DEPTH_SCALE)
    intr = load_yaml(root / "intrinsics" / f"{stem}.yaml")
    K = K_from_params(float(intr["fx"]), float(intr["fy"]), float(intr["cx"]), float(intr["cy"]))
    h, w = int(image.shape[0]), int(image.shape[1])
    if depth.shape != (h, w):
        raise ValueError(f"ddad_mini {stem}: depth {depth.shape} does not match the image {(h, w)}")
    if (int(intr.get("image_height", h)), int(intr.get("image_width", w))) != (h, w):
        raise ValueError(f"ddad_mini {stem}: intrinsics are for {intr.get('image_width')}x{intr.get('image_height')}, "
                         f"the image is {w}x{h}")
    return DdadSample(stem, image, K, depth)


def read_ddad_mini(root: Union[str, Path]) -> list[DdadSample]:
    """Every sample of the folder, in stem order."""
    return [read_ddad_sample(root, s) for s in ddad_stems(root)]
