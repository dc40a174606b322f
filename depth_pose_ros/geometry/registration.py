"""Depth at the network size -> depth registered to the camera image (same size, same K). Plain numpy / cv2.

Why: consumers of a depth image (depth_image_proc, rviz, an obstacle layer) pair it with the camera
image pixel for pixel and take the intrinsics from ``depth/camera_info``; a 192x64 depth with a scaled,
aspect-distorted K is a trap for them. The network image is a resize (possibly with a crop or pad) of
the (undistorted) camera image, so network and camera pixels are related by the affine map
``K_net @ inv(K_cam)``; :func:`register_depth` samples the network depth through that map.

Upsampling is *edge-aware*: inside smooth regions the inverse depth is interpolated bilinearly (no
blocks on the road), but wherever the 3x3 neighbourhood of the nearest network pixel spans a depth jump
(largest / smallest depth above ``edge_ratio``) or holds an unknown (0) value, the nearest network pixel
is taken as it is. A foreground edge therefore never gets the "flying" in-between depths that a plain
bilinear resize invents, which in a point cloud are points floating between object and background.
Camera pixels that fall outside the network image (a crop) are 0, "unknown" (REP 118 in this project).
"""
from __future__ import annotations

import cv2
import numpy as np

#: Largest / smallest depth of a 3x3 network neighbourhood above which it counts as a depth edge.
EDGE_RATIO = 1.1


def network_to_camera_map(K_net: np.ndarray, K_cam: np.ndarray) -> np.ndarray:
    """2x3 affine map from camera pixels to network pixels (``cv2.warpAffine`` with ``WARP_INVERSE_MAP``).

    Both intrinsics are of the same pinhole camera (the network image is a scaled, shifted view of the
    camera image), so ``K_net @ inv(K_cam)`` is affine and exact, including the pixel-centre convention
    of the resize that produced ``K_net``.
    """
    K_net = np.asarray(K_net, dtype=np.float64)
    K_cam = np.asarray(K_cam, dtype=np.float64)
    if K_net.shape != (3, 3) or K_cam.shape != (3, 3):
        raise ValueError(f"K_net, K_cam: expected 3x3 matrices, got {K_net.shape} and {K_cam.shape}")
    return (K_net @ np.linalg.inv(K_cam))[:2]


def register_depth(depth: np.ndarray, K_net: np.ndarray, K_cam: np.ndarray, size: tuple[int, int],
                   edge_ratio: float = EDGE_RATIO) -> np.ndarray:
    """Network-size depth (HxW float32 metres, 0 = unknown) -> depth of the camera image.

    Args:
        depth: depth at the network size; its intrinsics are ``K_net``.
        K_net: 3x3 intrinsics of ``depth``.
        K_cam: 3x3 intrinsics of the camera image the depth is registered to.
        size: (height, width) of the camera image.
        edge_ratio: neighbourhoods whose largest / smallest depth exceeds this are not interpolated.
    Returns:
        (height, width) float32, 0 where unknown; every value is a network depth or an interpolation
        between neighbours that differ by less than ``edge_ratio``.
    """
    d = np.ascontiguousarray(depth, dtype=np.float32)
    if d.ndim != 2:
        raise ValueError(f"depth: expected an HxW array, got shape {d.shape}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"size: must be positive, got {size}")
    if not edge_ratio > 1.0:
        raise ValueError(f"edge_ratio: must be > 1, got {edge_ratio}")
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0).astype(np.float32)
    M = network_to_camera_map(K_net, K_cam)
    kernel = np.ones((3, 3), np.uint8)
    d_max = cv2.dilate(d, kernel, borderType=cv2.BORDER_REPLICATE)
    d_min = cv2.erode(d, kernel, borderType=cv2.BORDER_REPLICATE)
    smooth = (d_min > 0) & (d_max <= edge_ratio * d_min)
    # One nearest warp carries both the depth and whether its neighbourhood is smooth (the sign), so the
    # camera-size work is two warps and two element-wise passes.
    signed = np.where(smooth, d, -d)
    nearest = cv2.warpAffine(signed, M, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_NEAREST,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    inverse = np.zeros_like(d)
    np.divide(1.0, d, out=inverse, where=d > 0)
    inverse_up = cv2.warpAffine(inverse, M, (w, h), flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE)
    out = np.abs(nearest)
    # positive = smooth: all 3x3 neighbours known, so the interpolated inverse depth is > 0 there
    np.divide(1.0, inverse_up, out=out, where=nearest > 0)
    return out
