"""Lens distortion: the ROS ``camera_info`` models, undistortion maps cached per camera, and the
forward model (to render distorted test frames).

Epipolar geometry assumes a pinhole camera; a real camera publishing ``image_raw`` has distortion
(``camera_info.d`` / ``distortion_model``), which bends every epipolar line and biases the pose. The
pipeline therefore undistorts each frame before flow and geometry, keeping the same K and image size
(the output is the ``image_rect`` of ROS's image_proc). Maps are built once per distinct camera and
reused (building them costs far more than a remap).

Models (ROS names): ``plumb_bob`` (k1 k2 p1 p2 k3), ``rational_polynomial`` (k1 k2 p1 p2 k3 k4 k5 k6),
``equidistant`` (fisheye k1 k2 k3 k4). All-zero coefficients mean no distortion.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

#: Distortion models and their coefficient counts (fewer are zero-padded, as ROS drivers often send 5).
MODELS = {"plumb_bob": 5, "rational_polynomial": 8, "equidistant": 4}
#: Names some drivers use for the same models.
ALIASES = {"": "plumb_bob", "radtan": "plumb_bob", "opencv": "plumb_bob", "fisheye": "equidistant",
           "kannala_brandt": "equidistant"}


class UnknownDistortionModel(ValueError):
    """A distortion model this package cannot undistort (the caller warns and uses the image as is)."""


@dataclass(frozen=True)
class Distortion:
    """A lens distortion: ROS model name and coefficients."""

    model: str
    coeffs: tuple[float, ...]

    @classmethod
    def create(cls, model: str, coeffs) -> Optional[Distortion]:
        """Validated distortion, or None when there is none (no or all-zero coefficients).

        Raises:
            UnknownDistortionModel: the model is not one of :data:`MODELS` (with its aliases).
            ValueError: non-finite coefficients, or more than the model has.
        """
        values = tuple(float(c) for c in np.asarray(coeffs if coeffs is not None else [], dtype=np.float64).ravel())
        if not values or not any(values):
            return None
        name = ALIASES.get(model.strip().lower(), model.strip().lower())
        if name not in MODELS:
            raise UnknownDistortionModel(f"distortion model {model!r} is not supported (supported: "
                                         f"{', '.join(MODELS)}); the image is used without undistortion")
        if not all(np.isfinite(values)):
            raise ValueError(f"distortion coefficients must be finite, got {values}")
        n = MODELS[name]
        if len(values) > n and any(values[n:]):
            raise ValueError(f"distortion model {name} has {n} coefficients, got {len(values)}")
        return cls(name, tuple(values[:n]) + (0.0,) * (n - min(len(values), n)))

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.coeffs, dtype=np.float64)


def _maps(K: np.ndarray, distortion: Distortion, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = size
    if distortion.model == "equidistant":
        return cv2.fisheye.initUndistortRectifyMap(K, distortion.array, np.eye(3), K, (w, h), cv2.CV_16SC2)
    return cv2.initUndistortRectifyMap(K, distortion.array, np.eye(3), K, (w, h), cv2.CV_16SC2)


class Undistorter:
    """Undistorts frames to the pinhole camera with the same K and size; maps cached per camera."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.maps_built = 0

    def __call__(self, image: np.ndarray, K: np.ndarray, distortion: Optional[Distortion],
                 interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
        """``image`` as the pinhole camera K sees it (same size; 0 outside the distorted view).

        ``interpolation``: bilinear for images; ``cv2.INTER_NEAREST`` for per-pixel data that must not be
        blended (depth, masks), which then stays aligned with the undistorted image (same maps).
        """
        if distortion is None:
            return image
        K = np.asarray(K, dtype=np.float64)
        key = (image.shape[:2], K.tobytes(), distortion)
        maps = self._cache.get(key)
        if maps is None:
            maps = _maps(K, distortion, image.shape[:2])
            self.maps_built += 1
            self._cache[key] = maps
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        if interpolation == cv2.INTER_NEAREST:  # the fixed-point maps' integer part is floor(): round instead
            return cv2.remap(image, _nearest_map(*maps), None, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        return cv2.remap(image, maps[0], maps[1], interpolation, borderMode=cv2.BORDER_CONSTANT)


def _nearest_map(map1: np.ndarray, map2: np.ndarray) -> np.ndarray:
    """The nearest source pixel of each output pixel (CV_16SC2) from OpenCV's fixed-point maps: ``map1`` holds
    floor(x), floor(y), ``map2`` the fractions in 1/32 steps (y fraction * 32 + x fraction)."""
    bits = cv2.INTER_BITS if hasattr(cv2, "INTER_BITS") else 5
    size = 1 << bits
    frac = map2.astype(np.int32)
    out = map1.astype(np.int32)
    out[..., 0] += (frac & (size - 1)) >= size // 2
    out[..., 1] += ((frac >> bits) & (size - 1)) >= size // 2
    return out.astype(np.int16)


def distort_image(image: np.ndarray, K: np.ndarray, distortion: Distortion) -> np.ndarray:
    """Render what a camera with ``distortion`` would see of a pinhole ``image`` (same K and size):
    each output pixel samples the pinhole image where its distorted ray lands (test data)."""
    h, w = image.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pix = np.stack([xs.ravel(), ys.ravel()], axis=1).reshape(-1, 1, 2)
    K = np.asarray(K, dtype=np.float64)
    if distortion.model == "equidistant":
        ideal = cv2.fisheye.undistortPoints(pix, K, distortion.array, P=K)
    else:
        ideal = cv2.undistortPoints(pix, K, distortion.array, P=K)
    ideal = ideal.reshape(h, w, 2).astype(np.float32)
    return cv2.remap(image, ideal[..., 0], ideal[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
