"""Tiny exactly-known scenes for the loss tests (not a test module itself).

A fronto-parallel plane at depth Z seen by a camera translating by tx along x moves every pixel by
exactly f * tx / Z pixels; choosing that to be an integer makes bilinear warping exact, so warping
losses must come out exactly 0 with the true depth/pose/flow and a hand-computable value otherwise.
"""
from __future__ import annotations

import torch

H, W = 12, 16
F_PX = 20.0
Z = 5.0
TX = 0.5  # metres -> flow of F_PX * TX / Z = 2 px
SHIFT = 2


def intrinsics(batch: int = 1) -> torch.Tensor:
    K = torch.tensor([[F_PX, 0.0, (W - 1) / 2], [0.0, F_PX, (H - 1) / 2], [0.0, 0.0, 1.0]])
    return K.expand(batch, 3, 3).clone()


def translation(tx: float = 0.0, ty: float = 0.0, tz: float = 0.0, batch: int = 1) -> torch.Tensor:
    """Bx4x4 T_source_target that maps target points X to X + (tx, ty, tz)."""
    T = torch.eye(4).repeat(batch, 1, 1)
    T[:, 0, 3], T[:, 1, 3], T[:, 2, 3] = tx, ty, tz
    return T


def plane_depth(z: float = Z, batch: int = 1) -> torch.Tensor:
    return torch.full((batch, 1, H, W), z)


def shifted_pair(seed: int = 0, batch: int = 1, channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """(target, source) with source(x + SHIFT, y) = target(x, y): flow_t_s = (SHIFT, 0) is exact.

    This is also the view of the plane at Z after the camera moved by -TX (T_s_t = translation(TX)).
    """
    g = torch.Generator().manual_seed(seed)
    big = torch.rand(batch, channels, H, W + SHIFT, generator=g)
    return big[..., SHIFT:].contiguous(), big[..., :W].contiguous()


def constant_flow(dx: float, dy: float, batch: int = 1) -> torch.Tensor:
    flow = torch.zeros(batch, 2, H, W)
    flow[:, 0], flow[:, 1] = dx, dy
    return flow


# A corridor (floor, ceiling, two walls, end wall) rendered exactly from any camera pose: the smallest
# scene where ICP must resolve all six degrees of freedom and meets grazing surfaces and depth edges.
CORRIDOR_PLANES = (((0.0, 1.0, 0.0), 1.5), ((0.0, -1.0, 0.0), 2.0), ((-1.0, 0.0, 0.0), 2.0),
                   ((1.0, 0.0, 0.0), 2.5), ((0.0, 0.0, 1.0), 12.0))


def corridor_intrinsics(h: int, w: int) -> torch.Tensor:
    f = 0.8 * w
    return torch.tensor([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])[None]


def render_corridor(T_cam_world: torch.Tensor, K: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """1x1xHxW depth of the corridor planes n.X = d (world frame) seen by the camera T_cam_world."""
    R, t = T_cam_world[0, :3, :3], T_cam_world[0, :3, 3]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    pix = torch.stack((xs.flatten(), ys.flatten(), torch.ones(h * w)))
    rays = torch.linalg.solve(K[0], pix)  # 3xN, z = 1
    depth = torch.full((h * w,), float("inf"))
    for n, d in CORRIDOR_PLANES:
        n_cam = R @ torch.tensor(n)
        d_cam = d + n_cam @ t  # plane n_cam . X_cam = d_cam
        denom = n_cam @ rays
        z = d_cam / denom
        hit = (denom > 1e-6) & (z > 0)
        depth = torch.where(hit, torch.minimum(depth, z), depth)
    return depth.reshape(1, 1, h, w)
