"""Vectorised ray casting and texturing of the synthetic world (numpy + OpenCV, CPU only).

Per view: every pixel's ray ``r = K^-1 [u, v, 1]`` has z = 1, so the ray parameter of a hit *is* its
z-depth. The road plane y = 0 is intersected analytically for all pixels at once; each box is then
intersected with the slab method only over the pixels inside its projected screen rectangle (its
corners, clipped at the near plane, projected), and a z-buffer keeps the nearest hit. Big rectangles
are processed box by box on 2D sub-arrays (the ray components are separable in u and v, so a box's
ray directions are an outer sum, never gathered); the many tiny far boxes are processed together as
one flat list of (pixel, box) pairs, which removes the per-box Python overhead.

Texturing happens after visibility, once per visible pixel: surface coordinates of the hit (world
x/z and road s/d for the ground, face coordinates in metres for boxes, direction for the sky) are
looked up in the atlases of :mod:`synthetic_textures`, with a mip level from the pixel footprint.
Boxes are shaded with a fixed sun (Lambertian, no shadows): the shade depends on the face normal
only, so it is view-independent too.

Sky: pixels that hit nothing (or ground beyond ``max_depth``) get depth 0 (invalid, as in KITTI's
depth ground truth) and a colour that depends only on the viewing *direction* in the world (vertical
gradient plus soft clouds): the sky behaves as if infinitely far away, and its flow is the
rotation-only flow (see :mod:`synthetic_flow`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np

from depth_pose_ros.data.synthetic_scene import SyntheticWorld
from depth_pose_ros.data.synthetic_textures import (
    ASPHALT,
    ROAD_ATLAS_HALF,
    SKY_CLOUDS,
    Atlases,
    atlases,
    remap_points,
)

SKY = -2  # surface id of pixels that hit nothing
GROUND = -1  # surface id of the road plane; box indices are >= 0
SMALL_BOX_PIXELS = 600  # rectangles smaller than this are ray cast together as (pixel, box) pairs (tuned)
_CUBE_SIGNS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], np.float64)
_CUBE_EDGES = np.array([(a, b) for a in range(8) for b in range(a + 1, 8)
                        if np.sum(_CUBE_SIGNS[a] != _CUBE_SIGNS[b]) == 1])
_ASPHALT_RGB = np.array([0.3, 0.3, 0.315], np.float32)
_SKY_HORIZON = np.array([0.8, 0.84, 0.88], np.float32)
_SKY_ZENITH = np.array([0.33, 0.52, 0.82], np.float32)
_CLOUD = np.array([0.95, 0.95, 0.97], np.float32)


@dataclass
class View:
    """One rendered camera view.

    ``depth``: HxW float32 z-depth in metres, 0 for sky. ``surface``: HxW int32, the box index hit,
    or GROUND / SKY. ``image``: HxWx3 float32 RGB in [0, 1] (None when only geometry was asked for).
    """

    depth: np.ndarray
    surface: np.ndarray
    image: Optional[np.ndarray]


def scaled_intrinsics(height: int, width: int, hfov_deg: float) -> np.ndarray:
    """3x3 K with square pixels, horizontal field of view ``hfov_deg`` and the centre at the image middle.

    ``fx = fy = W / (2 tan(hfov / 2))``: 81.5 deg gives fx = 0.58 W like KITTI (707 px at 1242).
    Pixel centres are at integer coordinates, so the principal point is ((W-1)/2, (H-1)/2).
    """
    if not 10.0 <= hfov_deg <= 150.0:
        raise ValueError(f"hfov_deg must be in [10, 150] degrees, got {hfov_deg}")
    f = width / (2.0 * np.tan(np.deg2rad(hfov_deg) / 2.0))
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


class Renderer:
    """Renders views of a :class:`SyntheticWorld` at one resolution and intrinsics."""

    room_atlases = False  # True: the atlases with the indoor textures (synthetic_room.RoomRenderer)

    def __init__(self, world: SyntheticWorld, K: np.ndarray, height: int, width: int,
                 antialias: bool = True, max_depth: float = 300.0, near: float = 0.05) -> None:
        self.world = world
        self.K = np.asarray(K, dtype=np.float64)
        self.height, self.width = int(height), int(width)
        self.antialias = bool(antialias)
        self.max_depth = float(max_depth)
        self.near = float(near)
        fx, fy, cx, cy = self.K[0, 0], self.K[1, 1], self.K[0, 2], self.K[1, 2]
        self.rx = ((np.arange(self.width) - cx) / fx).astype(np.float32)
        self.ry = ((np.arange(self.height) - cy) / fy).astype(np.float32)
        rays = np.empty((3, self.height, self.width), np.float32)
        rays[0] = self.rx[None, :]
        rays[1] = self.ry[:, None]
        rays[2] = 1.0
        self.rays = rays.reshape(3, -1)  # (3, H*W), z = 1: ray parameter == z-depth
        self.ray_norm = np.linalg.norm(self.rays, axis=0)
        self.atlases: Atlases = atlases(room=True) if self.room_atlases else atlases()

    def __getstate__(self) -> dict:
        # The atlases (tens of MiB, docs/bench_synthetic.md) are a process-wide cache: rebuild them instead
        # of pickling them (DataLoader workers, multiprocessing).
        state = self.__dict__.copy()
        del state["atlases"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.atlases = atlases(room=True) if self.room_atlases else atlases()

    # ---- visibility ------------------------------------------------------------------------------
    def render(self, T_world_cam: np.ndarray, frame: int, with_image: bool = True) -> View:
        """Render the world at frame ``frame`` (moving boxes placed at that frame) seen from ``T_world_cam``.

        ``T_world_cam`` is the camera-to-world pose (maps camera points into the world frame).
        """
        T = np.asarray(T_world_cam, dtype=np.float64)
        R_wc, C = T[:3, :3], T[:3, 3]
        dwy = (R_wc[1, 0] * self.rx[None, :] + R_wc[1, 1] * self.ry[:, None] + R_wc[1, 2]).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_ground = np.float32(-C[1]) / dwy
        ground = (dwy > 1e-7) & (t_ground <= self.max_depth) & (t_ground > self.near)
        if not getattr(self.world, "ground_plane", True):  # worlds of boxes only (synthetic_room)
            ground[:] = False
        zbuf = np.where(ground, t_ground, np.float32(np.inf)).astype(np.float32)
        surface = np.where(ground, GROUND, SKY).astype(np.int32)

        R_wb, c_w = self.world.box_poses(frame)
        R_cb = np.einsum("ij,njk->nik", R_wc.T, R_wb)
        c_c = (c_w - C) @ R_wc  # = R_cw (c_w - C)
        R_bc = np.transpose(R_cb, (0, 2, 1))
        o_b = -np.einsum("nij,nj->ni", R_bc, c_c)  # camera centre in box coordinates
        half = self.world.boxes.half
        rects = self._screen_rects(R_cb, c_c, half)
        visible = np.nonzero(rects[:, 0] >= 0)[0]
        areas = (rects[visible, 1] - rects[visible, 0]) * (rects[visible, 3] - rects[visible, 2])
        small = visible[areas < SMALL_BOX_PIXELS]
        for b in visible[areas >= SMALL_BOX_PIXELS]:
            self._cast_box(int(b), rects[b], R_bc[b], o_b[b], half[b], zbuf, surface)
        if small.size:
            self._cast_small_boxes(small, rects, R_bc, o_b, half, zbuf, surface)

        image = None
        if with_image:
            image = self._shade(R_wc, C, zbuf, surface, R_bc, o_b, R_wb)
        depth = np.where(np.isfinite(zbuf), zbuf, 0.0).astype(np.float32)
        return View(depth=depth, surface=surface, image=image)

    def _screen_rects(self, R_cb: np.ndarray, c_c: np.ndarray, half: np.ndarray) -> np.ndarray:
        """(N, 4) int pixel rectangles [u0, u1, v0, v1) containing each box's projection; -1 if culled.

        The box, clipped at the near plane, is the convex hull of its corners in front of the plane
        and of its edges' crossings of the plane, so projecting those points bounds it exactly.
        """
        n = len(half)
        rects = np.full((n, 4), -1, np.int64)
        if n == 0:
            return rects
        corners = c_c[:, None, :] + np.einsum("nij,knj->nki", R_cb, _CUBE_SIGNS[:, None, :] * half[None])
        z = corners[..., 2]
        a, b = corners[:, _CUBE_EDGES[:, 0]], corners[:, _CUBE_EDGES[:, 1]]
        za, zb = a[..., 2], b[..., 2]
        crosses = (za - self.near) * (zb - self.near) < 0
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(crosses, (self.near - za) / (zb - za), 0.0)
        cuts = a + lam[..., None] * (b - a)
        pts = np.concatenate([corners, cuts], axis=1)
        ok = np.concatenate([z >= self.near, crosses], axis=1)
        zc = np.where(ok, pts[..., 2], 1.0)
        u = self.K[0, 0] * pts[..., 0] / zc + self.K[0, 2]
        v = self.K[1, 1] * pts[..., 1] / zc + self.K[1, 2]
        u0 = np.floor(np.where(ok, u, np.inf).min(axis=1))
        u1 = np.ceil(np.where(ok, u, -np.inf).max(axis=1)) + 1
        v0 = np.floor(np.where(ok, v, np.inf).min(axis=1))
        v1 = np.ceil(np.where(ok, v, -np.inf).max(axis=1)) + 1
        keep = ok.any(axis=1) & (z.min(axis=1) < self.max_depth)
        keep &= (u1 > 0) & (u0 < self.width) & (v1 > 0) & (v0 < self.height)
        r = np.stack([np.clip(u0, 0, self.width), np.clip(u1, 0, self.width),
                      np.clip(v0, 0, self.height), np.clip(v1, 0, self.height)], axis=1)
        keep &= (r[:, 1] > r[:, 0]) & (r[:, 3] > r[:, 2])
        rects[keep] = r[keep].astype(np.int64)
        return rects

    def _cast_box(self, b: int, rect: np.ndarray, R_bc: np.ndarray, o_b: np.ndarray, half: np.ndarray,
                  zbuf: np.ndarray, surface: np.ndarray) -> None:
        """Slab test of one box over its screen rectangle; writes nearer hits into zbuf / surface."""
        u0, u1, v0, v1 = (int(x) for x in rect)
        rx = self.rx[None, u0:u1]
        ry = self.ry[v0:v1, None]
        R = R_bc.astype(np.float32)
        t_in = t_out = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for i in range(3):
                inv = 1.0 / (R[i, 0] * rx + R[i, 1] * ry + R[i, 2])
                a = np.float32(-half[i] - o_b[i]) * inv
                c = np.float32(half[i] - o_b[i]) * inv
                lo, hi = np.minimum(a, c), np.maximum(a, c)
                t_in = lo if t_in is None else np.maximum(t_in, lo)
                t_out = hi if t_out is None else np.minimum(t_out, hi)
        assert t_in is not None and t_out is not None  # three slabs
        zsub = zbuf[v0:v1, u0:u1]
        hit = (t_in <= t_out) & (t_in > self.near) & (t_in < zsub)
        np.copyto(zsub, t_in, where=hit)
        np.copyto(surface[v0:v1, u0:u1], np.int32(b), where=hit)

    def _cast_small_boxes(self, ids: np.ndarray, rects: np.ndarray, R_bc: np.ndarray, o_b: np.ndarray,
                          half: np.ndarray, zbuf: np.ndarray, surface: np.ndarray) -> None:
        """Slab test of many small boxes at once over a flat list of (pixel, box) pairs."""
        r = rects[ids]
        w = r[:, 1] - r[:, 0]
        area = w * (r[:, 3] - r[:, 2])
        box = np.repeat(ids, area)
        off = np.arange(box.size) - np.repeat(np.cumsum(area) - area, area)
        wr = np.repeat(w, area)
        uu = np.repeat(r[:, 0], area) + off % wr
        vv = np.repeat(r[:, 2], area) + off // wr
        rx, ry = self.rx[uu], self.ry[vv]
        Rf = R_bc.reshape(-1, 9).astype(np.float32)[box]
        ob = o_b.astype(np.float32)[box]
        hf = half.astype(np.float32)[box]
        t_in = t_out = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for i in range(3):
                inv = 1.0 / (Rf[:, 3 * i] * rx + Rf[:, 3 * i + 1] * ry + Rf[:, 3 * i + 2])
                a = (-hf[:, i] - ob[:, i]) * inv
                c = (hf[:, i] - ob[:, i]) * inv
                lo, hi = np.minimum(a, c), np.maximum(a, c)
                t_in = lo if t_in is None else np.maximum(t_in, lo)
                t_out = hi if t_out is None else np.minimum(t_out, hi)
        assert t_in is not None and t_out is not None  # three slabs
        pix = vv * self.width + uu
        zflat = zbuf.reshape(-1)
        hit = np.nonzero((t_in <= t_out) & (t_in > self.near) & (t_in < zflat[pix]))[0]
        if hit.size == 0:
            return
        pix, t, box = pix[hit], t_in[hit], box[hit]
        order = np.lexsort((t, pix))  # per pixel, nearest first
        pix, t, box = pix[order], t[order], box[order]
        first = np.ones(pix.size, bool)
        first[1:] = pix[1:] != pix[:-1]
        zflat[pix[first]] = t[first]
        surface.reshape(-1)[pix[first]] = box[first]

    # ---- appearance ------------------------------------------------------------------------------
    def _lod(self, footprint: np.ndarray, texel: float | np.ndarray) -> Optional[np.ndarray]:
        """Mip level for a pixel footprint (metres, or radians for the sky); None without antialiasing."""
        if not self.antialias:
            return None
        return np.log2(np.maximum(footprint / texel, 1e-6)).astype(np.float32)

    def _shade(self, R_wc: np.ndarray, C: np.ndarray, zbuf: np.ndarray, surface: np.ndarray,
               R_bc: np.ndarray, o_b: np.ndarray, R_wb: np.ndarray) -> np.ndarray:
        """HxWx3 float32 colours of all pixels from their surface, hit depth and surface coordinates."""
        sf = surface.reshape(-1)
        zf = zbuf.reshape(-1)
        out = np.empty((sf.size, 3), np.float32)
        idx = np.nonzero(sf == SKY)[0]
        if idx.size:
            out[idx] = self._shade_sky(idx, R_wc)
        idx = np.nonzero(sf == GROUND)[0]
        if idx.size:
            out[idx] = self._shade_ground(idx, zf[idx], R_wc, C)
        idx = np.nonzero(sf >= 0)[0]
        if idx.size:
            out[idx] = self._shade_boxes(idx, sf[idx], zf[idx], R_bc, o_b, R_wb)
        return out.reshape(self.height, self.width, 3)

    def _shade_sky(self, idx: np.ndarray, R_wc: np.ndarray) -> np.ndarray:
        """Sky colours from the world viewing direction only: vertical gradient plus soft clouds."""
        d = R_wc @ self.rays[:, idx].astype(np.float64)
        d /= np.linalg.norm(d, axis=0)
        elev = np.arcsin(np.clip(-d[1], -1, 1))  # y is down
        az = np.arctan2(d[0], d[2])
        clouds = self.atlases.gray
        lod = self._lod(np.full(idx.size, 1.0 / float(self.K[0, 0])), clouds.texel[SKY_CLOUDS])
        cloud = clouds.sample(SKY_CLOUDS, az, elev, lod)[:, 0]
        grad = np.clip(elev / 0.7, 0, 1).astype(np.float32)[:, None] ** 0.7
        col = _SKY_HORIZON + (_SKY_ZENITH - _SKY_HORIZON) * grad
        amount = np.clip((cloud - 0.5) / 0.3, 0, 1) * np.clip(elev * 8.0, 0, 1).astype(np.float32)
        return col + (_CLOUD - col) * (0.85 * amount)[:, None]

    def _shade_ground(self, idx: np.ndarray, t: np.ndarray, R_wc: np.ndarray, C: np.ndarray) -> np.ndarray:
        """Road-plane colours: asphalt noise at world (x, z) under the road-frame (s, d) overlay.

        The overlay's alpha selects markings, kerb, sidewalk and verge; the asphalt noise modulates
        them too, so every ground region has texture at several scales.
        """
        at = self.atlases
        t = t.astype(np.float64)
        d = R_wc @ self.rays[:, idx].astype(np.float64)
        x = C[0] + t * d[0]
        z = C[2] + t * d[2]
        norm = self.ray_norm[idx]
        cos_inc = np.clip(d[1] / norm, 0.02, 1.0)
        lod = self._lod(t * norm / (float(self.K[0, 0]) * np.sqrt(cos_inc)), 0.02)
        noise = at.gray.sample(ASPHALT, x, z, lod)
        grid = self.world.road_grid
        gx = ((x - grid.origin[0]) / grid.res).astype(np.float32)
        gz = ((z - grid.origin[1]) / grid.res).astype(np.float32)
        sd = remap_points(grid.grid, gx, gz, cv2.BORDER_REPLICATE)
        margin = 1.0  # keep bilinear lookups of every mip level off the atlas' d borders
        dd = np.clip(sd[:, 1], -ROAD_ATLAS_HALF + margin, ROAD_ATLAS_HALF - margin) + ROAD_ATLAS_HALF
        over = at.road.sample(0, sd[:, 0], dd, lod)
        base = _ASPHALT_RGB * (0.55 + 0.9 * noise)
        alpha = over[:, 3:4]
        col = base * (1 - alpha) + over[:, :3] * (0.8 + 0.4 * noise) * alpha
        return col * np.float32(0.6 + 0.4 * max(0.0, -self.world.sun[1]))

    def _shade_boxes(self, idx: np.ndarray, box: np.ndarray, t: np.ndarray, R_bc: np.ndarray,
                     o_b: np.ndarray, R_wb: np.ndarray, return_face: bool = False
                     ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Colours of box pixels: face from the hit point in box coordinates, then atlas lookup.

        The geometric per-box parameters are packed into one float32 table so that each pixel needs
        a single gather (gathers dominate the cost here); the colour factor (tint x sun shade) is one
        RGB per box face, gathered once more at the end. ``return_face`` also returns the face hit
        per pixel (0..5: -x, -y, -z, +x, +y, +z of the box frame), for renderers that add lighting.
        """
        boxes = self.world.boxes
        n = len(boxes)
        table = np.concatenate([R_bc.reshape(n, 9), o_b, boxes.half, boxes.tex_scale, boxes.tex_offset],
                               axis=1).astype(np.float32).T.copy()
        g = np.take(table, box, axis=1)  # (19, M): one contiguous row per parameter
        rx = self.rays[0, idx]
        ry = self.rays[1, idx]
        d_loc = [g[3 * i] * rx + g[3 * i + 1] * ry + g[3 * i + 2] for i in range(3)]
        p = [g[9 + i] + t * d_loc[i] for i in range(3)]
        h = [g[12 + i] for i in range(3)]
        ratio = [np.abs(p[i]) / h[i] for i in range(3)]  # 1 on the face that was hit
        on_x = (ratio[0] >= ratio[1]) & (ratio[0] >= ratio[2])
        on_y = ~on_x & (ratio[1] >= ratio[2])
        axis = on_y.astype(np.int64) + 2 * (~on_x & ~on_y)
        along_x = p[0] + h[0]
        along_z = p[2] + h[2]
        height = h[1] - p[1]
        u = np.where(on_x, along_z, along_x) * g[15] + g[17]
        v = np.where(on_y, along_z, height) * g[16] + g[18]
        d_axis = np.where(on_x, d_loc[0], np.where(on_y, d_loc[1], d_loc[2]))
        p_axis = np.where(on_x, p[0], np.where(on_y, p[1], p[2]))
        norm = self.ray_norm[idx]
        cos_inc = np.clip(np.abs(d_axis) / norm, 0.02, 1.0)
        footprint = t * norm / (float(self.K[0, 0]) * np.sqrt(cos_inc)) * (0.5 * (g[15] + g[16]))
        atlas = boxes.atlas[box, on_y.astype(np.int64)]
        packed = self.atlases.boxes
        col = packed.sample(atlas, u, v, self._lod(footprint, packed.texel[atlas]))
        # Lambertian sun: one shade per face (axis, sign), from the face normal in the world only
        facing = np.einsum("nia,i->na", R_wb, self.world.sun)  # (N, 3): + face normal . sun
        shade = 0.6 + 0.4 * np.maximum(0.0, np.concatenate([-facing, facing], axis=1))  # (N, 6)
        tint = boxes.tint[:, [0, 1, 0, 0, 1, 0]]  # faces -x, -y, -z, +x, +y, +z: sides / top tints
        factor = (tint * shade[..., None]).astype(np.float32).reshape(n * 6, 3)
        face = axis + 3 * (p_axis > 0)
        if return_face:
            return col * np.take(factor, box * 6 + face, axis=0), face
        return col * np.take(factor, box * 6 + face, axis=0)
