"""Colour-coding of depth and optical flow for humans (TensorBoard panels, the demo, debug images).

* :func:`colorize_depth` maps *inverse* depth through a perceptual colour map: inverse depth spreads
  the near range (where the detail is) over most of the colours, and the robust percentile range
  keeps one far-away pixel (sky at max depth) from washing out the rest.
* :func:`flow_to_color` is the Middlebury / Baker et al. colour wheel: hue = direction, saturation =
  magnitude relative to ``max_flow``. The wheel is built here from its published segment lengths
  (red-yellow 15, yellow-green 6, green-cyan 4, cyan-blue 11, blue-magenta 13, magenta-red 6), so
  flows look the same as in every optical-flow paper.

Both return HxWx3 uint8 RGB and accept numpy arrays or torch tensors (converted on the CPU); no torch
import happens here.
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np

# Middlebury colour wheel segment lengths (number of hues per transition).
_RY, _YG, _GC, _CB, _BM, _MR = 15, 6, 4, 11, 13, 6


def _to_numpy(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor without importing torch
        x = x.detach().float().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name}: empty array")
    return arr


class DepthColorizer:
    """``DepthColorizer()(depth)`` -> HxWx3 uint8 RGB; near is bright, far is dark (MAGMA by default).

    Cheap enough for every frame of a live node (timings: docs/bench_node.md, publish stage): the range
    comes from the percentiles of every ``sample_stride``-th pixel in x and y (the range of a smooth
    depth map barely moves), and the colour map is a 256-entry RGB lookup table built once and applied
    by ``cv2.applyColorMap`` (much faster than numpy fancy indexing, same page).
    """

    def __init__(self, colormap: int = cv2.COLORMAP_MAGMA, percentile: float = 95.0, sample_stride: int = 4) -> None:
        if not 50.0 < percentile <= 100.0:
            raise ValueError(f"percentile: must be in (50, 100], got {percentile}")
        if sample_stride < 1:
            raise ValueError(f"sample_stride: must be >= 1, got {sample_stride}")
        ramp = np.arange(256, dtype=np.uint8).reshape(256, 1)
        # 256x1x3 user colour map holding RGB (not BGR): applyColorMap then writes RGB directly. Entry 0 is
        # black (unknown depth); entries 1..255 are the colour map's 255 darkest-to-brightest levels.
        lut = cv2.applyColorMap(ramp, colormap)[:, :, ::-1].copy()
        lut[1:] = lut[np.round(np.linspace(0, 255, 255)).astype(int)]
        lut[0] = 0
        self.lut = np.ascontiguousarray(lut)
        self.percentile = float(percentile)
        self.sample_stride = int(sample_stride)

    def depth_range(self, depth: np.ndarray) -> tuple[float, float]:
        """(near, far) depth mapped to the brightest / darkest colour: the (100 - p) and p percentiles
        of the valid depths of the subsampled map (percentiles of depth mirror those of inverse depth,
        1/x being monotonic)."""
        s = self.sample_stride
        sample = depth[::s, ::s]
        sample = sample[np.isfinite(sample) & (sample > 0)]
        if sample.size == 0:
            return 1.0, 1.0
        near, far = np.percentile(sample, [100.0 - self.percentile, self.percentile])
        return float(near), float(far)

    def __call__(self, depth: np.ndarray, vmin: Optional[float] = None, vmax: Optional[float] = None,
                 range_depth: Optional[np.ndarray] = None) -> np.ndarray:
        """``range_depth``: a smaller depth map of the same scene to take the range from (the node passes
        the network-size depth of a camera-size registered depth: same percentiles, a fraction of the work)."""
        d = np.asarray(depth, dtype=np.float32)
        if d.ndim != 2 or d.size == 0:
            raise ValueError(f"depth: expected a non-empty HxW array, got shape {d.shape}")
        near, far = (vmin, vmax) if vmin and vmax else self.depth_range(d if range_depth is None else range_depth)
        near, far = (vmin or near), (vmax or far)
        lo, hi = 1.0 / far if far > 0 else 0.0, 1.0 / near if near > 0 else 1.0
        if hi <= lo:
            hi = lo + 1e-6
        # Level 1..255 linear in inverse depth over [lo, hi]; index 0 of the table is black (unknown). Three
        # passes over the image: inverse (OpenCV gives 0 for 0 and NaN stays NaN), clip, scale-and-round.
        inverse = cv2.divide(1.0, d)
        np.clip(inverse, lo, hi, out=inverse)  # (NaN stays NaN: masked below)
        alpha = 254.0 / (hi - lo)
        level = cv2.convertScaleAbs(inverse, alpha=alpha, beta=1.0 - lo * alpha)  # round(1 + 254 (x - lo) / span)
        level[~(d > 0)] = 0  # unknown: 0 and NaN (NaN compares False)
        return cv2.applyColorMap(level, self.lut)


def colorize_depth(depth: Any, vmin: Optional[float] = None, vmax: Optional[float] = None,
                   colormap: int = cv2.COLORMAP_MAGMA, percentile: float = 95.0) -> np.ndarray:
    """HxW depth (metres; 0 / non-finite = unknown, drawn black) -> HxWx3 uint8 RGB.

    Colours follow inverse depth: near is bright, far is dark. ``vmin``/``vmax`` fix the depth range
    (useful to compare frames); by default the range comes from the ``100 - percentile`` ..
    ``percentile`` percentiles of the valid depths. Accepts HxW, 1xHxW or 1x1xHxW (numpy or torch).
    """
    d = _to_numpy(depth, "depth")
    while d.ndim > 2 and d.shape[0] == 1:
        d = d[0]
    if d.ndim != 2:
        raise ValueError(f"depth: expected an HxW map, got shape {np.shape(depth)}")
    return DepthColorizer(colormap, percentile, sample_stride=1)(d, vmin, vmax)


def color_wheel() -> np.ndarray:
    """The Middlebury colour wheel: Nx3 float RGB in [0, 255], N = 55 hues starting at red."""
    n = _RY + _YG + _GC + _CB + _BM + _MR
    wheel = np.zeros((n, 3))
    col = 0
    # Each transition ramps one channel while the other stays at 255.
    for length, (full, ramp, rising) in (
        (_RY, (0, 1, True)),  # red -> yellow: R full, G rises
        (_YG, (1, 0, False)),  # yellow -> green: G full, R falls
        (_GC, (1, 2, True)),  # green -> cyan: G full, B rises
        (_CB, (2, 1, False)),  # cyan -> blue: B full, G falls
        (_BM, (2, 0, True)),  # blue -> magenta: B full, R rises
        (_MR, (0, 2, False)),  # magenta -> red: R full, B falls
    ):
        ramp_values = np.arange(length) / length
        wheel[col:col + length, full] = 255.0
        wheel[col:col + length, ramp] = 255.0 * (ramp_values if rising else 1.0 - ramp_values)
        col += length
    return wheel


def flow_to_color(flow: Any, max_flow: Optional[float] = None) -> np.ndarray:
    """HxWx2 flow (dx, dy) in pixels (or 2xHxW / 1x2xHxW torch layout) -> HxWx3 uint8 RGB.

    Direction is hue on the Middlebury wheel (+x red... as in the papers), magnitude is saturation,
    normalised by ``max_flow`` (default: the largest finite magnitude). Zero flow is white;
    magnitudes beyond ``max_flow`` are darkened, non-finite vectors are black.
    """
    f = _to_numpy(flow, "flow")
    if f.ndim == 4 and f.shape[0] == 1:
        f = f[0]
    if f.ndim == 3 and f.shape[0] == 2 and f.shape[2] != 2:
        f = np.moveaxis(f, 0, -1)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow: expected HxWx2 (or 2xHxW), got shape {np.shape(flow)}")
    finite = np.isfinite(f).all(axis=-1)
    u = np.where(finite, f[..., 0], 0.0)
    v = np.where(finite, f[..., 1], 0.0)
    mag = np.hypot(u, v)
    if max_flow is None:
        max_flow = float(mag.max()) if mag.size else 0.0
    max_flow = max(float(max_flow), 1e-9)
    rad = mag / max_flow

    wheel = color_wheel()
    n = wheel.shape[0]
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    pos = (angle + 1.0) / 2.0 * (n - 1)
    k0 = np.floor(pos).astype(np.int64)
    k1 = (k0 + 1) % n
    frac = (pos - k0)[..., None]
    col = ((1.0 - frac) * wheel[k0] + frac * wheel[k1]) / 255.0
    inside = (rad <= 1.0)[..., None]
    col = np.where(inside, 1.0 - rad[..., None] * (1.0 - col), col * 0.75)
    rgb = np.clip(col * 255.0 + 0.5, 0, 255).astype(np.uint8)
    rgb[~finite] = 0
    return rgb


__all__ = ["DepthColorizer", "color_wheel", "colorize_depth", "flow_to_color"]
