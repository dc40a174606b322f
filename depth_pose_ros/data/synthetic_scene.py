"""Layout of the synthetic driving world: road, static boxes, moving cars and the camera trajectory.

World frame: x right, y *down*, z forward at heading 0 -- the camera optical frame of a level camera
looking along the road at its start, so a level camera has ``R_world_cam = R_y(heading)``. The road
is the plane y = 0; the camera rides at y = -camera_height.

Road: a centreline with heading ``theta(s)`` (s = arc length) built from turns whose curvature is a
raised cosine (so heading, curvature and yaw rate are all continuous); positions are integrated from
the heading. Points near the road have road coordinates (s, d) -- d is the signed lateral offset,
positive to the right -- which texture the markings, kerb and sidewalk. The heading is kept within
+-75 deg of the start so that the road never runs back towards itself (buildings of two stretches
cannot collide).

Everything else is boxes: building blocks (with gaps) behind the sidewalks, parked cars in the
parking strips, poles and trees on the sidewalks, and ``num_moving`` cars driving along the lanes
(one leading car in the ego lane, the others oncoming). Each box is axis-aligned in its own frame,
which is yawed with the road; a box belongs either to the static world (frame = world) or to one
moving object (frame = that object, whose pose is known at every frame).

All randomness comes from one ``numpy.random.Generator`` seeded with ``seed``; trajectories are
tabulated once per frame index (-1 .. length, the two extra frames exist so that the first and last
frame have a neighbour pose), which is what makes random access to frames deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from depth_pose_ros.data.synthetic_textures import (
    ATLAS_INDEX,
    CURB_D,
    CURB_WIDTH,
    LANE_WIDTH,
    PARKING_WIDTH,
    SIDEWALK_END_D,
)

EGO_LANE_D = LANE_WIDTH / 2  # ego drives in the middle of the right lane
MAX_HEADING = np.deg2rad(75.0)
MIN_TURN_RADIUS = 45.0  # peak curvature 1/45 m: <= 1.9 deg/frame at 1.5 m/frame


def yaw_matrix(theta: float | np.ndarray) -> np.ndarray:
    """Rotation(s) about the world y axis (down) by ``theta``: heading 0 looks along +z, +theta turns right.

    Returns 3x3 (or ...x3x3 for array input); columns are the rotated x (right), y (down), z (forward).
    """
    th = np.asarray(theta, dtype=np.float64)
    c, s = np.cos(th), np.sin(th)
    out = np.zeros(th.shape + (3, 3))
    out[..., 0, 0] = c
    out[..., 0, 2] = s
    out[..., 1, 1] = 1.0
    out[..., 2, 0] = -s
    out[..., 2, 2] = c
    return out


def rotation_xyz_small(pitch: float, roll: float) -> np.ndarray:
    """R_x(pitch) @ R_z(roll): small pitch (about camera x) and roll (about camera z) jitter."""
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rx @ rz


def se3(R: np.ndarray, t: npt.ArrayLike) -> np.ndarray:
    """4x4 rigid transform from a 3x3 rotation and a translation."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


# ---- road ----------------------------------------------------------------------------------------
class RoadCurve:
    """Road centreline in the world x/z plane, parametrised by arc length s.

    ``turns`` is a (k, 3) array of (start s, length, total heading change in rad); within a turn the
    curvature is ``angle / length * (1 - cos(2 pi u / length))``, zero outside, so the heading has a
    closed form and the centreline is integrated once on a fine table (Simpson rule per step). The
    centreline passes through the world origin at s = 0, heading along +z.
    """

    def __init__(self, turns: np.ndarray, s_min: float, s_max: float, step: float = 0.25) -> None:
        self.turns = np.asarray(turns, dtype=np.float64).reshape(-1, 3)
        self.step = float(step)
        self.s_min = float(np.floor(s_min / step) * step)
        n = int(np.ceil((s_max - self.s_min) / step)) + 1
        self.s_table = self.s_min + np.arange(n) * step
        a = self.s_table[:-1]
        b = self.s_table[1:]
        m = 0.5 * (a + b)
        th_a, th_m, th_b = self.heading(a), self.heading(m), self.heading(b)
        dx = step / 6.0 * (np.sin(th_a) + 4 * np.sin(th_m) + np.sin(th_b))
        dz = step / 6.0 * (np.cos(th_a) + 4 * np.cos(th_m) + np.cos(th_b))
        self.xz_table = np.zeros((n, 2))
        self.xz_table[1:, 0] = np.cumsum(dx)
        self.xz_table[1:, 1] = np.cumsum(dz)
        if self.s_min <= 0.0 <= self.s_max:  # world origin = centreline point at s = 0
            self.xz_table -= self.position(np.array([0.0]))[0]
        self._tree: cKDTree | None = None

    @property
    def s_max(self) -> float:
        return float(self.s_table[-1])

    def _turn_phase(self, s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """(u clipped to [0, length], length) per point and turn: arrays of shape s.shape + (k,)."""
        s0, length = self.turns[:, 0], self.turns[:, 1]
        return np.clip(np.asarray(s, np.float64)[..., None] - s0, 0.0, length), length

    def heading(self, s: np.ndarray | float) -> np.ndarray:
        """Heading theta(s) in radians (0 = +z, positive = turned right), closed form."""
        u, length = self._turn_phase(s)
        return (self.turns[:, 2] * (u / length - np.sin(2 * np.pi * u / length) / (2 * np.pi))).sum(axis=-1)

    def curvature(self, s: np.ndarray | float) -> np.ndarray:
        """Signed curvature d theta / ds (1/m), positive for right turns (zero outside turns)."""
        u, length = self._turn_phase(s)
        return (self.turns[:, 2] / length * (1 - np.cos(2 * np.pi * u / length))).sum(axis=-1)

    def position(self, s: np.ndarray | float) -> np.ndarray:
        """Centreline point(s) (..., 2) as world (x, z); table value plus one Simpson step to s."""
        s = np.asarray(s, dtype=np.float64)
        if np.any(s < self.s_min - 1e-9) or np.any(s > self.s_max + 1e-9):
            raise ValueError(f"road arc length outside the built table [{self.s_min}, {self.s_max}]")
        k = np.clip(((s - self.s_min) // self.step).astype(np.int64), 0, len(self.s_table) - 1)
        a = self.s_table[k]
        h = s - a
        th_a, th_m, th_s = self.heading(a), self.heading(a + 0.5 * h), self.heading(s)
        out = self.xz_table[k].copy()
        out[..., 0] += h / 6.0 * (np.sin(th_a) + 4 * np.sin(th_m) + np.sin(th_s))
        out[..., 1] += h / 6.0 * (np.cos(th_a) + 4 * np.cos(th_m) + np.cos(th_s))
        return out

    def point(self, s: np.ndarray | float, d: np.ndarray | float) -> np.ndarray:
        """World (x, z) of road coordinates (s, d): centreline point plus d along the right normal."""
        th = self.heading(s)
        p = self.position(s)
        d = np.asarray(d, dtype=np.float64)
        p[..., 0] += d * np.cos(th)
        p[..., 1] -= d * np.sin(th)
        return p

    def project(self, xz: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
        """Road coordinates (s, d) of world points (..., 2): nearest table point, then Newton steps."""
        xz = np.asarray(xz, dtype=np.float64)
        if self._tree is None:
            self._tree = cKDTree(self.xz_table)
        _, idx = self._tree.query(xz.reshape(-1, 2))
        s = self.s_table[idx].reshape(xz.shape[:-1])
        return self._newton(xz, s, iterations)

    def _newton(self, xz: np.ndarray, s: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
        for _ in range(iterations):
            th = self.heading(s)
            diff = xz - self.position(s)
            along = diff[..., 0] * np.sin(th) + diff[..., 1] * np.cos(th)
            d = diff[..., 0] * np.cos(th) - diff[..., 1] * np.sin(th)
            denom = np.maximum(1.0 - self.curvature(s) * d, 0.2)
            s = np.clip(s + along / denom, self.s_min, self.s_max)
        th = self.heading(s)
        diff = xz - self.position(s)
        return s, diff[..., 0] * np.cos(th) - diff[..., 1] * np.sin(th)


class RoadFrameGrid:
    """Road coordinates (s, d) tabulated on a world x/z grid, for fast per-pixel lookup.

    Solving the nearest-point problem per pixel would cost several passes; bilinear interpolation of
    this grid costs one ``cv2.remap``. The (s, d) field is smooth near the road, so the interpolation
    error is about ``res**2 / (8 R)`` (3 mm at res 1 m, R >= 45 m: invisible on 12 cm markings).
    Only the stretch ``[s_from, s_to]`` (what the camera can see) is covered; nodes farther than
    ``band`` from it get d = 1000 (grass). A lookup is a function of the world point only, so
    textures stay view-independent.
    """

    def __init__(self, road: RoadCurve, s_from: float, s_to: float, band: float = 40.0,
                 res: float = 1.0, max_nodes: int = 4_000_000) -> None:
        keep = (road.s_table >= s_from) & (road.s_table <= s_to)
        xz = road.xz_table[keep]
        lo = xz.min(axis=0) - band
        hi = xz.max(axis=0) + band
        self.res = max(res, float(np.sqrt(np.prod(hi - lo) / max_nodes)))
        nx = int(np.ceil((hi[0] - lo[0]) / self.res)) + 1
        nz = int(np.ceil((hi[1] - lo[1]) / self.res)) + 1
        self.origin = lo
        gx = lo[0] + np.arange(nx) * self.res
        gz = lo[1] + np.arange(nz) * self.res
        pts = np.stack(np.meshgrid(gx, gz, indexing="xy"), axis=-1).reshape(-1, 2)  # rows = z
        dist, idx = cKDTree(xz).query(pts, distance_upper_bound=band)
        near = np.isfinite(dist)
        s = np.zeros(len(pts))
        d = np.full(len(pts), 1000.0)
        s_near, d_near = road._newton(pts[near], road.s_table[keep][idx[near]], iterations=2)
        s[near], d[near] = s_near, d_near
        self.grid = np.stack([s, d], axis=-1).reshape(nz, nx, 2).astype(np.float32)


# ---- boxes ---------------------------------------------------------------------------------------
@dataclass
class BoxArrays:
    """All boxes of the world as parallel arrays (vectorised culling and shading).

    For static boxes (``obj == -1``) ``center``/``yaw`` are in the world frame; for boxes of moving
    object k they are in that object's frame. Texture: face axes x and z (sides) use atlas
    ``atlas[:, 0]`` and tint ``tint[:, 0]``, the y faces (top, bottom) ``atlas[:, 1]``/``tint[:, 1]``;
    surface coordinates in metres are multiplied by ``tex_scale`` and shifted by ``tex_offset``.
    """

    center: np.ndarray  # (N, 3) float64
    yaw: np.ndarray  # (N,) float64
    half: np.ndarray  # (N, 3) float64 half extents along the box x (right), y (down), z (forward)
    obj: np.ndarray  # (N,) int32
    atlas: np.ndarray  # (N, 2) int32
    tint: np.ndarray  # (N, 2, 3) float32
    tex_scale: np.ndarray  # (N, 2) float64
    tex_offset: np.ndarray  # (N, 2) float64

    def __len__(self) -> int:
        return int(self.center.shape[0])


class _BoxList:
    """Collects boxes one by one while the layout is generated."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def add(self, center, yaw, half, obj=-1, side="metal", top=None, tint=(1, 1, 1), tint_top=None,
            scale=(1.0, 1.0), offset=(0.0, 0.0)) -> None:
        top = side if top is None else top
        tint_top = tint if tint_top is None else tint_top
        self.rows.append((np.asarray(center, float), float(yaw), np.asarray(half, float), int(obj),
                          (ATLAS_INDEX[side], ATLAS_INDEX[top]), (tint, tint_top), scale, offset))

    def add_local(self, origin_xz, yaw, local_center, half, **kw) -> None:
        """Box given in a yawed frame standing on the road at ``origin_xz`` (static world box)."""
        c = np.array([origin_xz[0], 0.0, origin_xz[1]]) + yaw_matrix(yaw) @ np.asarray(local_center, float)
        self.add(c, yaw, half, **kw)

    def arrays(self) -> BoxArrays:
        if not self.rows:
            z3 = np.zeros((0, 3))
            return BoxArrays(z3, np.zeros(0), z3, np.zeros(0, np.int32), np.zeros((0, 2), np.int32),
                             np.zeros((0, 2, 3), np.float32), np.zeros((0, 2)), np.zeros((0, 2)))
        c, y, h, o, a, t, sc, off = zip(*self.rows)
        return BoxArrays(np.stack(c), np.array(y), np.stack(h), np.array(o, np.int32),
                         np.array(a, np.int32), np.array(t, np.float32), np.array(sc, float),
                         np.array(off, float))


CAR_COLOURS = np.array([
    [0.85, 0.85, 0.85], [0.15, 0.15, 0.17], [0.55, 0.56, 0.6], [0.6, 0.08, 0.07], [0.1, 0.2, 0.45],
    [0.75, 0.75, 0.78], [0.25, 0.3, 0.25], [0.8, 0.6, 0.2], [0.3, 0.35, 0.45], [0.9, 0.9, 0.92],
], np.float32)
WALL_TINTS = np.array([
    [1.0, 1.0, 1.0], [1.0, 0.93, 0.8], [0.9, 0.92, 0.95], [1.0, 0.85, 0.8], [0.85, 0.85, 0.82],
    [0.95, 0.97, 0.85], [0.75, 0.72, 0.7],
], np.float32)


def car_boxes(rng: np.random.Generator) -> list[dict]:
    """Body and cabin of one car in its own frame (origin on the ground, centre of the footprint)."""
    length, width = rng.uniform(3.9, 4.9), rng.uniform(1.7, 1.9)
    body_h = rng.uniform(0.85, 1.05)
    cabin_h = rng.uniform(0.45, 0.6) if rng.random() > 0.15 else rng.uniform(0.8, 1.0)  # vans
    colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))]
    cabin_len = length * rng.uniform(0.45, 0.6)
    u_off = rng.uniform(0, 5)
    return [
        dict(local_center=(0, -body_h / 2, 0), half=(width / 2, body_h / 2, length / 2),
             side="car_body", top="car_top", tint=colour, offset=(u_off, 0.0)),
        dict(local_center=(0, -(body_h + cabin_h / 2), -0.08 * length),
             half=(0.44 * width, cabin_h / 2, cabin_len / 2), side="glass", top="car_top",
             tint=(1.0, 1.0, 1.0), tint_top=colour, offset=(u_off, 0.0)),
    ]


@dataclass(frozen=True)
class StreetStyle:
    """Per-seed character of the street (densities)."""

    building_gap_prob: float
    parked_prob: float
    tree_prob: float
    pole_prob: float

    @staticmethod
    def random(rng: np.random.Generator) -> StreetStyle:
        return StreetStyle(rng.uniform(0.15, 0.5), rng.uniform(0.4, 0.85), rng.uniform(0.2, 0.5),
                           rng.uniform(0.2, 0.4))


def _buildings(road: RoadCurve, boxes: _BoxList, rng: np.random.Generator, side: int, s_lo: float,
               s_hi: float, style: StreetStyle) -> None:
    """Building blocks on one side (+1 right, -1 left), pushed back where the road curves into them."""
    s = s_lo + rng.uniform(0, 8)
    min_front = SIDEWALK_END_D + 0.5  # clear of the tree crowns on the sidewalk
    while s < s_hi:
        length = rng.uniform(8.0, 30.0)
        depth = rng.uniform(8.0, 18.0)
        height = rng.uniform(6.0, 22.0) if rng.random() > 0.15 else rng.uniform(3.5, 6.0)
        front = SIDEWALK_END_D + 0.5 + (rng.uniform(0, 3.5) if rng.random() < 0.6 else 0.0)
        s_mid = s + length / 2
        th = float(road.heading(s_mid))
        right = np.array([np.cos(th), -np.sin(th)])
        fwd = np.array([np.sin(th), np.cos(th)])
        centre = road.point(s_mid, side * (front + depth / 2))
        for _ in range(2):  # on the inside of a curve the block's ends come closer to the road
            corners = np.stack([centre - side * depth / 2 * right + e * length / 2 * fwd for e in (-1, 1)])
            _, d = road._newton(corners, np.array([s_mid - length / 2, s_mid + length / 2]), 4)
            deficit = max(0.0, float(np.max(min_front - side * d)))
            centre = centre + side * (deficit + (0.05 if deficit > 0 else 0.0)) * right
        style_name = ("facade_plaster", "facade_brick", "facade_office")[rng.choice(3, p=[0.5, 0.3, 0.2])]
        tint = WALL_TINTS[rng.integers(len(WALL_TINTS))] * rng.uniform(0.85, 1.05)
        sc = rng.uniform(0.85, 1.2)
        boxes.add_local(centre, th, (0, -height / 2, 0), (depth / 2, height / 2, length / 2),
                        side=style_name, top="roof", tint=tint, scale=(sc, sc),
                        offset=(rng.uniform(0, 12.8), 0.0))
        gap = rng.uniform(4.0, 18.0) if rng.random() < style.building_gap_prob else rng.uniform(0.0, 1.0)
        s += length + gap


def _parked_cars(road: RoadCurve, boxes: _BoxList, rng: np.random.Generator, side: int, s_lo: float,
                 s_hi: float, style: StreetStyle) -> None:
    """Cars parked in the parking strip of one side, facing the traffic of that side."""
    s = s_lo + rng.uniform(0, 5)
    while s < s_hi:
        if rng.random() > style.parked_prob:
            s += rng.uniform(5.0, 15.0)
            continue
        parts = car_boxes(rng)
        length = 2 * parts[0]["half"][2]
        s_mid = s + length / 2
        d = side * (LANE_WIDTH + PARKING_WIDTH / 2 + rng.uniform(-0.1, 0.1))
        yaw = float(road.heading(s_mid)) + (0.0 if side > 0 else np.pi) + rng.normal(0, 0.02)
        origin = road.point(s_mid, d)
        for p in parts:
            boxes.add_local(origin, yaw, **p)
        s += length + rng.uniform(0.8, 3.0)


def _street_furniture(road: RoadCurve, boxes: _BoxList, rng: np.random.Generator, side: int, s_lo: float,
                      s_hi: float, style: StreetStyle) -> None:
    """Lamp poles and trees on the sidewalk."""
    s = s_lo + rng.uniform(0, 6)
    while s < s_hi:
        th = float(road.heading(s))
        r = rng.random()
        if r < style.pole_prob:
            h = rng.uniform(5.0, 7.5)
            origin = road.point(s, side * (CURB_D + CURB_WIDTH + 0.35))
            boxes.add_local(origin, th, (0, -h / 2, 0), (0.08, h / 2, 0.08), side="metal")
            boxes.add_local(origin, th, (-side * 0.8, -(h - 0.15), 0), (0.8, 0.06, 0.07), side="metal")
        elif r < style.pole_prob + style.tree_prob:
            trunk = rng.uniform(2.2, 3.2)
            crown = rng.uniform(0.9, 1.4)
            origin = road.point(s, side * (CURB_D + CURB_WIDTH + 1.2))
            boxes.add_local(origin, th, (0, -trunk / 2, 0), (0.14, trunk / 2, 0.14), side="bark")
            boxes.add_local(origin, th, (0, -(trunk + crown * 0.8), 0), (crown, crown * 0.85, crown),
                            side="foliage", offset=(rng.uniform(0, 5), rng.uniform(0, 5)))
        s += rng.uniform(7.0, 14.0)


# ---- trajectories --------------------------------------------------------------------------------
def _smooth_signal(rng: np.random.Generator, t: np.ndarray, periods: tuple[float, float],
                   n: int = 2) -> np.ndarray:
    """Sum of ``n`` sinusoids with random periods and phases, normalised to [-1, 1] at most."""
    w = rng.uniform(0.5, 1.0, n)
    w /= w.sum()
    out = np.zeros_like(t)
    for k in range(n):
        period = rng.uniform(*periods)
        out += w[k] * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    return out


def _random_turns(rng: np.random.Generator, s_start: float, s_end: float) -> np.ndarray:
    """Turns (start, length, angle) along [s_start, s_end], keeping |heading| <= MAX_HEADING."""
    turns = []
    heading = 0.0
    s = s_start + rng.uniform(10.0, 60.0)
    while s < s_end:
        angle = np.deg2rad(rng.uniform(10.0, 90.0)) * rng.choice((-1.0, 1.0))
        if abs(heading + angle) > MAX_HEADING:
            angle = -angle if abs(heading - angle) <= MAX_HEADING else -heading
        # raised-cosine curvature peaks at 2*angle/length: keep the radius >= MIN_TURN_RADIUS
        length = max(rng.uniform(40.0, 120.0), 2.0 * abs(angle) * MIN_TURN_RADIUS)
        if abs(angle) > 1e-3:
            turns.append((s, length, angle))
            heading += angle
        s += length + rng.uniform(20.0, 150.0)
    return np.array(turns, dtype=np.float64).reshape(-1, 3)


@dataclass
class MovingCar:
    """One independently moving car: road position per tabulated frame and lane."""

    s: np.ndarray  # (length + 2,) arc length at frames -1 .. length
    d: float  # lane offset
    oncoming: bool


class TabulatedCamera:
    """Camera poses tabulated once per frame index -1 .. ``length`` (``_cam``, ``length + 2`` entries): the
    street and the room world share this access, which is what makes random access deterministic."""

    length: int
    _cam: np.ndarray

    def _row(self, frame: int) -> int:
        if not -1 <= frame <= self.length:
            raise IndexError(f"frame {frame} outside the tabulated range -1..{self.length}")
        return frame + 1

    def camera_pose(self, frame: int) -> np.ndarray:
        """4x4 T_world_cam of frame ``frame`` (camera-to-world: maps camera points into the world)."""
        return self._cam[self._row(frame)].copy()


class SyntheticWorld(TabulatedCamera):
    """Deterministic street layout, camera trajectory and moving cars for one seed.

    Poses are tabulated for frame indices -1 .. ``length`` (``length + 2`` entries); use
    :meth:`camera_pose` / :meth:`object_pose` with the frame index.

    Attributes: ``road`` (:class:`RoadCurve`), ``road_grid`` (:class:`RoadFrameGrid`), ``boxes``
    (:class:`BoxArrays`), ``moving`` (one :class:`MovingCar` per moving object, whose boxes have
    ``boxes.obj == k``), ``ego_s`` / ``ego_speed`` (road arc length and ground speed of the camera per
    tabulated frame), ``sun`` (unit vector towards the sun, world frame), ``style``.
    """

    def __init__(self, seed: int = 0, length: int = 100, fps: float = 10.0,
                 speed_range: tuple[float, float] = (5.0, 15.0), num_moving: int = 3,
                 pose_jitter_deg: float = 0.2, camera_height: float = 1.65, close_traffic: bool = False) -> None:
        if int(length) < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        v_lo, v_hi = (float(x) for x in speed_range)
        if not 0.0 < v_lo <= v_hi <= 40.0:
            raise ValueError(f"speed_range must satisfy 0 < min <= max <= 40 m/s, got {speed_range}")
        if int(num_moving) < 0:
            raise ValueError(f"num_moving must be >= 0, got {num_moving}")
        if pose_jitter_deg < 0:
            raise ValueError(f"pose_jitter_deg must be >= 0, got {pose_jitter_deg}")
        if not 0.3 <= camera_height <= 5.0:
            raise ValueError(f"camera_height must be in [0.3, 5] metres, got {camera_height}")
        self.seed = int(seed)
        self.length = int(length)
        self.fps = float(fps)
        self.camera_height = float(camera_height)
        self.close_traffic = bool(close_traffic)
        rng = np.random.default_rng([self.seed, 0x5717])
        t = (np.arange(-1, self.length + 1)) / self.fps  # frame times, index 0 = frame -1
        duration = t[-1] - t[0]
        max_travel = v_hi * (duration + 1.0) * 1.1 + 10.0
        s_lo, s_hi = -max_travel - 150.0, 2 * max_travel + 400.0
        self.road = RoadCurve(_random_turns(rng, 0.0, s_hi), s_lo, s_hi)
        self.style = StreetStyle.random(rng)

        # ego: ground speed v(t) smooth inside the range, lateral wander in the lane
        v = v_lo + (v_hi - v_lo) * (0.5 + 0.5 * _smooth_signal(rng, t, (12.0, 40.0)))
        wander = 0.15 * _smooth_signal(rng, t, (6.0, 15.0))
        d_ego = EGO_LANE_D + wander
        self.ego_speed = v
        self.ego_s = self._integrate_arc_length(v, d_ego, t)
        ego_d_rate = np.gradient(d_ego, t)
        yaw = self.road.heading(self.ego_s) + np.arctan2(ego_d_rate, v)
        jit = np.deg2rad(pose_jitter_deg)
        pitch = jit * _smooth_signal(rng, t, (0.8, 2.5))
        roll = jit * _smooth_signal(rng, t, (1.0, 3.0))
        bob = 0.04 * jit / np.deg2rad(1.0) * _smooth_signal(rng, t, (0.7, 2.0))
        xz = self.road.point(self.ego_s, d_ego)
        self._cam = np.empty((len(t), 4, 4))
        for i in range(len(t)):
            R = yaw_matrix(yaw[i]) @ rotation_xyz_small(pitch[i], roll[i])
            self._cam[i] = se3(R, (xz[i, 0], -self.camera_height + bob[i], xz[i, 1]))

        boxes = _BoxList()
        s_from, s_to = float(self.ego_s.min()) - 40.0, float(self.ego_s.max()) + 320.0
        for side in (1, -1):
            _buildings(self.road, boxes, rng, side, s_from, s_to, self.style)
            _parked_cars(self.road, boxes, rng, side, s_from, s_to, self.style)
            _street_furniture(self.road, boxes, rng, side, s_from, s_to, self.style)

        self.moving: list[MovingCar] = []
        self._oncoming_speed = rng.uniform(7.0, 13.0)
        self._next_meet = t[0] + rng.uniform(0.15, 1.0) * (t[-1] - t[0])
        for k in range(int(num_moving)):
            parts = car_boxes(rng)
            for p in parts:
                boxes.add(p["local_center"], 0.0, p["half"], obj=k, side=p["side"], top=p["top"],
                          tint=p["tint"], tint_top=p.get("tint_top"), offset=p["offset"])
            self.moving.append(self._moving_car(k, rng, t))
        self.boxes = boxes.arrays()
        self._obj = np.empty((len(self.moving), len(t), 4, 4))
        for k, car in enumerate(self.moving):
            xz_k = self.road.point(car.s, car.d)
            yaw_k = self.road.heading(car.s) + (np.pi if car.oncoming else 0.0)
            for i in range(len(t)):
                self._obj[k, i] = se3(yaw_matrix(yaw_k[i]), (xz_k[i, 0], 0.0, xz_k[i, 1]))

        elev = np.deg2rad(rng.uniform(30.0, 60.0))
        az = rng.uniform(0, 2 * np.pi)
        self.sun = np.array([np.cos(elev) * np.sin(az), -np.sin(elev), np.cos(elev) * np.cos(az)])
        self.road_grid = RoadFrameGrid(self.road, float(self.ego_s.min()) - 60.0,
                                       float(self.ego_s.max()) + 450.0)

    def _integrate_arc_length(self, v: np.ndarray, d: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Road arc length at each frame for ground speed v at lateral offset d: ds/dt = v / (1 - k d)."""
        s = np.zeros_like(t)
        sub = 8
        for i in range(1, len(t)):
            si = s[i - 1]
            h = (t[i] - t[i - 1]) / sub
            for j in range(sub):
                a = j / sub
                vv = v[i - 1] + (v[i] - v[i - 1]) * a
                dd = d[i - 1] + (d[i] - d[i - 1]) * a
                k1 = vv / (1.0 - float(self.road.curvature(si)) * dd)
                k2 = vv / (1.0 - float(self.road.curvature(si + 0.5 * h * k1)) * dd)
                si += h * k2
            s[i] = si
        return s

    def _moving_car(self, k: int, rng: np.random.Generator, t: np.ndarray) -> MovingCar:
        """Cars 0, 3, 6, ... lead in the ego lane; the others are oncoming and pass the ego.

        Leading car j (k = 3 j) keeps a smoothly varying gap (camera to car centre) in
        [15 + 40 j, 45 + 40 j] m, so leading cars never touch each other or the ego. With
        ``close_traffic`` the leading cars queue: gap in [6.5 + 11 j, 11.5 + 11 j] m (the first car's
        rear bumper 4-9 m ahead of the camera, at least ~1 m between bumpers). Oncoming cars share one
        speed and meet the ego at least 1.5 s apart, so their spacing along the lane is constant and at
        least ~10 m.
        """
        if k % 3 == 0:
            if self.close_traffic:
                base = 6.5 + 11.0 * (k // 3)
                gap = base + 2.5 + 2.5 * _smooth_signal(rng, t, (8.0, 20.0))
            else:
                base = 15.0 + 40.0 * (k // 3)
                gap = base + 15.0 + 15.0 * _smooth_signal(rng, t, (8.0, 20.0))
            return MovingCar(s=self.ego_s + gap, d=EGO_LANE_D, oncoming=False)
        t_meet = self._next_meet
        self._next_meet += rng.uniform(1.5, 4.0)
        s_meet = float(np.interp(t_meet, t, self.ego_s, right=self.ego_s[-1] + (t_meet - t[-1]) * 10.0))
        s = np.clip(s_meet + self._oncoming_speed * (t_meet - t), self.road.s_min, self.road.s_max)
        return MovingCar(s=s, d=-EGO_LANE_D, oncoming=True)

    # ---- poses -----------------------------------------------------------------------------------
    def object_pose(self, k: int, frame: int) -> np.ndarray:
        """4x4 T_world_obj of moving object ``k`` at frame ``frame`` (object-to-world)."""
        return self._obj[k, self._row(frame)].copy()

    def box_poses(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """World rotation (N, 3, 3) and centre (N, 3) of every box at frame ``frame``."""
        b = self.boxes
        R = yaw_matrix(b.yaw)
        c = b.center.copy()
        for k in range(len(self.moving)):
            sel = b.obj == k
            T = self._obj[k, self._row(frame)]
            R[sel] = T[:3, :3] @ R[sel]
            c[sel] = b.center[sel] @ T[:3, :3].T + T[:3, 3]
        return R, c
