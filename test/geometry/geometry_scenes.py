"""A tiny exact ray-caster for geometry tests: a street of axis-aligned rectangles.

Gives, for any camera pose, the exact depth map, a smooth procedural texture image and (through the
project's own ``rigid_flow``) exact forward / backward flow with real occlusions at box edges, so the
two-view module can be tested against known poses without the (separately developed) synthetic
world. World frame = camera optical convention: x right, y down (the ground is at y = +1.5), z forward.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from depth_pose_ros.geometry.se3 import axis_angle_to_matrix_np, invert_np, make_pose_np
from depth_pose_ros.geometry.warp import rigid_flow


@dataclass(frozen=True)
class Rect:
    """Rectangle on the plane ``X[axis] = value``, bounded on the two other axes by lo / hi."""

    axis: int
    value: float
    lo: tuple[float, float]
    hi: tuple[float, float]


STREET = (
    Rect(1, 1.5, (-8.0, -50.0), (8.0, 300.0)),  # ground (y = 1.5 below the camera)
    Rect(0, -7.0, (-12.0, -50.0), (1.5, 300.0)),  # left facade
    Rect(0, 7.0, (-12.0, -50.0), (1.5, 300.0)),  # right facade
    Rect(2, 90.0, (-8.0, -12.0), (8.0, 1.5)),  # far wall
    Rect(2, 12.0, (-3.0, -1.0), (-1.0, 1.5)),  # box front (occludes the street behind it)
    Rect(0, -1.0, (-1.0, 12.0), (1.5, 16.0)),  # that box's right side
    Rect(2, 20.0, (1.5, -2.0), (4.0, 1.5)),  # second box front
)


def camera_rays(K: np.ndarray, h: int, w: int) -> np.ndarray:
    """HxWx3 rays ``K^-1 [x, y, 1]`` (z = 1) of every pixel centre."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    pix = np.stack((xs, ys, np.ones_like(xs)), axis=-1)
    return pix @ np.linalg.inv(K).T


def render_depth(K: np.ndarray, T_world_cam: np.ndarray, h: int, w: int,
                 rects=STREET) -> tuple[np.ndarray, np.ndarray]:
    """(depth HxW, 0 where no surface; world points HxWx3, NaN where none) by exact ray casting."""
    rays_cam = camera_rays(K, h, w)
    R, C = T_world_cam[:3, :3], T_world_cam[:3, 3]
    rays = rays_cam @ R.T
    best = np.full((h, w), np.inf)
    for rect in rects:
        a = rect.axis
        others = [i for i in range(3) if i != a]
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (rect.value - C[a]) / rays[..., a]
        X = C + s[..., None] * rays
        inside = (s > 1e-6) & np.isfinite(s)
        for k, i in enumerate(others):
            inside &= (X[..., i] >= rect.lo[k]) & (X[..., i] <= rect.hi[k])
        best = np.where(inside & (s < best), s, best)
    hit = np.isfinite(best)
    depth = np.where(hit, best, 0.0)  # rays have z = 1 in the camera, so the ray parameter is depth
    points = np.where(hit[..., None], C + best[..., None] * rays, np.nan)
    return depth, points


def texture(points: np.ndarray) -> np.ndarray:
    """Smooth, non-periodic-looking procedural intensity in [0, 1] of world points (NaN -> 0.5)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    v = (0.5 + 0.18 * np.sin(1.7 * x + 0.3 * z) + 0.14 * np.cos(1.3 * z - 0.9 * y)
         + 0.12 * np.sin(2.3 * y + 0.7 * x + 0.4 * z) + 0.06 * np.cos(0.31 * z * x))
    return np.clip(np.nan_to_num(v, nan=0.5), 0.0, 1.0)


def random_motion(rng: np.random.Generator, forward: float = 1.0, rot_deg: float = 2.0,
                  lateral: float = 0.15) -> np.ndarray:
    """A car-like ``T_world_cam2`` relative to camera 1 = identity: mostly forward, small rotation."""
    w = np.deg2rad(rng.uniform(-1, 1, 3) * np.array([0.3, 1.0, 0.2]) * rot_deg)
    t = np.array([rng.uniform(-lateral, lateral), rng.uniform(-0.05, 0.05), forward * rng.uniform(0.7, 1.3)])
    return make_pose_np(axis_angle_to_matrix_np(w), t)


def exact_flows(K: np.ndarray, T_world_1: np.ndarray, T_world_2: np.ndarray, h: int, w: int):
    """Exact (flow_fw, flow_bw, depth1, depth2, T_2_1) for two cameras in the street.

    Flows are HxWx2 float32, NaN where the pixel sees no surface; ``T_2_1`` maps camera-1 points
    into camera 2. Forward flow is ``rigid_flow(depth1, T_2_1)`` (the function under test elsewhere;
    its own correctness is checked against hand-computed cases in test_geometry_warp.py).
    """
    depth1, _ = render_depth(K, T_world_1, h, w)
    depth2, _ = render_depth(K, T_world_2, h, w)
    T_2_1 = invert_np(T_world_2) @ T_world_1
    flows = []
    for depth, T in ((depth1, T_2_1), (depth2, invert_np(T_2_1))):
        d = torch.from_numpy(depth)[None, None]
        flow, _ = rigid_flow(d, torch.from_numpy(T)[None], torch.from_numpy(K)[None])
        f = flow[0].permute(1, 2, 0).numpy().astype(np.float32)
        f[depth <= 0] = np.nan
        flows.append(f)
    return flows[0], flows[1], depth1, depth2, T_2_1


def street_pair(seed: int, h: int = 160, w: int = 384, forward: float = 1.0):
    """K, flows, depths and the GT ``T_2_1`` of one random street pair (small image for fast tests)."""
    rng = np.random.default_rng(seed)
    K = np.array([[0.8 * w, 0.0, (w - 1) / 2.0], [0.0, 0.8 * w, 0.45 * (h - 1)], [0.0, 0.0, 1.0]])
    T1 = make_pose_np(axis_angle_to_matrix_np(np.deg2rad(rng.uniform(-2, 2, 3))), [0.0, 0.0, rng.uniform(0, 5)])
    T2 = T1 @ random_motion(rng, forward=forward)
    fw, bw, d1, d2, T_2_1 = exact_flows(K, T1, T2, h, w)
    return K, fw, bw, d1, d2, T_2_1, T1, T2
