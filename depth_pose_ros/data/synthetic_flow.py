"""Ground-truth optical flow, occlusion and moving-object masks of the synthetic world.

Flow of a pixel = where its 3D point lands in the other frame, minus where it is now. The point is
the rendered hit ``depth * K^-1 [u, v, 1]`` in the current camera; a static point is carried to the
other camera by ``T_other_cur = inv(T_world_other) @ T_world_cur``, a point of moving object k by
``inv(T_world_other) @ T_world_obj(other) @ inv(T_world_obj(cur)) @ T_world_cur`` (it rides with the
object), and a sky pixel (infinitely far) by the rotation only. The geometry is done in float64 in
camera-relative coordinates, so on static pixels the result is what any independent implementation
of "back-project with the GT depth, transform with the relative GT pose, project" gives, to float
rounding (the brief asks for < 0.01 px).

Occlusion (forward): a pixel is occluded in the next frame when its point leaves the image (outside
the pixel-centre rectangle [0, W-1] x [0, H-1]), goes behind the camera, or lies farther than the
surface the next frame sees there. The last test compares inverse depths: the next frame's inverse
depth is bilinearly interpolated at the landing position (exact for planes, whose inverse depth is
affine in the image), and the point counts as hidden when its own inverse depth is smaller by more
than ``rel_tol``. Mixed neighbourhoods at depth edges raise the interpolated value, so points just
behind an occluding edge are flagged: the mask errs on the occluded side.
"""
from __future__ import annotations

import cv2
import numpy as np

from depth_pose_ros.data.synthetic_render import SKY, View
from depth_pose_ros.data.synthetic_scene import SyntheticWorld

NEAR = 1e-3  # points closer than this to the other camera's plane are "behind" it


def group_map(world: SyntheticWorld, view: View) -> np.ndarray:
    """HxW int32 motion group per pixel: -1 for the static world and sky, k for moving object k."""
    obj = np.concatenate([world.boxes.obj, np.array([-1, -1], np.int32)])
    return obj[view.surface]  # GROUND (-1) and SKY (-2) index the two appended -1 entries


def point_transforms(world: SyntheticWorld, frame: int, other: int) -> list[np.ndarray]:
    """4x4 maps from camera ``frame`` to camera ``other``: [static world, moving object 0, 1, ...].

    Entry 0 is ``T_other_cur = inv(T_world_other) @ T_world_cur`` (a relative camera pose); entry
    k+1 also applies object k's own motion between the two frames.
    """
    T_wc = world.camera_pose(frame)
    T_ow = np.linalg.inv(world.camera_pose(other))
    out = [T_ow @ T_wc]
    for k in range(len(world.moving)):
        motion = world.object_pose(k, other) @ np.linalg.inv(world.object_pose(k, frame))
        out.append(T_ow @ motion @ T_wc)
    return out


def flow_to(view: View, groups: np.ndarray, transforms: list[np.ndarray], K: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(flow HxWx2 float32, z_other HxW float32) of every pixel of ``view`` into the other frame.

    ``groups`` from :func:`group_map`, ``transforms`` from :func:`point_transforms`. ``z_other`` is
    the point's depth in the other camera: 0 for sky, -1 for points behind the other camera (those
    are projected with their depth clamped to NEAR, far outside the image; the occlusion test flags
    them).

    The static part uses the separable form ``R (depth r) + t = depth (R r) + t`` with
    ``r = ((u - cx) / fx, (v - cy) / fy, 1)``, so ``R r`` is an outer sum of a row and a column
    vector; float32 keeps the error below 1e-3 px for depths up to the render range.
    """
    H, W = view.depth.shape
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    rx = ((np.arange(W) - cx) / fx).astype(np.float32)[None, :]
    ry = ((np.arange(H) - cy) / fy).astype(np.float32)[:, None]
    sky = view.surface == SKY
    scale = np.where(sky, np.float32(1.0), view.depth)  # sky pixels carry their ray direction
    solid = (~sky).astype(np.float32)
    T = transforms[0].astype(np.float32)
    moved = [scale * (T[i, 0] * rx + T[i, 1] * ry + T[i, 2]) + T[i, 3] * solid for i in range(3)]
    on_moving = np.flatnonzero(groups >= 0)  # usually a small fraction of the image
    for k in range(1, len(transforms)):
        flat = on_moving[groups.reshape(-1)[on_moving] == k - 1]
        if flat.size:
            rows, cols = np.divmod(flat, W)
            z = view.depth.reshape(-1)[flat].astype(np.float64)
            pts = np.stack([rx[0, cols] * z, ry[rows, 0] * z, z])
            pk = transforms[k][:3, :3] @ pts + transforms[k][:3, 3:4]
            for i in range(3):
                moved[i].reshape(-1)[flat] = pk[i]
    z = np.maximum(moved[2], np.float32(NEAR))
    flow = np.empty((H, W, 2), np.float32)
    flow[..., 0] = np.float32(fx) * (moved[0] / z - rx)
    flow[..., 1] = np.float32(fy) * (moved[1] / z - ry)
    z_other = np.where(sky, np.float32(0.0), moved[2])
    z_other[moved[2] < NEAR] = -1.0  # behind the other camera (a sky direction turned backwards too)
    return flow, z_other


def occlusion_from_flow(flow: np.ndarray, z_other: np.ndarray, depth_other: np.ndarray,
                        rel_tol: float = 0.03) -> np.ndarray:
    """HxW bool: the pixel's point is not visible in the other frame (out of view, behind, hidden).

    ``z_other``: the point's depth in the other camera (0 = sky, < 0 = behind, from :func:`flow_to`);
    ``depth_other``: that frame's rendered depth (0 = sky).
    """
    H, W = z_other.shape
    xs = np.arange(W, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(H, dtype=np.float32)[:, None] + flow[..., 1]
    out = (xs < 0) | (xs > W - 1) | (ys < 0) | (ys > H - 1) | (z_other < 0)
    inv_other = np.where(depth_other > 0, 1.0 / np.maximum(depth_other, 1e-6), 0.0).astype(np.float32)
    inv_seen = cv2.remap(inv_other, np.clip(xs, 0, W - 1), np.clip(ys, 0, H - 1), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    with np.errstate(divide="ignore"):
        inv_point = np.where(z_other > 0, 1.0 / np.maximum(z_other, 1e-6), 0.0)
    hidden = inv_point < inv_seen * (1.0 - rel_tol) - 1e-5
    return out | hidden
