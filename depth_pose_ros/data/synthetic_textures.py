"""Procedural texture atlases of the synthetic world, and their mip-mapped sampling.

Why atlases: every surface of the synthetic world is textured by looking a colour up at the
*surface coordinates* of the hit point (metres along a facade, world x/z on the road, ...), never at
image coordinates. The colour of a 3D point is therefore the same in every frame, which is what makes
brightness constancy (the assumption behind photometric losses and optical flow) hold.

Why mip-maps: a texture sampled at pixel centres aliases as soon as a pixel covers more than a texel
(the far road, facades seen at grazing angles). Aliased images are not brightness-constant under
sub-pixel motion, so each atlas keeps a pyramid of 2x2-box-filtered levels and
:meth:`PackedTextures.sample` blends the two levels around the pixel footprint (trilinear filtering,
as a GPU does). The level depends on
the viewing distance, so the colour of a point drifts by a fraction of a level per frame
(``log2(z_prev / z_next)``, below 0.2 levels for points beyond 8 m at 1.5 m/frame); pass
``lod=None`` (the ``antialias=False`` option of the sequence) for strictly view-independent colours
(mip-mapping lowers the error left by warping the next frame with the GT flow about threefold:
docs/bench_synthetic.md, brightness constancy).

Every atlas is periodic (its borders wrap), built from FFT-filtered white noise (periodic by
construction) and analytic patterns whose periods divide the tile size. Atlases are generated once
per process from a fixed seed: scenes differ by seed through placement, tints, scales and offsets.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

# cv2.remap refuses maps with a side of SHRT_MAX or more, so point lists are folded into rows.
_REMAP_ROW = 1024
_TEXTURE_SEED = 20240611
_LEVEL_SCALE = np.float32(0.5) ** np.arange(16, dtype=np.float32)  # 2^-k


def mip_levels(image: np.ndarray, max_levels: int = 10) -> list[np.ndarray]:
    """Mip pyramid of a level-0 HxW or HxWxC image: halves (2x2 mean) while both sides stay even.

    A 2x2 mean of a periodic image is periodic with half the period, so every level tiles too.
    """
    level = np.asarray(image, dtype=np.float32)
    if level.ndim == 2:
        level = level[..., None]
    levels = [np.ascontiguousarray(level)]
    while len(levels) < max_levels:
        h, w = level.shape[:2]
        if h % 2 or w % 2 or min(h, w) < 4:
            break
        level = level.reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3), dtype=np.float32)
        levels.append(np.ascontiguousarray(level))
    return levels


class PackedTextures:
    """Several periodic textures with the same channel count, all mip levels packed in one image.

    Why packed: sampling then costs two ``cv2.remap`` calls for any mix of textures and mip levels
    (levels k and k+1 of each point), instead of a gather / remap / scatter per texture and level.
    Each level is stored with a one-texel border copied from the opposite side (wrap padding), so
    bilinear lookups tile seamlessly although neighbouring levels sit next to each other.

    ``textures`` is a list of (level-0 image, texel size): the texel size is in surface units
    (metres for surfaces, radians for the sky), so that surface coordinates map to texels by division.
    """

    def __init__(self, textures: list[tuple[np.ndarray, float]], max_levels: int = 10) -> None:
        pyramids = [mip_levels(img, max_levels) for img, _ in textures]
        channels = {p[0].shape[2] for p in pyramids}
        if len(channels) != 1:
            raise ValueError(f"packed textures need one channel count, got {sorted(channels)}")
        n = len(pyramids)
        self.texel = np.array([t for _, t in textures], np.float64)
        self.size = np.array([p[0].shape[:2] for p in pyramids], np.float64)  # (h0, w0)
        self.num_levels = np.array([len(p) for p in pyramids], np.int64)
        self.row = np.zeros((n, max_levels + 1), np.float32)  # first padded row of each level
        width = max(p[0].shape[1] for p in pyramids) + 2
        blocks, y = [], 0
        for j, pyr in enumerate(pyramids):
            for k, level in enumerate(pyr):
                padded = np.pad(level, ((1, 1), (1, 1), (0, 0)), mode="wrap")
                block = np.zeros((padded.shape[0], width, padded.shape[2]), np.float32)
                block[:, : padded.shape[1]] = padded
                blocks.append(block)
                self.row[j, k] = y
                y += padded.shape[0]
            self.row[j, len(pyr):] = self.row[j, len(pyr) - 1]
        self.image = np.ascontiguousarray(np.concatenate(blocks, axis=0))
        if self.image.shape[0] >= 32767:
            raise ValueError("packed textures too tall for cv2.remap (>= 32767 rows)")

    @property
    def channels(self) -> int:
        return int(self.image.shape[2])

    def sample(self, tex: np.ndarray | int, u: np.ndarray, v: np.ndarray,
               lod: Optional[np.ndarray] = None) -> np.ndarray:
        """Colours (N, C) float32 of texture(s) ``tex`` at surface coordinates u (columns), v (rows).

        ``tex`` is one index or one per point. ``lod`` is the wanted mip level per point (log2 of the
        pixel footprint in level-0 texels); it is clipped to the texture's pyramid and the two
        neighbouring levels are blended (trilinear filtering). ``None`` samples level 0 only.
        """
        tex = np.asarray(tex, np.int64)
        u, v = np.asarray(u), np.asarray(v)
        # Wrap before the float32 maps: world coordinates reach ~1e5 texels, where float32 loses the
        # fraction, so float64 input (the road) wraps in float64; box coordinates come as float32.
        dt = np.float32 if u.dtype == np.float32 and v.dtype == np.float32 else np.float64
        inv_texel = (1.0 / self.texel[tex]).astype(dt)
        qx = _wrap(u * inv_texel, self.size[tex, 1].astype(dt))
        qy = _wrap(v * inv_texel, self.size[tex, 0].astype(dt))
        if lod is None:
            return remap_points(self.image, qx + 0.5, qy + 0.5 + self.row[tex, 0], cv2.BORDER_REPLICATE)
        top = self.num_levels[tex] - 1
        lod = np.clip(np.asarray(lod, np.float32), 0.0, top.astype(np.float32))
        k0 = np.minimum(lod.astype(np.int64), np.maximum(top - 1, 0))
        frac = (lod - k0)[:, None]
        scale = _LEVEL_SCALE[k0]
        x0, y0 = qx * scale, qy * scale
        a = remap_points(self.image, x0 + 0.5, y0 + 0.5 + self.row[tex, k0], cv2.BORDER_REPLICATE)
        x0 *= 0.5
        y0 *= 0.5
        b = remap_points(self.image, x0 + 0.5, y0 + 0.5 + self.row[tex, k0 + 1], cv2.BORDER_REPLICATE)
        b -= a
        b *= frac
        b += a
        return b


def _wrap(q: np.ndarray, period: np.ndarray) -> np.ndarray:
    """``q mod period`` as float32 in [0, period] (floor form: several times faster than np.mod)."""
    return (q - np.floor(q / period) * period).astype(np.float32, copy=False)


def remap_points(image: np.ndarray, x: np.ndarray, y: np.ndarray, border: int = cv2.BORDER_WRAP) -> np.ndarray:
    """Bilinear samples (N, C) of ``image`` at float pixel positions (x, y) (default: borders wrap).

    The points are passed to cv2.remap as a (rows, 1024) map plus a one-row remainder, without copies.
    """
    x = np.ascontiguousarray(x, np.float32)
    y = np.ascontiguousarray(y, np.float32)
    n = x.shape[0]
    out = np.empty((n, image.shape[2] if image.ndim == 3 else 1), np.float32)
    full = (n // _REMAP_ROW) * _REMAP_ROW
    for lo, hi, cols in ((0, full, _REMAP_ROW), (full, n, n - full)):
        if hi > lo:
            res = cv2.remap(image, x[lo:hi].reshape(-1, cols), y[lo:hi].reshape(-1, cols), cv2.INTER_LINEAR,
                            borderMode=border)
            out[lo:hi] = res.reshape(hi - lo, -1)
    return out


# ---- procedural building blocks ----------------------------------------------------------------
def periodic_noise(shape: tuple[int, int], rng: np.random.Generator, min_period: float, max_period: float,
                   slope: float = 1.0) -> np.ndarray:
    """Zero-mean, unit-std periodic noise with features between ``min_period`` and ``max_period`` texels.

    White noise filtered in the Fourier domain with amplitude ``f**-slope`` inside the band: periodic
    by construction (it tiles seamlessly) and multi-scale (slope 1 gives the "pink" look of natural
    surfaces).
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    lo, hi = 1.0 / max_period, 1.0 / min_period
    band = np.clip((f - lo * 0.7) / (lo * 0.3), 0, 1) * np.clip((hi * 1.3 - f) / (hi * 0.3), 0, 1)
    amp = band / np.maximum(f, 1e-6) ** slope
    spec = np.fft.rfft2(rng.standard_normal((h, w))) * amp
    out = np.fft.irfft2(spec, s=(h, w))
    out -= out.mean()
    std = out.std()
    return (out / std if std > 0 else out).astype(np.float32)


def _band(coord: np.ndarray, start: float, stop: float) -> np.ndarray:
    """1.0 where start <= coord < stop, else 0.0 (float mask)."""
    return ((coord >= start) & (coord < stop)).astype(np.float32)


# ---- the atlases -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Atlases:
    """All textures of the world. ``gray`` holds ASPHALT and SKY, ``road`` the road overlay,
    ``boxes`` one texture per name of :data:`BOX_ATLASES` (box surface code refers to them by index)."""

    gray: PackedTextures  # 1 channel: asphalt (world x/z, modulates all ground) and sky clouds
    road: PackedTextures  # RGBA, road frame (s along, d across): markings, kerb, sidewalk, verge
    boxes: PackedTextures  # RGB, box face coordinates, white-ish (boxes tint them)


ASPHALT, SKY_CLOUDS = 0, 1
BOX_ATLASES = ("facade_plaster", "facade_brick", "facade_office", "car_body", "car_top", "glass",
               "metal", "foliage", "bark", "roof")
# Indoor textures of the room world (:mod:`synthetic_room`). Packed after BOX_ATLASES and generated from
# their own seed, so the street atlases (and street images) are unchanged by them.
ROOM_ATLASES = ("wood", "carpet", "tiles", "paint", "ceiling_tiles", "books", "screen", "fabric", "poster",
                "cardboard", "window", "lamp")
ATLAS_INDEX = {name: i for i, name in enumerate(BOX_ATLASES + ROOM_ATLASES)}

# Road cross-section (metres from the centreline; the same on both sides). The road frame atlas
# covers |d| <= ROAD_ATLAS_HALF; beyond it the outermost column (grass verge) repeats.
LANE_WIDTH = 3.5
PARKING_WIDTH = 2.2
CURB_WIDTH = 0.25
SIDEWALK_WIDTH = 2.25
CURB_D = LANE_WIDTH + PARKING_WIDTH  # road edge (kerb) distance from the centreline
SIDEWALK_END_D = CURB_D + CURB_WIDTH + SIDEWALK_WIDTH
ROAD_TEXEL = 0.02
ROAD_PERIOD = 9.6  # along-road period: centre dash 3.2 m + gap 6.4 m, 16 slabs of 0.6 m
ROAD_ATLAS_HALF = 12.8


def _road_atlas(rng: np.random.Generator) -> np.ndarray:
    """RGBA overlay in road coordinates: columns = s (period 9.6 m), rows = d in [-12.8, 12.8) m."""
    t = ROAD_TEXEL
    ns, nd = int(round(ROAD_PERIOD / t)), int(round(2 * ROAD_ATLAS_HALF / t))
    s = (np.arange(ns) + 0.5)[None, :] * t
    d = (np.arange(nd) + 0.5)[:, None] * t - ROAD_ATLAS_HALF
    ad = np.abs(d)
    rgb = np.zeros((nd, ns, 3), np.float32)
    alpha = np.zeros((nd, ns), np.float32)

    def put(mask: np.ndarray, colour: np.ndarray, a: float) -> None:
        m = np.broadcast_to(mask, (nd, ns)).astype(bool)
        rgb[m] = np.broadcast_to(colour, (nd, ns, 3))[m]
        alpha[m] = a

    paint = np.array([0.92, 0.92, 0.88], np.float32)
    put((ad < 0.06) & (s < 3.2), paint, 0.9)  # dashed centre line
    put(np.abs(ad - LANE_WIDTH) < 0.06, paint, 0.85)  # solid line between lane and parking strip
    bay = (ad > LANE_WIDTH) & (ad < CURB_D) & (np.mod(s, 4.8) < 0.1)  # parking bay ticks
    put(bay, paint, 0.75)
    wear = 0.5 + 0.15 * periodic_noise((nd, ns), rng, 3, 60)
    alpha *= np.clip(wear + 0.4, 0.6, 1.0)  # worn paint
    # kerb stones: light concrete, one joint every 1.2 m
    kerb = (ad >= CURB_D) & (ad < CURB_D + CURB_WIDTH)
    kerb_col = np.array([0.72, 0.71, 0.68], np.float32) * (1.0 - 0.35 * (np.mod(s, 1.2) < 0.03))[..., None]
    put(kerb, kerb_col, 1.0)
    # sidewalk: 0.6 m slabs with dark joints and a random tone per slab
    walk = (ad >= CURB_D + CURB_WIDTH) & (ad < SIDEWALK_END_D)
    dw = ad - (CURB_D + CURB_WIDTH)
    joint = (np.mod(s, 0.6) < 0.025) | (np.mod(dw, 0.6) < 0.025)
    slab_tone = rng.random((16, 8, 2)).astype(np.float32)  # (along, across, side) -> tone
    ia = np.broadcast_to(np.floor(s / 0.6).astype(int) % 16, (nd, ns))
    ib = np.broadcast_to(np.clip(np.floor(dw / 0.6).astype(int), 0, 7), (nd, ns))
    tone = slab_tone[ia, ib, np.broadcast_to((d > 0).astype(int), (nd, ns))]
    walk_col = (np.array([0.62, 0.6, 0.57], np.float32) * (0.85 + 0.25 * tone)[..., None]
                * (1.0 - 0.45 * joint)[..., None])
    put(walk, walk_col, 1.0)
    # grass verge: green with clumps at several scales
    grass = ad >= SIDEWALK_END_D
    g = periodic_noise((nd, ns), rng, 2, 40) * 0.5 + periodic_noise((nd, ns), rng, 30, 240) * 0.5
    grass_col = np.stack([0.22 + 0.07 * g, 0.36 + 0.1 * g, 0.14 + 0.04 * g], axis=-1)
    put(grass, grass_col, 1.0)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def _facade(rng: np.random.Generator, style: str) -> np.ndarray:
    """A 12.8 m x 12.8 m wall tile (512 px at 2.5 cm): 4 x 4 window bays of 3.2 m, rows = height."""
    n = 512
    t = 12.8 / n
    y = (np.arange(n) + 0.5)[:, None] * t  # height above the box bottom (rows grow upwards in metres)
    x = (np.arange(n) + 0.5)[None, :] * t
    bx, by = np.mod(x, 3.2), np.mod(y, 3.2)
    grain = periodic_noise((n, n), rng, 2, 24)
    stains = periodic_noise((n, n), rng, 40, 400)
    if style == "facade_brick":  # 0.256 m x 0.08 m bricks in running bond (50 x 160 per tile)
        row = np.floor(y / 0.08)
        offset = np.where(np.mod(row, 2) == 0, 0.0, 0.128)
        mortar = (np.mod(y, 0.08) < 0.015) | (np.mod(x + offset, 0.256) < 0.015)
        tone = rng.random((160, 50)).astype(np.float32)
        brick = np.floor((x + offset) / 0.256).astype(int) % 50
        bt = tone[row.astype(int) % 160, brick]
        wall = np.stack([0.55 + 0.12 * bt, 0.28 + 0.06 * bt, 0.2 + 0.05 * bt], axis=-1)
        wall = np.where(mortar[..., None], np.float32(0.62), wall)
        win_x, win_y = (1.0, 2.2), (0.9, 2.3)
    elif style == "facade_office":
        wall = np.broadcast_to(np.array([0.7, 0.72, 0.74], np.float32), (n, n, 3)).copy()
        wall *= (1.0 - 0.25 * (np.mod(x, 1.6) < 0.06))[..., None]  # mullions
        win_x, win_y = (0.0, 3.2), (0.9, 2.6)  # ribbon windows
    else:
        wall = np.broadcast_to(np.array([0.82, 0.78, 0.7], np.float32), (n, n, 3)).copy()
        win_x, win_y = (0.9, 2.3), (0.8, 2.4)
    wall = wall * (1.0 + 0.06 * grain + 0.08 * stains)[..., None]
    in_win = _band(bx, *win_x) * _band(by, *win_y)
    frame = (_band(bx, win_x[0] - 0.08, win_x[1] + 0.08) * _band(by, win_y[0] - 0.08, win_y[1] + 0.08)
             * (1 - in_win))
    sill = _band(bx, win_x[0] - 0.12, win_x[1] + 0.12) * _band(by, win_y[0] - 0.14, win_y[0] - 0.06)
    # per-window variety: sky reflection gradient, curtains, the odd lit room
    win_id = (np.floor(x / 3.2) + 4 * np.floor(y / 3.2)).astype(int)
    look = rng.random((16, 3)).astype(np.float32)
    refl = 0.15 + 0.25 * (by - win_y[0]) / (win_y[1] - win_y[0]) * look[win_id, 0][..., None] ** 0.5
    glass = np.concatenate([refl * 0.8, refl * 0.9, refl * 1.1], axis=-1)
    curtain = (look[win_id, 1] > 0.6) & (np.mod(bx - win_x[0], 0.25) < 0.125)
    glass = np.where(curtain[..., None], np.float32(0.55) + 0.05 * grain[..., None], glass)
    lit = look[win_id, 2] > 0.94
    glass = np.where(lit[..., None], np.array([0.7, 0.62, 0.45], np.float32), glass)
    glass = glass * (1.0 + 0.05 * grain)[..., None]
    out = wall * (1 - in_win - frame - sill)[..., None] + glass * in_win[..., None]
    out += np.float32(0.88) * frame[..., None] + np.float32(0.75) * sill[..., None]
    return np.clip(out, 0, 1).astype(np.float32)


def _box_atlas(name: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(image, texel size in metres) of the box atlas ``name`` (white-ish; boxes tint it)."""
    if name.startswith("facade"):
        return _facade(rng, name), 12.8 / 512
    if name == "car_body":  # 5.12 m x 1.28 m at 2 cm: dark band at the bottom (wheels, shadow)
        h, w = 64, 256
        y = (np.arange(h) + 0.5)[:, None] * 0.02
        n = periodic_noise((h, w), rng, 2, 32)
        body = 0.85 + 0.04 * n
        body = body * (1 - 0.25 * _band(y, 0.62, 0.66)) * (1 - 0.15 * _band(y, 0.95, 1.0))
        dark = 0.12 + 0.04 * n
        wheel = np.where(y < 0.32, dark, body)
        return np.repeat(wheel[..., None], 3, axis=2), 0.02
    if name == "car_top":
        n = periodic_noise((128, 128), rng, 2, 64)
        return np.repeat((0.8 + 0.05 * n)[..., None], 3, axis=2), 0.02
    if name == "glass":  # 2.56 m x 1.28 m: sky reflection fading downwards, dark pillars every 1.28 m
        h, w = 64, 128
        y = (np.arange(h) + 0.5)[:, None] / h  # 0 at the bottom of the cabin
        x = (np.arange(w) + 0.5)[None, :] * 0.02
        n = periodic_noise((h, w), rng, 2, 48)
        v = 0.2 + 0.25 * y + 0.03 * n
        pillar = (np.mod(x, 1.28) < 0.12).astype(np.float32)
        v = v * (1 - pillar) + (0.12 + 0.02 * n) * pillar
        return np.stack([v * 0.85, v * 0.95, v * 1.1], axis=-1), 0.02
    if name == "metal":
        n = periodic_noise((128, 32), rng, 2, 32)
        v = 0.55 + 0.08 * n
        return np.stack([v, v, v * 1.03], axis=-1), 0.02
    if name == "foliage":
        n1 = periodic_noise((256, 256), rng, 2, 12)
        n2 = periodic_noise((256, 256), rng, 12, 128)
        v = np.clip(0.5 + 0.22 * n1 + 0.18 * n2, 0.05, 1.0)
        return np.stack([0.25 * v, 0.5 * v, 0.15 * v], axis=-1), 0.02
    if name == "bark":
        n = periodic_noise((128, 64), rng, 2, 16)
        x = (np.arange(64) + 0.5)[None, :]
        v = 0.35 + 0.07 * n + 0.05 * np.sin(x * 2 * np.pi / 8)
        return np.stack([v, 0.75 * v, 0.55 * v], axis=-1), 0.01
    if name == "roof":
        n = periodic_noise((128, 128), rng, 2, 64)
        v = 0.45 + 0.06 * n
        return np.stack([v, v * 0.9, v * 0.85], axis=-1), 0.05
    raise ValueError(f"unknown box atlas {name!r}")


def _room_atlas(name: str, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """(image, texel size in metres) of the indoor atlas ``name`` (columns = u, rows = v; boxes tint it).

    Floors / tops are sampled with u = box x, v = box z; sides with u along the face, v = height above
    the box bottom. Every pattern period divides the tile, so all of them tile seamlessly.
    """
    if name == "wood":  # 2.56 m tile at 1 cm: planks 16 cm wide along u, grain, end joints, tone per plank
        n = 256
        y: np.ndarray = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        plank = y // 16
        tone = rng.random(16).astype(np.float32)
        joint_at = rng.integers(0, n, 16)
        low = periodic_noise((n, n), rng, 40, 256)
        grain = 0.5 + 0.5 * np.sin(2 * np.pi * (y / 5.3 + 1.5 * low + 0.1 * plank))
        fine = periodic_noise((n, n), rng, 1.5, 8)
        v = 0.55 + 0.18 * tone[plank] + 0.08 * grain + 0.04 * fine
        seam = (np.mod(y, 16) == 0) | (np.abs(x - joint_at[plank]) < 1)
        v = np.where(seam, v * 0.55, v)
        return np.stack([v, 0.72 * v, 0.48 * v], axis=-1), 0.01
    if name == "carpet":
        n = 256
        v = 0.55 + 0.1 * periodic_noise((n, n), rng, 1.2, 4) + 0.06 * periodic_noise((n, n), rng, 16, 200)
        return np.repeat(v[..., None], 3, axis=2), 0.01
    if name == "tiles":  # 5.12 m at 1 cm: 32 cm tiles, grout, tone per tile
        n = 512
        y = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        tone = rng.random((16, 16)).astype(np.float32)
        t = tone[y // 32, x // 32]
        grout = (np.mod(y, 32) < 1) | (np.mod(x, 32) < 1)
        v = 0.78 + 0.08 * t + 0.025 * periodic_noise((n, n), rng, 2, 30)
        v = np.where(grout, 0.45, v)
        return np.repeat(v[..., None], 3, axis=2), 0.01
    if name == "paint":  # interior paint: faint roller texture and stains, skirting board at the bottom
        n = 256
        y = (np.arange(n) + 0.5)[:, None] * 0.02
        v = 0.86 + 0.02 * periodic_noise((n, n), rng, 1.5, 10) + 0.02 * periodic_noise((n, n), rng, 20, 256)
        skirting = (y >= 0.05) & (y < 0.15)
        v = np.where(skirting, 0.95 + 0.0 * v, v) * np.where(np.abs(y - 0.15) < 0.011, 0.7, 1.0)
        return np.repeat(v[..., None], 3, axis=2), 0.02
    if name == "ceiling_tiles":  # 64 cm acoustic tiles with speckle on a 5.12 m tile
        n = 512
        y = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        speck = periodic_noise((n, n), rng, 1.0, 3)
        grid = (np.mod(y, 64) < 2) | (np.mod(x, 64) < 2)
        v = 0.86 + 0.05 * speck
        v = np.where(grid, 0.7, v)
        return np.repeat(v[..., None], 3, axis=2), 0.01
    if name == "books":  # 2.56 m x 0.32 m at 5 mm: spines of random width / colour / height, dark above
        h, w = 64, 512
        y = (np.arange(h) + 0.5)[:, None] * 0.005
        edges = np.cumsum(rng.integers(4, 12, 200))
        edges = edges[edges < w - 4]
        idx = np.searchsorted(edges, np.arange(w), side="right")
        k = len(edges) + 1
        col = rng.uniform(0.15, 0.9, (k, 3)).astype(np.float32)
        height = rng.uniform(0.17, 0.3, k)
        spine = col[idx][None, :, :] * (0.9 + 0.1 * periodic_noise((h, w), rng, 1, 6))[..., None]
        gap = np.isin(np.arange(w), edges)[None, :, None]
        spine = np.where(gap, spine * 0.5, spine)
        above = (y > height[idx][None, :])[..., None]
        return np.where(above, np.float32(0.08), spine), 0.005
    if name == "screen":  # 0.64 m x 0.64 m at 2.5 mm: dark desktop with a few bright windows
        n = 256
        img = np.broadcast_to(np.array([0.08, 0.1, 0.16], np.float32), (n, n, 3)).copy()
        img += 0.05 * periodic_noise((n, n), rng, 30, 256)[..., None]
        for _ in range(6):
            x0, y0 = rng.integers(0, n - 40, 2)
            w, h = rng.integers(30, 120, 2)
            c = rng.uniform(0.35, 0.95, 3).astype(np.float32)
            img[y0:y0 + h, x0:x0 + w] = c
            img[y0 + 2:y0 + h - 2:6, x0 + 4:x0 + w - 4] *= 0.4  # text lines
        return img, 0.0025
    if name == "fabric":
        n = 128
        x = np.arange(n)[None, :]
        y = np.arange(n)[:, None]
        weave = 0.04 * (np.mod(x + y, 4) < 2)
        v = 0.6 + weave + 0.06 * periodic_noise((n, n), rng, 1.5, 12) + 0.05 * periodic_noise((n, n), rng, 16, 128)
        return np.repeat(v[..., None], 3, axis=2), 0.005
    if name == "poster":  # 1.024 m at 4 mm: colourful blobs, stripes and a frame band
        n = 256
        img = np.zeros((n, n, 3), np.float32)
        for ch in range(3):
            img[..., ch] = 0.5 + 0.2 * periodic_noise((n, n), rng, 20, 256, slope=1.5)
        yy, xx = np.mgrid[0:n, 0:n]
        for _ in range(8):
            cx, cy, r = rng.integers(0, n, 2).tolist() + [int(rng.integers(8, 50))]
            dx, dy = np.abs(xx - cx), np.abs(yy - cy)
            d2 = np.minimum(dx, n - dx) ** 2 + np.minimum(dy, n - dy) ** 2  # periodic distance
            img[d2 < r * r] = rng.uniform(0.1, 0.95, 3)
        return img, 0.004
    if name == "cardboard":
        n = 128
        v = 0.7 + 0.05 * periodic_noise((n, n), rng, 1, 6) + 0.06 * periodic_noise((n, n), rng, 12, 128)
        x = np.arange(n)[None, :]
        v = v * (1 - 0.04 * (np.mod(x, 4) < 2))
        return np.stack([v, 0.8 * v, 0.58 * v], axis=-1), 0.005
    if name == "window":  # frosted bright panes of 64 cm with white frame bars (1.28 m at 1 cm)
        n = 128
        y = np.arange(n)[:, None]
        x = np.arange(n)[None, :]
        bar = (np.mod(x, 64) < 4) | (np.mod(y, 64) < 4)
        pane = 1.0 + 0.04 * periodic_noise((n, n), rng, 4, 64) - 0.15 * (y / n)
        v = np.where(bar, 0.9, pane)
        return np.stack([v, v, 1.05 * v], axis=-1), 0.01
    if name == "lamp":
        n = 32
        v = 1.0 + 0.02 * periodic_noise((n, n), rng, 1, 8)
        return np.stack([v, 0.97 * v, 0.9 * v], axis=-1), 0.02
    raise ValueError(f"unknown room atlas {name!r}")


@functools.lru_cache(maxsize=1)
def _street_textures() -> tuple[PackedTextures, PackedTextures, list[tuple[np.ndarray, float]]]:
    """Gray and road atlases and the level-0 box textures of the street (one fixed texture seed)."""
    rng = np.random.default_rng(_TEXTURE_SEED)
    asphalt = 0.5 + 0.11 * periodic_noise((1024, 1024), rng, 1.5, 24) + 0.07 * periodic_noise(
        (1024, 1024), rng, 24, 512)
    sky = 0.5 + 0.5 * periodic_noise((128, 512), rng, 6, 200, slope=1.4)
    boxes = []
    for name in BOX_ATLASES:
        img, texel = _box_atlas(name, rng)
        boxes.append((np.clip(img, 0, 1), texel))
    gray = PackedTextures([(np.clip(asphalt, 0, 1), 0.02), (np.clip(sky, 0, 1), 2 * np.pi / 512)])
    road = PackedTextures([(_road_atlas(rng), ROAD_TEXEL)])
    return gray, road, boxes


@functools.lru_cache(maxsize=2)
def atlases(room: bool = False) -> Atlases:
    """The process-wide atlases (generated once, deterministic: a fixed texture seed).

    ``room=True`` also packs :data:`ROOM_ATLASES` after the street box textures (same indices for
    those; generated from their own seed), for the room world; the street renderer keeps the smaller
    street-only set (docs/bench_synthetic.md: sizes).
    """
    gray, road, boxes = _street_textures()
    boxes = list(boxes)
    if room:
        room_rng = np.random.default_rng(_TEXTURE_SEED + 1)
        for name in ROOM_ATLASES:
            img, texel = _room_atlas(name, room_rng)
            boxes.append((np.clip(img, 0, 1).astype(np.float32), texel))
    return Atlases(gray=gray, road=road, boxes=PackedTextures(boxes))
