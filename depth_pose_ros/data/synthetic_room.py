"""Indoor variant of the synthetic world: closed rooms of boxes, a handheld camera, exact depth.

``SyntheticSequence(world="room", ...)`` (spec ``synthetic:world=room,seed=N,...``) renders a
:class:`RoomWorld` with the same ray caster as the street (:mod:`synthetic_render`), so depth, pose,
flow and occlusion are exact in the same way. Everything is a box (axis-aligned in its own yawed
frame); there is no ground plane and no sky: the room is closed, every ray hits a surface, every
pixel has a finite positive depth.

Layout (all sizes in metres; world frame x right, y *down*, z forward, floor y = 0, ceiling
y = -ceiling height, as in the street world):
* room A: ``[0, W] x [0, D]`` with W in [3, 9], D in [3, 12], ceiling 2.4-3.2; walls 12 cm thick
  outside it, one floor slab and one ceiling slab under / over everything. The wall boxes overlap at
  the corners and reach into the slabs, so the shell has no cracks.
* optionally (p = 0.6) a second space B behind the far wall (z = D): a corridor (1.3-2.2 m wide,
  3-10 m long) or a second room, reached through a doorway (0.9-1.0 m door with casing) or a wide
  opening. The camera can walk through when the doorway is wide enough for its clearance.
* closed doors (a panel recessed in the wall, with casing) and windows (a bright frosted panel in a
  recess with a sill; they do not open onto anything) on the other walls.
* furniture: bookshelves with shelf boards and rows of books, cabinets / sideboards with things on
  top, desks with one or two monitors, a keyboard and a chair, free-standing tables with chairs and
  objects on them, sofas, stacks of cardboard boxes, plants, floor lamps, bins; posters, TVs,
  whiteboards and radiators on the walls; ceiling lamps; rugs. Placement keeps the free floor
  connected (a furniture piece that would cut the walkable space, or leave too little of it, is
  dropped) and keeps doorways clear.
* textures: the room atlases of :mod:`synthetic_textures` (wood, carpet, tiles, paint, ceiling
  tiles, books, screen, fabric, poster, cardboard, window, lamp) with random tints, scales and
  offsets per box; a per-seed style (home / office / storage) picks the mix.
* lighting (:class:`RoomRenderer`): the box shader's directional term (``sun``: light from the
  windows' side) times ambient + point lights at the ceiling lamps (Lambert with 1 / (1 + (d/r)^2)
  fall-off, no shadows). Like the street shading, it depends on the surface point and its normal only,
  so colours are brightness-constant between frames. Lamps and windows are emissive (fixed gain).

Camera: a handheld walk in the free space: waypoints with >= 0.45 m clearance to walls and
furniture footprints joined by segments with >= 0.42 m clearance, smoothed (the smoothed path keeps
>= 0.33 m), walked at 0.3-1.2 m/s (slower in turns), height 0.9-1.7 m with a little step bob, yaw =
path heading (smoothed) plus a slow look-around, yaw rate limited to about 40 deg/s, pitch -18..+3
deg (mostly looking slightly down) with slow variation, roll within a few degrees. The camera is
never inside furniture: clearance is measured to furniture *footprints*, whatever the camera height.
hfov is drawn per seed in [55, 75] deg unless given.
"""
from __future__ import annotations

from typing import Any, Optional

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

from depth_pose_ros.data.synthetic_render import Renderer
from depth_pose_ros.data.synthetic_scene import (
    BoxArrays,
    TabulatedCamera,
    _BoxList,
    _smooth_signal,
    rotation_xyz_small,
    se3,
    yaw_matrix,
)

GRID = 0.05  # occupancy grid resolution (m)
WALL_T = 0.12  # wall thickness
WAYPOINT_CLEARANCE = 0.45
SEGMENT_CLEARANCE = 0.42
PATH_CLEARANCE = 0.35  # the smoothed camera path keeps at least this (grid) distance to walls / furniture
MAX_YAW_RATE = np.deg2rad(40.0)
ROOM_HFOV_RANGE = (55.0, 75.0)

_WALL_TINTS = np.array([
    [1.0, 1.0, 1.0], [1.0, 0.97, 0.9], [0.93, 0.95, 1.0], [0.95, 0.98, 0.92], [1.0, 0.93, 0.88],
    [0.85, 0.87, 0.9], [0.8, 0.9, 0.85], [0.95, 0.85, 0.75], [0.7, 0.78, 0.9],
], np.float32)
_WOOD_TINTS = np.array([[1.0, 1.0, 1.0], [1.15, 1.1, 1.05], [0.7, 0.65, 0.6], [0.45, 0.4, 0.38],
                        [1.3, 1.25, 1.2]], np.float32)
_FURNITURE_PAINT = np.array([[0.95, 0.95, 0.95], [0.25, 0.25, 0.27], [0.6, 0.62, 0.65], [0.9, 0.88, 0.8],
                             [0.5, 0.6, 0.75], [0.75, 0.55, 0.45]], np.float32)
_FABRIC_TINTS = np.array([[0.5, 0.55, 0.7], [0.7, 0.3, 0.25], [0.35, 0.35, 0.38], [0.75, 0.7, 0.6],
                          [0.3, 0.5, 0.4], [0.85, 0.6, 0.3]], np.float32)


class _Boxes(_BoxList):
    """Box list with an emissive flag per box and helpers for axis-aligned extents."""

    def __init__(self) -> None:
        super().__init__()
        self.emissive: list[bool] = []

    # emissive takes the base class's fifth positional place (side, ...) only as a keyword here
    def add(self, center, yaw, half, obj=-1, emissive=False, **kw) -> None:  # type: ignore[override]  # noqa: D102
        super().add(center, yaw, half, obj, **kw)
        self.emissive.append(bool(emissive))

    def extent(self, x0, x1, y0, y1, z0, z1, **kw) -> None:
        """World axis-aligned box [x0, x1] x [y0, y1] x [z0, z1] (y down: y0 < y1)."""
        self.add(((x0 + x1) / 2, (y0 + y1) / 2, (z0 + z1) / 2), 0.0,
                 ((x1 - x0) / 2, (y1 - y0) / 2, (z1 - z0) / 2), **kw)


def _tint(colour, rng: np.random.Generator, spread: float = 0.08) -> np.ndarray:
    return np.clip(np.asarray(colour, np.float32) * rng.uniform(1 - spread, 1 + spread, 3), 0.02, 1.6)


# ---- furniture in object coordinates ---------------------------------------------------------------
# A piece is a list of parts (x0, x1, h0, h1, z0, z1, style): x across, h height above the floor, z
# depth with the *front* towards +z; the footprint is centred on the origin. ``style`` holds the
# _BoxList keywords (side/top atlas, tints, scale, offset, emissive).
def _part(parts, x0, x1, h0, h1, z0, z1, **style) -> None:
    parts.append((x0, x1, h0, h1, z0, z1, style))


def _wood(rng) -> dict:
    t = _tint(_WOOD_TINTS[rng.integers(len(_WOOD_TINTS))], rng)
    return dict(side="wood", top="wood", tint=t, offset=(rng.uniform(0, 2.56), rng.uniform(0, 2.56)))


def _panel(rng) -> dict:
    if rng.random() < 0.5:
        return _wood(rng)
    t = _tint(_FURNITURE_PAINT[rng.integers(len(_FURNITURE_PAINT))], rng, 0.04)
    return dict(side="paint", top="paint", tint=t, scale=(0.25, 0.25), offset=(rng.uniform(0, 5), 1.5))


def _small_items(parts, rng, x0, x1, z0, z1, h, count) -> None:
    """Books, boxes, mugs, bottles standing on a surface at height h."""
    for _ in range(count):
        kind = rng.random()
        if kind < 0.35:  # a stack of books lying flat
            w, d, t = rng.uniform(0.15, 0.3), rng.uniform(0.2, 0.3), rng.uniform(0.03, 0.15)
            st = dict(side="books", top="cardboard", tint=_tint((1, 1, 1), rng, 0.1),
                      offset=(rng.uniform(0, 2.5), 0.0), scale=(1.0, 0.5))
        elif kind < 0.6:
            w, d, t = rng.uniform(0.06, 0.1), rng.uniform(0.06, 0.1), rng.uniform(0.08, 0.3)
            st = dict(side="paint", tint=_tint(_FURNITURE_PAINT[rng.integers(6)], rng, 0.2), scale=(0.2, 0.2))
        elif kind < 0.8:
            w, d, t = rng.uniform(0.2, 0.45), rng.uniform(0.15, 0.35), rng.uniform(0.1, 0.3)
            st = dict(side="cardboard", tint=_tint((1, 1, 1), rng, 0.1))
        else:  # a framed photo / small screen standing upright
            w, d, t = rng.uniform(0.15, 0.35), 0.03, rng.uniform(0.12, 0.3)
            st = dict(side="poster", top="paint", tint=_tint((1, 1, 1), rng, 0.1),
                      offset=(rng.uniform(0, 1), rng.uniform(0, 1)))
        if x1 - x0 < w + 0.02 or z1 - z0 < d + 0.02:
            continue
        cx = rng.uniform(x0 + w / 2, x1 - w / 2)
        cz = rng.uniform(z0 + d / 2, z1 - d / 2)
        _part(parts, cx - w / 2, cx + w / 2, h, h + t, cz - d / 2, cz + d / 2, **st)


def _chair(parts, rng, cx, cz, facing, style=None) -> None:
    """A chair whose seat is centred at (cx, cz); its back is on the side of -facing (facing = +1/-1 in z)."""
    w = rng.uniform(0.42, 0.5)
    seat_h = rng.uniform(0.43, 0.48)
    st = style or (_wood(rng) if rng.random() < 0.5 else dict(side="fabric", top="fabric",
                                                             tint=_FABRIC_TINTS[rng.integers(6)]))
    leg = dict(side="metal", tint=_tint((0.5, 0.5, 0.52), rng))
    _part(parts, cx - w / 2, cx + w / 2, seat_h - 0.05, seat_h, cz - w / 2, cz + w / 2, **st)
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = cx + sx * (w / 2 - 0.03), cz + sz * (w / 2 - 0.03)
            _part(parts, lx - 0.018, lx + 0.018, 0.0, seat_h - 0.05, lz - 0.018, lz + 0.018, **leg)
    bz = cz - facing * (w / 2 - 0.02)
    _part(parts, cx - w / 2, cx + w / 2, seat_h, seat_h + rng.uniform(0.35, 0.5), bz - 0.02, bz + 0.02, **st)


def _bookshelf(rng) -> tuple[list, float, float]:
    w, d, h = rng.uniform(0.6, 1.6), rng.uniform(0.28, 0.42), rng.uniform(1.2, 2.2)
    st = _panel(rng)
    p: list = []
    th = 0.02
    _part(p, -w / 2, -w / 2 + th, 0, h, -d / 2, d / 2, **st)
    _part(p, w / 2 - th, w / 2, 0, h, -d / 2, d / 2, **st)
    _part(p, -w / 2 + th, w / 2 - th, h - th, h, -d / 2, d / 2, **st)
    _part(p, -w / 2 + th, w / 2 - th, 0, 0.07, -d / 2, d / 2 - 0.01, **st)
    _part(p, -w / 2 + th, w / 2 - th, 0.07, h - th, -d / 2, -d / 2 + 0.01, **st)
    n = max(2, int((h - 0.1) / rng.uniform(0.3, 0.4)))
    step = (h - 0.07 - th) / n
    for k in range(n):
        base = 0.07 + k * step
        if k > 0:
            _part(p, -w / 2 + th, w / 2 - th, base - th, base, -d / 2 + 0.01, d / 2 - 0.005, **st)
        x = -w / 2 + th + rng.uniform(0.0, 0.08)
        while x < w / 2 - th - 0.12:
            seg = min(rng.uniform(0.12, 0.6), w / 2 - th - x - 0.005)
            if rng.random() < 0.8:
                bh = min(step - th - 0.005, 0.32)
                bd = rng.uniform(0.6, 0.9) * (d - 0.04)
                _part(p, x, x + seg, base, base + bh, -d / 2 + 0.015, -d / 2 + 0.015 + bd, side="books",
                      top="paint", tint=_tint((1, 1, 1), rng, 0.1), offset=(rng.uniform(0, 2.56), 0.0))
            elif rng.random() < 0.5 and step > 0.2:  # a storage box
                bh = min(step - th - 0.02, rng.uniform(0.15, 0.3))
                _part(p, x, x + seg, base, base + bh, -d / 2 + 0.02, d / 2 - 0.02, side="cardboard",
                      tint=_tint(_FABRIC_TINTS[rng.integers(6)] * 1.3, rng))
            x += seg + rng.uniform(0.0, 0.12)
    return p, w / 2, d / 2


def _cabinet(rng) -> tuple[list, float, float]:
    w, d, h = rng.uniform(0.6, 2.0), rng.uniform(0.4, 0.6), rng.uniform(0.7, 1.1)
    st = _panel(rng)
    p: list = []
    _part(p, -w / 2 + 0.01, w / 2 - 0.01, 0.0, 0.08, -d / 2, d / 2 - 0.04, side="metal",
          tint=_tint((0.3, 0.3, 0.3), rng))
    _part(p, -w / 2, w / 2, 0.08, h - 0.03, -d / 2, d / 2, **st)
    top = _panel(rng) if rng.random() < 0.4 else st
    _part(p, -w / 2 - 0.01, w / 2 + 0.01, h - 0.03, h, -d / 2, d / 2 + 0.02, **top)
    # door / drawer fronts: thin panels slightly proud of the body
    n = max(1, int(round(w / rng.uniform(0.4, 0.6))))
    fronts = _panel(rng) if rng.random() < 0.5 else st
    for k in range(n):
        a = -w / 2 + k * w / n + 0.005
        _part(p, a, a + w / n - 0.01, 0.1, h - 0.05, d / 2, d / 2 + 0.015, **fronts)
    _small_items(p, rng, -w / 2 + 0.02, w / 2 - 0.02, -d / 2 + 0.02, d / 2 - 0.02, h, int(rng.integers(0, 4)))
    return p, w / 2 + 0.01, d / 2 + 0.02


def _desk(rng) -> tuple[list, float, float]:
    w, d, h = rng.uniform(1.0, 1.8), rng.uniform(0.6, 0.8), rng.uniform(0.72, 0.76)
    st = _panel(rng)
    p: list = []
    _part(p, -w / 2, w / 2, h - 0.03, h, -d / 2, d / 2, **st)
    legs = dict(side="metal", tint=_tint((0.35, 0.35, 0.37), rng))
    if rng.random() < 0.5:
        for sx in (-1, 1):
            _part(p, sx * w / 2 - (0.03 if sx > 0 else 0), sx * w / 2 + (0.03 if sx < 0 else 0) - 0.0 * sx,
                  0, h - 0.03, -d / 2 + 0.03, d / 2 - 0.03, **st)
    else:
        for sx in (-1, 1):
            for sz in (-1, 1):
                lx, lz = sx * (w / 2 - 0.05), sz * (d / 2 - 0.05)
                _part(p, lx - 0.025, lx + 0.025, 0, h - 0.03, lz - 0.025, lz + 0.025, **legs)
    n_mon = 1 if rng.random() < 0.7 else 2
    mw, mh = rng.uniform(0.5, 0.7), rng.uniform(0.3, 0.42)
    for k in range(n_mon):
        cx = 0.0 if n_mon == 1 else (k - 0.5) * (mw + 0.04)
        if abs(cx) + mw / 2 > w / 2:
            continue
        cz = -d / 2 + rng.uniform(0.12, 0.22)
        bottom = h + rng.uniform(0.08, 0.15)
        _part(p, cx - 0.12, cx + 0.12, h, h + 0.015, cz - 0.1, cz + 0.1, side="metal", tint=(0.15, 0.15, 0.16))
        _part(p, cx - 0.03, cx + 0.03, h + 0.015, bottom + 0.05, cz - 0.03, cz - 0.015, side="metal",
              tint=(0.15, 0.15, 0.16))
        _part(p, cx - mw / 2, cx + mw / 2, bottom, bottom + mh, cz - 0.015 + 0.015, cz + 0.03, side="metal",
              tint=(0.12, 0.12, 0.13))
        _part(p, cx - mw / 2 + 0.01, cx + mw / 2 - 0.01, bottom + 0.01, bottom + mh - 0.01, cz + 0.03,
              cz + 0.034, side="screen", tint=_tint((1, 1, 1), rng, 0.15),
              offset=(rng.uniform(0, 0.64), rng.uniform(0, 0.64)))
    kz = d / 2 - rng.uniform(0.12, 0.25)
    _part(p, -0.22, 0.22, h, h + 0.02, kz - 0.07, kz + 0.07, side="metal", tint=_tint((0.2, 0.2, 0.22), rng))
    _small_items(p, rng, -w / 2 + 0.02, w / 2 - 0.02, -d / 2 + 0.02, d / 2 - 0.02, h, int(rng.integers(0, 3)))
    depth = d
    if rng.random() < 0.8:  # office chair in front, pulled back a bit
        cz = d / 2 + rng.uniform(0.1, 0.35)
        _chair(p, rng, rng.uniform(-0.2, 0.2), cz, -1)
        depth = d + 2 * (cz + 0.25 - d / 2)
        shift = (depth - d) / 2  # re-centre the footprint
        p = [(x0, x1, h0, h1, z0 - shift, z1 - shift, s) for (x0, x1, h0, h1, z0, z1, s) in p]
    return p, w / 2 + 0.01, depth / 2


def _table(rng) -> tuple[list, float, float]:
    w, d, h = rng.uniform(0.8, 2.2), rng.uniform(0.7, 1.1), rng.uniform(0.72, 0.76)
    st = _panel(rng)
    p: list = []
    _part(p, -w / 2, w / 2, h - 0.035, h, -d / 2, d / 2, **st)
    leg = st if rng.random() < 0.5 else dict(side="metal", tint=_tint((0.4, 0.4, 0.42), rng))
    for sx in (-1, 1):
        for sz in (-1, 1):
            lx, lz = sx * (w / 2 - 0.06), sz * (d / 2 - 0.06)
            _part(p, lx - 0.03, lx + 0.03, 0, h - 0.035, lz - 0.03, lz + 0.03, **leg)
    _small_items(p, rng, -w / 2 + 0.03, w / 2 - 0.03, -d / 2 + 0.03, d / 2 - 0.03, h, int(rng.integers(0, 5)))
    if rng.random() < 0.4:  # a laptop: base and open screen
        lx, lz = rng.uniform(-w / 2 + 0.2, w / 2 - 0.2), rng.uniform(-d / 2 + 0.15, d / 2 - 0.15)
        _part(p, lx - 0.17, lx + 0.17, h, h + 0.02, lz - 0.12, lz + 0.12, side="metal", tint=(0.55, 0.55, 0.58))
        _part(p, lx - 0.17, lx + 0.17, h + 0.02, h + 0.24, lz - 0.13, lz - 0.12, side="screen",
              tint=_tint((1, 1, 1), rng, 0.15), offset=(rng.uniform(0, 0.64), rng.uniform(0, 0.64)))
    chair_style = _wood(rng) if rng.random() < 0.5 else dict(side="fabric", top="fabric",
                                                             tint=_FABRIC_TINTS[rng.integers(6)])
    n_side = max(1, int(w / 0.65))
    ext = d / 2
    for sz in (-1, 1):
        for k in range(n_side):
            if rng.random() < 0.3:
                continue
            cx = -w / 2 + (k + 0.5) * w / n_side + rng.uniform(-0.05, 0.05)
            cz = sz * (d / 2 + rng.uniform(-0.05, 0.25))
            _chair(p, rng, cx, cz, -sz, chair_style)
            ext = max(ext, abs(cz) + 0.26)
    return p, w / 2 + 0.01, ext


def _sofa(rng) -> tuple[list, float, float]:
    w, d = rng.uniform(1.4, 2.4), rng.uniform(0.8, 0.95)
    st = dict(side="fabric", top="fabric", tint=_tint(_FABRIC_TINTS[rng.integers(6)], rng),
              offset=(rng.uniform(0, 0.6), 0.0))
    p: list = []
    arm = rng.uniform(0.12, 0.22)
    seat = rng.uniform(0.4, 0.46)
    _part(p, -w / 2 + arm, w / 2 - arm, 0.08, seat, -d / 2 + 0.18, d / 2, **st)
    _part(p, -w / 2, w / 2, 0.08, rng.uniform(0.75, 0.9), -d / 2, -d / 2 + 0.18, **st)
    for sx in (-1, 1):
        a = sx * (w / 2 - arm / 2)
        _part(p, a - arm / 2, a + arm / 2, 0.08, rng.uniform(0.55, 0.65), -d / 2, d / 2, **st)
    _part(p, -w / 2 + 0.05, w / 2 - 0.05, 0, 0.08, -d / 2 + 0.05, d / 2 - 0.05, side="metal", tint=(0.2, 0.2, 0.2))
    return p, w / 2, d / 2


def _box_stack(rng) -> tuple[list, float, float]:
    p: list = []
    w, d = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.6)
    h = 0.0
    for _ in range(int(rng.integers(1, 4))):
        bh = rng.uniform(0.2, 0.5)
        s = rng.uniform(0.75, 1.0)
        dx = rng.uniform(-0.03, 0.03)
        _part(p, -w * s / 2 + dx, w * s / 2 + dx, h, h + bh, -d * s / 2, d * s / 2, side="cardboard",
              tint=_tint((1, 1, 1), rng, 0.12), offset=(rng.uniform(0, 0.6), rng.uniform(0, 0.6)))
        h += bh
    return p, w / 2 + 0.04, d / 2


def _plant(rng) -> tuple[list, float, float]:
    p: list = []
    s = rng.uniform(0.2, 0.35)
    ph = rng.uniform(0.25, 0.45)
    _part(p, -s / 2, s / 2, 0, ph, -s / 2, s / 2, side="paint", tint=_tint(_FURNITURE_PAINT[rng.integers(6)], rng),
          scale=(0.3, 0.3))
    c = rng.uniform(0.25, 0.45)
    fh = rng.uniform(0.4, 1.2)
    _part(p, -c, c, ph, ph + fh, -c, c, side="foliage", offset=(rng.uniform(0, 5), rng.uniform(0, 5)),
          tint=_tint((1, 1, 1), rng, 0.15))
    return p, c, c


def _floor_lamp(rng) -> tuple[list, float, float]:
    p: list = []
    h = rng.uniform(1.4, 1.8)
    _part(p, -0.14, 0.14, 0, 0.03, -0.14, 0.14, side="metal", tint=(0.25, 0.25, 0.25))
    _part(p, -0.015, 0.015, 0.03, h - 0.25, -0.015, 0.015, side="metal", tint=(0.3, 0.3, 0.3))
    r = rng.uniform(0.16, 0.24)
    _part(p, -r, r, h - 0.3, h, -r, r, side="lamp", tint=_tint((1.0, 0.92, 0.75), rng, 0.05), emissive=True)
    return p, max(r, 0.14), max(r, 0.14)


def _bin(rng) -> tuple[list, float, float]:
    p: list = []
    s = rng.uniform(0.22, 0.35)
    _part(p, -s / 2, s / 2, 0, rng.uniform(0.3, 0.5), -s / 2, s / 2, side="metal",
          tint=_tint(_FURNITURE_PAINT[rng.integers(6)], rng))
    return p, s / 2, s / 2


_WALL_PIECES = (_bookshelf, _cabinet, _desk, _sofa)
_FREE_PIECES = (_table, _box_stack, _plant, _floor_lamp, _bin)
# per style: weights of the wall pieces, of the free pieces, floor atlases (+ prob), ceiling atlas
_STYLES: dict[str, dict[str, Any]] = {
    "home": dict(wall=(0.35, 0.3, 0.15, 0.2), free=(0.35, 0.15, 0.25, 0.15, 0.1), floor=("wood", "carpet", "tiles"),
                 floor_p=(0.55, 0.3, 0.15), ceiling="paint"),
    "office": dict(wall=(0.25, 0.3, 0.45, 0.0), free=(0.45, 0.25, 0.15, 0.0, 0.15), floor=("carpet", "tiles", "wood"),
                   floor_p=(0.5, 0.35, 0.15), ceiling="ceiling_tiles"),
    "storage": dict(wall=(0.55, 0.35, 0.1, 0.0), free=(0.15, 0.7, 0.05, 0.0, 0.1), floor=("tiles", "wood", "carpet"),
                    floor_p=(0.6, 0.3, 0.1), ceiling="ceiling_tiles"),
}


# ---- the world -----------------------------------------------------------------------------------
class _Space:
    """An axis-aligned floor rectangle [x0, x1] x [z0, z1] of the room world."""

    def __init__(self, x0: float, x1: float, z0: float, z1: float) -> None:
        self.x0, self.x1, self.z0, self.z1 = float(x0), float(x1), float(z0), float(z1)


class RoomWorld(TabulatedCamera):
    """Deterministic indoor layout (see the module docstring) and handheld camera trajectory for one seed.

    Same interface as :class:`~depth_pose_ros.data.synthetic_scene.SyntheticWorld` as far as the
    renderer and the flow code use it (``boxes``, ``box_poses``, ``camera_pose``, ``moving`` (empty:
    the room is static), ``sun``, ``length``, ``fps``), plus ``ground_plane = False`` (no road plane),
    ``emissive`` (per box), ``lights`` ((k, 3) positions), ``light_power`` ((k,)), ``ambient``,
    ``hfov_deg`` (the per-seed field of view), ``ceiling``, ``spaces``, ``floor_box`` / ``ceiling_box``
    (indices of the two slabs) and ``clearance`` (metres to the
    nearest wall or furniture footprint on the ``GRID`` floor grid at ``grid_origin``).
    """

    ground_plane = False
    _pieces: int  # walkable floor pieces after the last placement (furnishing state)

    def __init__(self, seed: int = 0, length: int = 100, fps: float = 10.0,
                 speed_range: tuple[float, float] = (0.3, 1.2), camera_height: Optional[float] = None,
                 second_space: Optional[bool] = None) -> None:
        if int(length) < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        v_lo, v_hi = (float(x) for x in speed_range)
        if not 0.0 < v_lo <= v_hi <= 3.0:
            raise ValueError(f"room speed_range must satisfy 0 < min <= max <= 3 m/s (walking), got {speed_range}")
        if camera_height is not None and not 0.3 <= camera_height <= 2.1:
            raise ValueError(f"room camera_height must be in [0.3, 2.1] metres (ceilings are >= 2.4 m), "
                             f"got {camera_height}")
        self.seed = int(seed)
        self.length = int(length)
        self.fps = float(fps)
        self.moving: list = []
        rng = np.random.default_rng([self.seed, 0x4007])
        self.hfov_deg = float(rng.uniform(*ROOM_HFOV_RANGE))
        self.style = str(rng.choice(list(_STYLES)))
        style = _STYLES[self.style]
        W, D = rng.uniform(3.0, 9.0), rng.uniform(3.0, 12.0)
        self.ceiling = float(rng.uniform(2.4, 3.2))
        self.spaces = [_Space(0.0, W, 0.0, D)]
        boxes = _Boxes()
        # openings per wall: key (space index, side) -> list of (a, b, bottom height, top height, kind)
        openings: dict[tuple[int, str], list] = {}
        passages: list[tuple[float, float, float, float]] = []  # floor rectangles through walls
        reserved: list[tuple[float, float, float, float]] = []  # no furniture (door approaches)
        if second_space if second_space is not None else rng.random() < 0.6:
            corridor = rng.random() < 0.5
            if corridor:
                bw = min(rng.uniform(1.3, 2.2), W)
                bl = rng.uniform(3.0, 10.0)
            else:
                bw = min(rng.uniform(2.5, 7.0), W)
                bl = rng.uniform(2.5, 6.0)
            bx0 = rng.uniform(0.0, W - bw)
            self.spaces.append(_Space(bx0, bx0 + bw, D + WALL_T, D + WALL_T + bl))
            wide = corridor and rng.random() < 0.5
            dw = min(bw - 0.1, rng.uniform(1.1, 2.0)) if wide else rng.uniform(0.9, 1.0)
            dw = min(dw, bw - 0.2)
            da = bx0 + 0.1 + rng.uniform(0.0, max(0.0, bw - 0.2 - dw))
            dh = min(self.ceiling - 0.2, rng.uniform(2.0, 2.2))
            openings.setdefault((0, "N"), []).append((da, da + dw, 0.0, dh, "passage"))
            passages.append((da + 0.01, da + dw - 0.01, D, D + WALL_T))  # inside the door casing
            reserved.append((da - 0.3, da + dw + 0.3, D - 1.0, D + WALL_T + 1.0))
        # closed doors and windows on the other walls of every space
        for si, sp in enumerate(self.spaces):
            for side in ("S", "E", "W", "N"):
                if (si, "N") in openings and side == "N" and si == 0:
                    continue
                if si == 1 and side == "S":
                    continue  # B's south wall is A's north wall
                length_w = (sp.x1 - sp.x0) if side in "NS" else (sp.z1 - sp.z0)
                lo = sp.x0 if side in "NS" else sp.z0
                for _ in range(int(rng.integers(0, 3))):
                    window = rng.random() < 0.55
                    w = rng.uniform(0.8, 2.0) if window else rng.uniform(0.8, 1.0)
                    if length_w < w + 0.6:
                        continue
                    a = rng.uniform(lo + 0.3, lo + length_w - 0.3 - w)
                    mine = openings.setdefault((si, side), [])
                    if any(a < b1 + 0.3 and a + w > a1 - 0.3 for a1, b1, *_ in mine):
                        continue
                    if window:
                        mine.append((a, a + w, rng.uniform(0.8, 1.0), min(self.ceiling - 0.25, rng.uniform(2.0, 2.3)),
                                     "window"))
                    else:
                        mine.append((a, a + w, 0.0, min(self.ceiling - 0.2, rng.uniform(2.0, 2.15)), "door"))
                        reserved.append(self._approach(sp, side, a, a + w))
        wall_tint = _tint(_WALL_TINTS[rng.integers(len(_WALL_TINTS))], rng, 0.03)
        accent = int(rng.integers(0, 5))  # index of an accent wall of room A (4 = none)
        accent_tint = _tint(_WALL_TINTS[rng.integers(len(_WALL_TINTS))] * rng.uniform(0.7, 1.0), rng, 0.05)
        door_style = _wood(rng)
        casing = dict(side="paint", tint=_tint((0.97, 0.97, 0.95), rng, 0.03), scale=(0.2, 0.2))
        for si, sp in enumerate(self.spaces):
            for k, side in enumerate(("S", "E", "W", "N")):
                if si == 1 and side == "S":
                    continue
                tint = accent_tint if (si == 0 and k == accent) else wall_tint
                self._wall(boxes, sp, side, sorted(openings.get((si, side), [])), tint, door_style, casing, rng)
        # floor and ceiling slabs over the bounding box of all spaces
        bx0 = min(s.x0 for s in self.spaces) - WALL_T - 0.3
        bx1 = max(s.x1 for s in self.spaces) + WALL_T + 0.3
        bz0 = min(s.z0 for s in self.spaces) - WALL_T - 0.3
        bz1 = max(s.z1 for s in self.spaces) + WALL_T + 0.3
        floor = str(rng.choice(style["floor"], p=style["floor_p"]))
        floor_tint = _tint(_WOOD_TINTS[rng.integers(len(_WOOD_TINTS))] if floor == "wood" else
                           _WALL_TINTS[rng.integers(len(_WALL_TINTS))] * rng.uniform(0.5, 1.0), rng, 0.05)
        fs = rng.uniform(0.8, 1.3)
        boxes.extent(bx0, bx1, 0.0, 0.1, bz0, bz1, side="paint", top=floor, tint=floor_tint, scale=(fs, fs),
                     offset=(rng.uniform(0, 5), rng.uniform(0, 5)))
        self.floor_box = len(boxes.rows) - 1
        ceil_tint = _tint((1.0, 1.0, 0.98), rng, 0.04)
        boxes.extent(bx0, bx1, -self.ceiling - 0.1, -self.ceiling, bz0, bz1, side="paint", top=style["ceiling"],
                     tint=ceil_tint, offset=(rng.uniform(0, 5), rng.uniform(0, 5)))
        self.ceiling_box = len(boxes.rows) - 1

        # occupancy grid of the floor (True = free floor)
        self.grid_origin = np.array([bx0, bz0])
        nx, nz = int(np.ceil((bx1 - bx0) / GRID)), int(np.ceil((bz1 - bz0) / GRID))
        free = np.zeros((nz, nx), np.uint8)
        for sp in self.spaces:  # free cells lie wholly inside the floor: clearances err on the safe side
            self._fill(free, (sp.x0, sp.x1, sp.z0, sp.z1), 1, inner=True)
        for rect in passages:
            self._fill(free, rect, 1, inner=True)
        keep_out = np.zeros_like(free)
        for rect in reserved:
            self._fill(keep_out, rect, 1)
        self._furnish(boxes, free, keep_out, openings, rng, style)
        self._lights(boxes, rng)
        self.boxes: BoxArrays = boxes.arrays()
        self.emissive = np.array(boxes.emissive, bool)
        self.clearance = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * GRID
        self._box_R = yaw_matrix(self.boxes.yaw)
        # directional light: from the windows' side, from above
        elev = np.deg2rad(rng.uniform(35.0, 70.0))
        az = rng.uniform(0, 2 * np.pi)
        self.sun = np.array([np.cos(elev) * np.sin(az), -np.sin(elev), np.cos(elev) * np.cos(az)])
        self._trajectory(rng, (v_lo, v_hi), camera_height)

    # ---- layout helpers ------------------------------------------------------------------------------
    @staticmethod
    def _approach(sp: _Space, side: str, a: float, b: float) -> tuple[float, float, float, float]:
        """Floor rectangle in front of a door on wall ``side`` of ``sp`` (kept free of furniture)."""
        if side == "N":
            return (a - 0.3, b + 0.3, sp.z1 - 1.0, sp.z1)
        if side == "S":
            return (a - 0.3, b + 0.3, sp.z0, sp.z0 + 1.0)
        if side == "E":
            return (sp.x1 - 1.0, sp.x1, a - 0.3, b + 0.3)
        return (sp.x0, sp.x0 + 1.0, a - 0.3, b + 0.3)

    def _cells(self, rect: tuple[float, float, float, float], inner: bool) -> tuple[int, int, int, int]:
        """Grid cell range [i0, i1) x [j0, j1) of a floor rectangle: cells inside it (``inner``) or
        touching it."""
        x0, x1, z0, z1 = rect
        o = self.grid_origin
        lo, hi = (np.ceil, np.floor) if inner else (np.floor, np.ceil)
        return (int(lo((x0 - o[0]) / GRID)), int(hi((x1 - o[0]) / GRID)),
                int(lo((z0 - o[1]) / GRID)), int(hi((z1 - o[1]) / GRID)))

    def _fill(self, grid: np.ndarray, rect: tuple[float, float, float, float], value: int,
              inner: bool = False) -> None:
        i0, i1, j0, j1 = self._cells(rect, inner)
        grid[max(j0, 0):max(j1, 0), max(i0, 0):max(i1, 0)] = value

    def _wall(self, boxes: _Boxes, sp: _Space, side: str, openings: list, tint, door_style, casing,
              rng: np.random.Generator) -> None:
        """One wall of ``sp`` (outside it, WALL_T thick, overlapping its neighbours at the corners and
        the floor / ceiling slabs), split around its openings; doors / windows get panels and casings."""
        top, bottom = -self.ceiling - 0.05, 0.05
        if side in "NS":
            lo, hi = sp.x0 - WALL_T, sp.x1 + WALL_T
            c0, c1 = (sp.z1, sp.z1 + WALL_T) if side == "N" else (sp.z0 - WALL_T, sp.z0)
            inner = c0 if side == "N" else c1
        else:
            lo, hi = sp.z0 - WALL_T, sp.z1 + WALL_T
            c0, c1 = (sp.x1, sp.x1 + WALL_T) if side == "E" else (sp.x0 - WALL_T, sp.x0)
            inner = c0 if side == "E" else c1
        out_dir = 1.0 if side in "NE" else -1.0  # from the room into the wall
        u_off = rng.uniform(0, 5)

        def piece(a, b, y0, y1, c_lo=c0, c_hi=c1, **style) -> None:
            if side in "NS":
                boxes.extent(a, b, y0, y1, c_lo, c_hi, **style)
            else:
                boxes.extent(c_lo, c_hi, y0, y1, a, b, **style)

        def wall_piece(a, b, y0, y1) -> None:
            piece(a, b, y0, y1, side="paint", top="paint", tint=tint, offset=(u_off + (a - lo), bottom - y1))

        pos = lo
        for a, b, h0, h1, kind in openings:
            wall_piece(pos, a, top, bottom)
            wall_piece(a, b, top, -h1)
            if h0 > 0:
                wall_piece(a, b, -h0, bottom)
            pos = b
            # casing on the room side (and on both sides of a passage), reaching 1 cm into the opening
            sides = (inner, inner + out_dir * WALL_T) if kind == "passage" else (inner,)
            jamb_low = bottom - 0.05 if h0 <= 0 else -h0 + 0.03
            for face in sides:
                cl, ch = sorted((face - 0.02, face + 0.02))
                piece(a - 0.07, a + 0.01, -h1 - 0.07, jamb_low, cl, ch, **casing)
                piece(b - 0.01, b + 0.07, -h1 - 0.07, jamb_low, cl, ch, **casing)
                piece(a - 0.07, b + 0.07, -h1 - 0.07, -h1 + 0.01, cl, ch, **casing)
                if h0 > 0:  # window sill
                    piece(a - 0.1, b + 0.1, -h0 - 0.01, -h0 + 0.03, cl, ch, **casing)
            if kind == "door":  # panel recessed 4 cm, sealing the opening
                pl, ph = sorted((inner + out_dir * 0.04, inner + out_dir * 0.08))
                piece(a - 0.01, b + 0.01, -h1 - 0.01, bottom, pl, ph, **door_style)
                kx = b - 0.09 if rng.random() < 0.5 else a + 0.06
                kl, kh = sorted((inner + out_dir * 0.04, inner - out_dir * 0.02))
                piece(kx, kx + 0.03, -1.07, -1.02, kl, kh, side="metal", tint=(0.75, 0.72, 0.6))
            elif kind == "window":  # bright frosted glass recessed 6 cm
                pl, ph = sorted((inner + out_dir * 0.06, inner + out_dir * 0.09))
                piece(a - 0.01, b + 0.01, -h1 - 0.01, -h0 + 0.01, pl, ph, side="window",
                      tint=_tint((1.0, 1.0, 1.0), rng, 0.03), emissive=True, offset=(rng.uniform(0, 1.28), 0.0))
        wall_piece(pos, hi, top, bottom)

    def _place(self, boxes: _Boxes, parts: list, cx: float, cz: float, yaw: float) -> None:
        R = yaw_matrix(yaw)
        for x0, x1, h0, h1, z0, z1, style in parts:
            style = dict(style)
            em = style.pop("emissive", False)
            c = R @ np.array([(x0 + x1) / 2, -(h0 + h1) / 2, (z0 + z1) / 2]) + np.array([cx, 0.0, cz])
            boxes.add(c, yaw, ((x1 - x0) / 2, (h1 - h0) / 2, (z1 - z0) / 2), emissive=em, **style)

    def _footprint(self, cx: float, cz: float, yaw: float, hx: float, hz: float) -> np.ndarray:
        R = yaw_matrix(yaw)
        corners = np.array([[sx * hx, 0.0, sz * hz] for sx, sz in ((-1, -1), (1, -1), (1, 1), (-1, 1))])
        pts = corners @ R.T
        xz = np.stack([pts[:, 0] + cx, pts[:, 2] + cz], axis=1)
        return np.round((xz - self.grid_origin) / GRID - 0.5).astype(np.int32)

    def _walkable(self, free: np.ndarray) -> tuple[int, float]:
        """(number of pieces, area in m^2 of the largest) of the floor where the camera may stand."""
        ok = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE) * GRID >= SEGMENT_CLEARANCE
        n, labels = cv2.connectedComponents(ok.astype(np.uint8), connectivity=8)
        if n <= 1:
            return 0, 0.0
        return n - 1, float(np.bincount(labels.reshape(-1))[1:].max() * GRID * GRID)

    def _try_place(self, free: np.ndarray, keep_out: np.ndarray, poly: np.ndarray, against_wall: bool,
                   core: Optional[np.ndarray]) -> bool:
        """Occupy the footprint ``poly`` (grid cells) unless it hits something, a door approach, cuts the
        walkable floor into more pieces or leaves too little of it. A piece against a wall only tests its
        ``core`` (the footprint 6 cm smaller all round: its back touches the wall cells); a free-standing
        one tests its footprint grown by a cell (5 cm gap to anything else)."""
        mask = np.zeros_like(free)
        cv2.fillConvexPoly(mask, poly, 1)
        grown = cv2.dilate(mask, np.ones((3, 3), np.uint8))  # covers the cells the footprint touches
        if against_wall:
            assert core is not None  # given with against_wall
            test = np.zeros_like(free)
            cv2.fillConvexPoly(test, core, 1)
        else:
            test = grown
        if np.any(test & (1 - free)) or np.any(mask & keep_out):
            return False
        trial = free & (1 - grown)
        pieces, area = self._walkable(trial)
        total = sum((s.x1 - s.x0) * (s.z1 - s.z0) for s in self.spaces)
        if pieces == 0 or pieces > self._pieces or area < max(1.2, 0.3 * total):
            return False
        self._pieces = pieces
        free[:] = trial
        return True

    def _furnish(self, boxes: _Boxes, free: np.ndarray, keep_out: np.ndarray, openings: dict,
                 rng: np.random.Generator, style: dict) -> None:
        """Wall pieces, free-standing pieces, wall-mounted things and rugs."""
        self._pieces = max(1, self._walkable(free)[0])
        w_wall = np.array(style["wall"]) / np.sum(style["wall"])
        w_free = np.array(style["free"]) / np.sum(style["free"])
        for si, sp in enumerate(self.spaces):
            area = (sp.x1 - sp.x0) * (sp.z1 - sp.z0)
            n_wall = int(rng.integers(2, 4 + int(area / 5)))
            n_free = int(rng.integers(1, 3 + int(area / 8)))
            for _ in range(n_wall):
                make = _WALL_PIECES[rng.choice(len(_WALL_PIECES), p=w_wall)]
                parts, hx, hz = make(rng)
                for _try in range(12):
                    side = str(rng.choice(["S", "E", "W", "N"]))
                    if side in "NS":
                        span = (sp.x0 + hx + 0.02, sp.x1 - hx - 0.02)
                    else:
                        span = (sp.z0 + hx + 0.02, sp.z1 - hx - 0.02)
                    if span[1] <= span[0]:
                        continue
                    a = rng.uniform(*span)
                    if any(a + hx > o[0] - 0.05 and a - hx < o[1] + 0.05 for o in openings.get((si, side), [])
                           if o[4] != "window" or o[2] < 0.02 + max(p[3] for p in parts)):
                        continue
                    gap = 0.015
                    if side == "N":
                        cx, cz, yaw = a, sp.z1 - gap - hz, np.pi
                    elif side == "S":
                        cx, cz, yaw = a, sp.z0 + gap + hz, 0.0
                    elif side == "E":
                        cx, cz, yaw = sp.x1 - gap - hz, a, -np.pi / 2
                    else:
                        cx, cz, yaw = sp.x0 + gap + hz, a, np.pi / 2
                    if self._try_place(free, keep_out, self._footprint(cx, cz, yaw, hx, hz), True,
                                       self._footprint(cx, cz, yaw, hx - 0.06, hz - 0.06)):
                        self._place(boxes, parts, cx, cz, yaw)
                        break
            for _ in range(n_free):
                make = _FREE_PIECES[rng.choice(len(_FREE_PIECES), p=w_free)]
                parts, hx, hz = make(rng)
                for _try in range(12):
                    px = rng.uniform(sp.x0 + hx, sp.x1 - hx) if sp.x1 - sp.x0 > 2 * hx else None
                    pz = rng.uniform(sp.z0 + hz, sp.z1 - hz) if sp.z1 - sp.z0 > 2 * hz else None
                    if px is None or pz is None:
                        break
                    yaw = rng.uniform(-np.pi, np.pi) if rng.random() < 0.4 else rng.integers(4) * np.pi / 2
                    r = max(hx, hz)  # rotated pieces: keep the whole footprint inside
                    if yaw % (np.pi / 2) and not (sp.x0 + r < px < sp.x1 - r and sp.z0 + r < pz < sp.z1 - r):
                        continue
                    if self._try_place(free, keep_out, self._footprint(px, pz, yaw, hx, hz), False, None):
                        self._place(boxes, parts, px, pz, yaw)
                        break
            # rugs (flat, walkable)
            if rng.random() < 0.4:
                rw, rd = rng.uniform(1.0, 2.5), rng.uniform(0.8, 2.0)
                if sp.x1 - sp.x0 > rw + 0.4 and sp.z1 - sp.z0 > rd + 0.4:
                    cx, cz = rng.uniform(sp.x0 + rw / 2 + 0.2, sp.x1 - rw / 2 - 0.2), rng.uniform(
                        sp.z0 + rd / 2 + 0.2, sp.z1 - rd / 2 - 0.2)
                    boxes.extent(cx - rw / 2, cx + rw / 2, -0.012, 0.0, cz - rd / 2, cz + rd / 2, side="fabric",
                                 top=str(rng.choice(["carpet", "fabric"])),
                                 tint=_tint(_FABRIC_TINTS[rng.integers(6)] * 1.2, rng), scale=(0.5, 0.5))
            self._wall_mounted(boxes, sp, si, openings, rng, free)

    def _wall_mounted(self, boxes: _Boxes, sp: _Space, si: int, openings: dict, rng: np.random.Generator,
                      free: np.ndarray) -> None:
        """Posters / pictures, a TV or whiteboard, radiators: thin boxes on the walls (< 0.3 m deep)."""
        for _ in range(int(rng.integers(1, 5))):
            side = str(rng.choice(["S", "E", "W", "N"]))
            kind = rng.random()
            if kind < 0.6:
                w, h, d = rng.uniform(0.3, 1.2), rng.uniform(0.3, 0.9), 0.025
                c_h = rng.uniform(1.3, 1.8)
                style = dict(side="poster", top="paint", tint=_tint((1, 1, 1), rng, 0.1),
                             offset=(rng.uniform(0, 1.0), rng.uniform(0, 1.0)), scale=(rng.uniform(0.7, 1.4),) * 2)
            elif kind < 0.8:
                w, h, d = rng.uniform(0.9, 1.5), rng.uniform(0.55, 0.85), 0.06
                c_h = rng.uniform(1.2, 1.6)
                style = dict(side="screen", top="metal", tint=_tint((0.7, 0.7, 0.75), rng, 0.1),
                             offset=(rng.uniform(0, 0.64), rng.uniform(0, 0.64)), scale=(0.5, 0.5))
            else:
                w, h, d = rng.uniform(0.6, 1.6), rng.uniform(0.45, 0.65), rng.uniform(0.06, 0.1)
                c_h = 0.12 + h / 2
                style = dict(side="metal", tint=_tint((0.92, 0.92, 0.9), rng, 0.03))
            length_w = (sp.x1 - sp.x0) if side in "NS" else (sp.z1 - sp.z0)
            lo = sp.x0 if side in "NS" else sp.z0
            if length_w < w + 0.3:
                continue
            a = rng.uniform(lo + 0.15, lo + length_w - 0.15 - w)
            if any(a < o[1] + 0.1 and a + w > o[0] - 0.1 for o in openings.get((si, side), [])):
                continue
            y0, y1 = -(c_h + h / 2), -(c_h - h / 2)
            if side == "N":
                rect = (a, a + w, sp.z1 - d, sp.z1)
            elif side == "S":
                rect = (a, a + w, sp.z0, sp.z0 + d)
            elif side == "E":
                rect = (sp.x1 - d, sp.x1, a, a + w)
            else:
                rect = (sp.x0, sp.x0 + d, a, a + w)
            boxes.extent(rect[0], rect[1], y0, y1, rect[2], rect[3], **style)
            self._fill(free, rect, 0)  # the camera keeps its distance to these too

    def _lights(self, boxes: _Boxes, rng: np.random.Generator) -> None:
        """Ceiling lamps (emissive boxes) and the point lights just below them."""
        lights, power = [], []
        for sp in self.spaces:
            area = (sp.x1 - sp.x0) * (sp.z1 - sp.z0)
            n = int(np.clip(round(area / rng.uniform(8.0, 16.0)), 1, 4))
            for _ in range(n):
                cx, cz = rng.uniform(sp.x0 + 0.6, sp.x1 - 0.6), rng.uniform(sp.z0 + 0.6, sp.z1 - 0.6)
                lw, ld = (rng.uniform(0.2, 1.2), rng.uniform(0.2, 0.6))
                drop = 0.04 if rng.random() < 0.7 else rng.uniform(0.2, 0.5)  # flush or pendant
                if drop > 0.1:
                    boxes.extent(cx - 0.006, cx + 0.006, -self.ceiling, -self.ceiling + drop - 0.1, cz - 0.006,
                                 cz + 0.006, side="metal", tint=(0.2, 0.2, 0.2))
                boxes.extent(cx - lw / 2, cx + lw / 2, -self.ceiling + drop - (0.1 if drop > 0.1 else 0.04),
                             -self.ceiling + drop, cz - ld / 2, cz + ld / 2, side="lamp", top="lamp",
                             tint=_tint((1.0, 0.95, 0.85), rng, 0.05), emissive=True)
                lights.append((cx, -self.ceiling + drop + 0.05, cz))
                power.append(rng.uniform(0.6, 1.1))
        self.lights = np.array(lights, np.float64).reshape(-1, 3)
        self.light_power = np.array(power, np.float64)
        self.ambient = float(rng.uniform(0.35, 0.55))

    # ---- camera --------------------------------------------------------------------------------------
    def clearance_at(self, xz: np.ndarray) -> np.ndarray:
        """Clearance (m) to the nearest wall / furniture footprint at world (x, z) points (bilinear)."""
        q = (np.asarray(xz, np.float64) - self.grid_origin) / GRID - 0.5
        return cv2.remap(self.clearance.astype(np.float32), q[:, 0].astype(np.float32).reshape(1, -1),
                         q[:, 1].astype(np.float32).reshape(1, -1), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0.0).reshape(-1)

    def _path(self, rng: np.random.Generator, need: float) -> np.ndarray:
        """Polyline of waypoints (k, 2) through the free floor, ``need`` metres long at least."""
        ok = (self.clearance >= SEGMENT_CLEARANCE).astype(np.uint8)
        n, labels = cv2.connectedComponents(ok, connectivity=8)
        if n <= 1:
            raise RuntimeError(f"room world seed {self.seed}: no walkable floor (a layout bug)")
        big = 1 + int(np.argmax(np.bincount(labels.reshape(-1))[1:]))
        cand = np.argwhere((labels == big) & (self.clearance >= WAYPOINT_CLEARANCE))
        if len(cand) == 0:
            cand = np.argwhere(labels == big)
        cells = (cand[:, ::-1] + 0.5) * GRID + self.grid_origin  # (x, z)
        near = self.clearance[cand[:, 0], cand[:, 1]] < 0.9
        wp = [cells[rng.integers(len(cells))]]
        total = 0.0
        restarts = 0
        while total < need:
            cur = wp[-1]
            pick = None
            for tries in range(3):
                k = rng.integers(len(cells), size=48)
                if rng.random() < 0.15 and near.any():  # approach furniture / walls sometimes
                    k = np.flatnonzero(near)[rng.integers(near.sum(), size=48)]
                c = cells[k]
                dist = np.linalg.norm(c - cur, axis=1)
                good = (dist > (1.0 if tries < 2 else 0.3)) & (dist < 7.0)
                if len(wp) > 1:
                    prev = cur - wp[-2]
                    cosang = ((c - cur) @ prev) / np.maximum(dist * np.linalg.norm(prev), 1e-9)
                    good &= cosang > (-0.3 if tries < 2 else -1.1)
                for j in np.flatnonzero(good):
                    m = max(2, int(dist[j] / (GRID / 2)))
                    seg = cur + np.linspace(0, 1, m)[:, None] * (c[j] - cur)
                    if self.clearance_at(seg).min() >= SEGMENT_CLEARANCE:
                        pick = c[j]
                        break
                if pick is not None:
                    break
            if pick is None and len(wp) == 1:  # a start in a pocket: start somewhere else
                restarts += 1
                if restarts > 50:
                    raise RuntimeError(f"room world seed {self.seed}: no free path from any start point")
                wp = [cells[rng.integers(len(cells))]]
                continue
            if pick is None:  # cornered: go back where we came from
                pick = wp[-2]
            total += float(np.linalg.norm(pick - cur))
            wp.append(pick)
        return np.array(wp)

    def _trajectory(self, rng: np.random.Generator, speed: tuple[float, float],
                    camera_height: Optional[float]) -> None:
        v_lo, v_hi = speed
        t = np.arange(-1, self.length + 1) / self.fps
        duration = t[-1] - t[0]
        need = v_hi * duration * 1.3 + 2.0
        ds = 0.02
        for _attempt in range(12):
            wp = self._path(rng, need)
            seg = np.linalg.norm(np.diff(wp, axis=0), axis=1)
            s_wp = np.concatenate([[0.0], np.cumsum(seg)])
            s = np.arange(0.0, s_wp[-1], ds)
            poly = np.stack([np.interp(s, s_wp, wp[:, 0]), np.interp(s, s_wp, wp[:, 1])], axis=1)
            path = None
            for sigma in (0.35, 0.25, 0.15, 0.08):
                smooth = gaussian_filter1d(poly, sigma / ds, axis=0, mode="nearest")
                if self.clearance_at(smooth).min() >= PATH_CLEARANCE:
                    path = smooth
                    break
            if path is not None:
                break
        else:
            raise RuntimeError(f"room world seed {self.seed}: could not plan a camera path")
        # re-parametrise by arc length
        step = np.linalg.norm(np.diff(path, axis=0), axis=1)
        s = np.concatenate([[0.0], np.cumsum(step)])
        keep = np.concatenate([[True], step > 1e-6])
        path, s = path[keep], s[keep]
        d = np.gradient(path, s, axis=0)
        heading = np.unwrap(np.arctan2(d[:, 0], d[:, 1]))
        kappa = np.abs(np.gradient(heading, s))
        v_base = v_lo + (v_hi - v_lo) * (0.5 + 0.5 * _smooth_signal(rng, s, (4.0, 15.0)))
        v = np.minimum(v_base, np.deg2rad(30.0) / np.maximum(kappa, 1e-6))
        v = np.clip(gaussian_filter1d(v, 0.3 / ds, mode="nearest"), v_lo, v_hi)
        t_s = np.concatenate([[0.0], np.cumsum(np.diff(s) * 2.0 / (v[1:] + v[:-1]))])
        start = rng.uniform(0.0, max(0.0, t_s[-1] - duration - 0.1))
        # everything below on a fine time grid (independent of fps), then sampled at the frame times
        dt = 0.01
        tf = np.arange(0.0, duration + 3 * dt, dt)
        s_t = np.interp(tf + start, t_s, s)
        xz_t = np.stack([np.interp(s_t, s, path[:, 0]), np.interp(s_t, s, path[:, 1])], axis=1)
        speed_t = np.interp(s_t, s, v)
        # gaze: towards the path point 1.5 m ahead (the camera turns before it reaches a wall), plus a slow
        # look-around
        ahead = path[np.minimum(np.searchsorted(s, s + 1.5), len(s) - 1)] - path
        gaze = heading.copy()
        far = np.linalg.norm(ahead, axis=1) > 0.3
        gaze[far] = np.arctan2(ahead[far, 0], ahead[far, 1])
        gaze = heading + np.angle(np.exp(1j * (gaze - heading)))  # same branch as the unwrapped heading
        target = np.interp(s_t, s, gaze) + np.deg2rad(rng.uniform(0.0, 20.0)) * _smooth_signal(rng, tf, (5.0, 12.0))
        target = gaussian_filter1d(target, 0.4 / dt, mode="nearest")
        yaw_t = np.empty_like(target)  # rate limiter, then a light smoothing of its kinks
        yaw_t[0] = target[0]
        max_step = 0.92 * MAX_YAW_RATE * dt
        for i in range(1, len(tf)):
            yaw_t[i] = yaw_t[i - 1] + np.clip(target[i] - yaw_t[i - 1], -max_step, max_step)
        yaw_t = gaussian_filter1d(yaw_t, 0.1 / dt, mode="nearest")
        h0 = float(rng.uniform(0.9, 1.7)) if camera_height is None else float(camera_height)
        phase = 2 * np.pi * np.cumsum((1.5 + 0.5 * speed_t) * dt)  # steps: about 1.6-2.1 Hz
        height_t = (h0 + 0.03 * _smooth_signal(rng, tf, (4.0, 10.0))
                    + 0.01 * (speed_t / max(v_hi, 1e-6)) * np.sin(phase + rng.uniform(0, 2 * np.pi)))
        pitch_t = (np.deg2rad(rng.uniform(-18.0, 3.0)) + np.deg2rad(6.0) * _smooth_signal(rng, tf, (3.0, 8.0))
                   + np.deg2rad(0.4) * np.sin(0.5 * phase + rng.uniform(0, 2 * np.pi)))
        roll_t = np.deg2rad(2.0) * _smooth_signal(rng, tf, (2.0, 7.0)) + np.deg2rad(0.3) * np.sin(phase)
        tq = t - t[0]

        def at(x: np.ndarray) -> np.ndarray:
            return np.interp(tq, tf, x)

        xz = np.stack([at(xz_t[:, 0]), at(xz_t[:, 1])], axis=1)
        yaw, pitch, roll, height = at(yaw_t), at(pitch_t), at(roll_t), at(height_t)
        self.camera_speed = at(speed_t)
        self.camera_heights = height
        self._cam = np.empty((len(t), 4, 4))
        for i in range(len(t)):
            R = yaw_matrix(yaw[i]) @ rotation_xyz_small(pitch[i], roll[i])
            self._cam[i] = se3(R, (xz[i, 0], -height[i], xz[i, 1]))

    # ---- poses -----------------------------------------------------------------------------------------
    def object_pose(self, k: int, frame: int) -> np.ndarray:
        raise IndexError(f"the room world has no moving objects (asked for object {k})")

    def box_poses(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """World rotation (N, 3, 3) and centre (N, 3) of every box (all static)."""
        self._row(frame)
        return self._box_R, self.boxes.center


class RoomRenderer(Renderer):
    """:class:`Renderer` with indoor lighting: box shading times ambient + point lights; emissive boxes."""

    room_atlases = True
    world: RoomWorld  # type: ignore[assignment]  # duck-types the base class's SyntheticWorld

    def _shade(self, R_wc: np.ndarray, C: np.ndarray, zbuf: np.ndarray, surface: np.ndarray,
               R_bc: np.ndarray, o_b: np.ndarray, R_wb: np.ndarray) -> np.ndarray:
        sf = surface.reshape(-1)
        zf = zbuf.reshape(-1)
        out = np.zeros((sf.size, 3), np.float32)  # a pixel that hit nothing (never, in a closed room) is black
        idx = np.nonzero(sf >= 0)[0]
        if idx.size == 0:
            return out.reshape(self.height, self.width, 3)
        box = sf[idx]
        t = zf[idx]
        col, face = self._shade_boxes(idx, box, t, R_bc, o_b, R_wb, return_face=True)
        w = self.world
        n = len(w.boxes)
        normals = np.concatenate([-R_wb, R_wb], axis=2).transpose(0, 2, 1).reshape(n * 6, 3).astype(np.float32)
        nrm = np.take(normals, box * 6 + face, axis=0)  # (M, 3) world normal of the face hit
        d = (R_wc.astype(np.float32) @ self.rays[:, idx])  # (3, M) world ray, z-depth parametrised
        p = [np.float32(C[k]) + t * d[k] for k in range(3)]
        light = np.full(idx.size, np.float32(w.ambient))
        for L, power in zip(w.lights, w.light_power):
            lx, ly, lz = (np.float32(L[k]) - p[k] for k in range(3))
            dist2 = lx * lx + ly * ly + lz * lz + np.float32(1e-4)
            inv = 1.0 / np.sqrt(dist2)
            lam = np.maximum((nrm[:, 0] * lx + nrm[:, 1] * ly + nrm[:, 2] * lz) * inv, 0.0)
            light += np.float32(power) * (0.15 + 0.85 * lam) / (1.0 + dist2 / np.float32(6.0))
        light = np.where(w.emissive[box], np.float32(1.15), light)
        out[idx] = col * light[:, None]
        return out.reshape(self.height, self.width, 3)
