"""Pseudo ground-truth depth from a rectified stereo pair (OpenCV SGBM + left-right check), for
scoring monocular depth on real images when no lidar is available.

This is a *pseudo* ground truth: a classical stereo matcher's depth on the pixels where it is most
likely right, not a measurement. Anyone with a calibrated, rectified stereo rig can build it, which is
why it exists; what it scores is "agreement with careful stereo" and nothing stronger.

Construction (:func:`stereo_pseudo_gt`):

1. semi-global matching (``cv2.StereoSGBM``) of the left image against the right one, at the full
   image resolution (stereo accuracy falls with resolution: halving the image doubles the depth error
   of every pixel);
2. the same matcher on the horizontally flipped pair (flipped right image as the reference) gives the
   right image's disparity without needing ``opencv-contrib`` (``cv2.ximgproc``);
3. left-right consistency: a left pixel is kept only when the right image's disparity at the pixel it
   matches agrees within ``lr_tolerance_px``; this removes most occluded pixels and most false matches
   on repetitive or textureless surfaces (the two searches fail differently there);
4. masks: no disparity (SGBM's invalid value or ``<= 0``), the left border of width
   ``num_disparities`` (the search range runs out of the image there), the top ``top_fraction`` of the
   rows (mostly sky and far range on a forward-facing vehicle camera, where disparities are a few
   pixels and SGBM's sub-pixel error becomes a large depth error), and depths outside
   ``[min_depth, max_depth]``;
5. depth = ``fx * baseline / disparity``.

What it cannot judge (treat scores on it as a lower bound on the real error there):

* occluded pixels (one camera sees them, the other does not): removed, so depth edges are
  under-represented;
* textureless or repetitive regions (road without marks, walls, sky): mostly removed by the
  uniqueness and left-right checks; what survives may carry SGBM's smoothing bias;
* far range: depth error grows with the square of depth (``dZ = Z^2 / (fx B) * dd``); beyond
  ``max_depth`` nothing is scored, and near it the pseudo GT is itself noisy;
* near range closer than ``fx * baseline / num_disparities``: outside the disparity search, so absent;
* the top of the image: masked by ``top_fraction``;
* thin structures (poles, wires, foliage): SGBM's block window and smoothness penalties fatten or
  erase them;
* its own errors: a consistent mismatch in both directions passes the left-right check.

Pure numpy / OpenCV: no torch, no ROS.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = [
    "StereoPseudoGT",
    "StereoPseudoGTConfig",
    "config_dict",
    "constant_depth_like",
    "disparity_to_depth",
    "left_right_consistent",
    "sgbm_disparity",
    "stereo_pseudo_gt",
]


@dataclass
class StereoPseudoGTConfig:
    """Matcher and masking settings; the defaults suit KITTI-like forward-facing vehicle cameras."""

    num_disparities: int = 128  # search range in pixels (multiple of 16); nearest depth fx*B/num
    block_size: int = 5  # odd matching window; larger = smoother, fewer thin structures
    uniqueness_ratio: int = 10  # percent margin the best cost must win by (rejects ambiguous matches)
    speckle_window_size: int = 100  # remove disparity blobs smaller than this (pixels); 0 = off
    speckle_range: int = 2  # max disparity variation inside a blob (pixels)
    pre_filter_cap: int = 63
    mode: str = "sgbm_3way"  # "sgbm", "sgbm_3way" or "hh" (full 8-path, slower)
    lr_check: bool = True  # left-right consistency (step 3); off only to measure what it removes
    lr_tolerance_px: float = 1.0
    top_fraction: float = 0.35  # rows masked from the top (sky / far range)
    min_depth: float = 1.0  # metres
    max_depth: float = 60.0  # metres

    def __post_init__(self) -> None:
        if self.num_disparities <= 0 or self.num_disparities % 16:
            raise ValueError(f"num_disparities must be a positive multiple of 16, got {self.num_disparities}")
        if self.block_size < 1 or self.block_size % 2 == 0:
            raise ValueError(f"block_size must be odd and >= 1, got {self.block_size}")
        if self.mode not in _MODES:
            raise ValueError(f"mode must be one of {sorted(_MODES)}, got {self.mode!r}")
        if not 0.0 <= self.top_fraction < 1.0:
            raise ValueError(f"top_fraction must be in [0, 1), got {self.top_fraction}")
        if not 0.0 < self.min_depth < self.max_depth:
            raise ValueError(f"need 0 < min_depth < max_depth, got {self.min_depth}, {self.max_depth}")
        if self.lr_tolerance_px < 0:
            raise ValueError(f"lr_tolerance_px must be >= 0, got {self.lr_tolerance_px}")


_MODES = {
    "sgbm": cv2.STEREO_SGBM_MODE_SGBM,
    "sgbm_3way": cv2.STEREO_SGBM_MODE_SGBM_3WAY,
    "hh": cv2.STEREO_SGBM_MODE_HH,
}


@dataclass
class StereoPseudoGT:
    """One frame's pseudo ground truth.

    ``depth`` is HxW float32 metres with 0 where ``valid`` is False (the convention of sparse GT, so it
    can be passed to :func:`~depth_pose_ros.eval.depth_metrics.depth_metrics` or written as a 16-bit
    PNG). ``rejected`` counts the pixels each mask removed, in order (a pixel counts only for the first
    mask that removed it), so a report can say why coverage is low.
    """

    depth: np.ndarray
    valid: np.ndarray
    disparity: np.ndarray  # left image's disparity in pixels, NaN where SGBM gave none
    rejected: dict[str, int] = field(default_factory=dict)

    @property
    def coverage(self) -> float:
        """Fraction of the image's pixels that carry a pseudo-GT depth."""
        return float(self.valid.mean())


def _gray_u8(image: np.ndarray) -> np.ndarray:
    """SGBM wants 8-bit; colour is matched as gray (the pair's colour balance may differ)."""
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY if img.shape[2] == 3 else cv2.COLOR_RGBA2GRAY)
    if img.ndim != 2:
        raise ValueError(f"expected an HxW or HxWx3 image, got shape {np.shape(image)}")
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        lo, hi = float(np.nanmin(img)), float(np.nanmax(img))
        img = np.zeros_like(img) if hi <= lo else (img - lo) * (255.0 / (hi - lo))
        img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _matcher(cfg: StereoPseudoGTConfig) -> Any:
    channels = 1
    area = channels * cfg.block_size * cfg.block_size
    return cv2.StereoSGBM.create(
        minDisparity=0,
        numDisparities=cfg.num_disparities,
        blockSize=cfg.block_size,
        P1=8 * area,
        P2=32 * area,
        disp12MaxDiff=-1,  # OpenCV's own check is off: ours (both full searches) is stricter
        preFilterCap=cfg.pre_filter_cap,
        uniquenessRatio=cfg.uniqueness_ratio,
        speckleWindowSize=cfg.speckle_window_size,
        speckleRange=cfg.speckle_range,
        mode=_MODES[cfg.mode],
    )


def sgbm_disparity(left: np.ndarray, right: np.ndarray,
                   config: StereoPseudoGTConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(left disparity, right disparity) in pixels, NaN where SGBM found none.

    The right image's disparity ``d_R(x)`` says its pixel ``x`` matches left pixel ``x + d_R``; it is
    the left-reference matcher run on the mirrored pair (mirroring turns "match to the right" into
    "match to the left"), flipped back.
    """
    cfg = config or StereoPseudoGTConfig()
    lg, rg = _gray_u8(left), _gray_u8(right)
    if lg.shape != rg.shape:
        raise ValueError(f"left {lg.shape} and right {rg.shape} images differ in size")
    matcher = _matcher(cfg)
    raw_left = matcher.compute(lg, rg)
    # SGBM leaves its reference image's first num_disparities columns without disparity; mirrored, that
    # is the right image's last columns, exactly where the left image's right-edge pixels match. Padding
    # the mirrored pair on that side lets those pixels be checked instead of all failing the check.
    pad = cfg.num_disparities
    flipped = [cv2.copyMakeBorder(np.ascontiguousarray(img[:, ::-1]), 0, 0, pad, 0, cv2.BORDER_REPLICATE)
               for img in (rg, lg)]
    raw_right = matcher.compute(flipped[0], flipped[1])[:, pad:][:, ::-1]
    return _fixed_to_px(raw_left), _fixed_to_px(np.ascontiguousarray(raw_right))


def _fixed_to_px(raw: np.ndarray) -> np.ndarray:
    """SGBM's int16 disparity * 16 to float pixels; its invalid marker (min disparity - 1) -> NaN."""
    disp = raw.astype(np.float32) / 16.0
    disp[raw <= 0] = np.nan  # minDisparity = 0: invalid is -16; 0 would be infinite depth
    return disp


def left_right_consistent(disp_left: np.ndarray, disp_right: np.ndarray,
                          tolerance_px: float = 1.0) -> np.ndarray:
    """HxW bool: left pixels whose match in the right image points back to them within ``tolerance_px``.

    Left pixel ``(y, x)`` with disparity ``d`` matches right pixel ``(y, round(x - d))``; it is kept when
    that pixel's right disparity is finite and ``|d - d_R| <= tolerance_px``. Pixels whose match falls
    outside the right image or that have no left disparity are not consistent.
    """
    if disp_left.shape != disp_right.shape:
        raise ValueError(f"disparity maps differ in size: {disp_left.shape} vs {disp_right.shape}")
    h, w = disp_left.shape
    finite = np.isfinite(disp_left)
    xs = np.arange(w, dtype=np.float64)[None, :]
    xr = np.round(xs - np.where(finite, disp_left, 0.0))
    inside = finite & (xr >= 0) & (xr <= w - 1)
    xr_idx = np.clip(xr, 0, w - 1).astype(np.intp)
    rows = np.arange(h, dtype=np.intp)[:, None]
    back = disp_right[rows, xr_idx]
    ok = inside & np.isfinite(back)
    ok[ok] = np.abs(disp_left[ok] - back[ok]) <= tolerance_px
    return ok


def disparity_to_depth(disparity: np.ndarray, fx: float, baseline: float) -> np.ndarray:
    """Depth (m) ``fx * |baseline| / d``; NaN where the disparity is not finite and positive."""
    disp = np.asarray(disparity, dtype=np.float64)
    out = np.full(disp.shape, np.nan)
    ok = np.isfinite(disp) & (disp > 0)
    out[ok] = fx * abs(baseline) / disp[ok]
    return out


def stereo_pseudo_gt(left: np.ndarray, right: np.ndarray, fx: float, baseline: float,
                     config: StereoPseudoGTConfig | None = None) -> StereoPseudoGT:
    """Pseudo ground-truth depth of the left image of a rectified pair (see the module docstring).

    Args:
        left, right: rectified images (HxW or HxWx3, any dtype), right camera at +x of the left one.
        fx: focal length of the rectified pair in pixels.
        baseline: distance between the cameras in metres (its sign is ignored).
        config: matcher and mask settings.
    """
    cfg = config or StereoPseudoGTConfig()
    if not (np.isfinite(fx) and fx > 0):
        raise ValueError(f"fx must be finite and > 0, got {fx}")
    if not (np.isfinite(baseline) and baseline != 0):
        raise ValueError(f"baseline must be finite and non-zero, got {baseline}")
    disp_l, disp_r = sgbm_disparity(left, right, cfg)
    h, w = disp_l.shape
    depth = disparity_to_depth(disp_l, fx, baseline)

    rejected: dict[str, int] = {}
    valid = np.ones((h, w), dtype=bool)

    def reject(name: str, bad: np.ndarray) -> None:
        rejected[name] = int((valid & bad).sum())
        valid[bad] = False

    region = np.zeros((h, w), dtype=bool)
    region[: int(round(cfg.top_fraction * h)), :] = True
    region[:, : min(cfg.num_disparities, w)] = True
    reject("top_or_left_border", region)
    reject("no_disparity", ~np.isfinite(disp_l))
    if cfg.lr_check:
        reject("left_right", ~left_right_consistent(disp_l, disp_r, cfg.lr_tolerance_px))
    with np.errstate(invalid="ignore"):
        reject("range", ~((depth >= cfg.min_depth) & (depth <= cfg.max_depth)))
    out = np.where(valid, depth, 0.0).astype(np.float32)
    return StereoPseudoGT(depth=out, valid=valid, disparity=disp_l, rejected=rejected)


def constant_depth_like(gt: StereoPseudoGT | np.ndarray) -> np.ndarray:
    """The constant-depth baseline: a map of ones the size of ``gt`` (median scaling turns it into the
    median pseudo-GT depth, so it scores what "knowing only the typical depth" scores)."""
    shape = gt.depth.shape if isinstance(gt, StereoPseudoGT) else np.shape(gt)
    return np.ones(shape, dtype=np.float32)


def config_dict(config: StereoPseudoGTConfig) -> dict[str, Any]:
    """The settings as a plain dict (for JSON reports: a score means little without them)."""
    return asdict(config)
