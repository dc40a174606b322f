"""Accuracy numbers of the geometric losses on the shared real data; not a test (run by hand).

    OMP_NUM_THREADS=1 .venv/bin/python test/losses/measure_losses_real.py

Prints (1) the median Sampson distance of DIS flow on KITTI odometry 06 frames 10->11 (half resolution)
under the GT pose and under rotation-perturbed poses, and the flow photometric loss with / without the
flow; (2) projective ICP on the TUM fr1_xyz pairs (GT Kinect depth, 4x subsampled): recovered motion vs
motion capture, and icp_loss at the GT motion vs at zero motion.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from depth_pose_ros.data.kitti_odometry import KittiOdometry
from depth_pose_ros.data.tum import TumRgbd
from depth_pose_ros.geometry.camera import scale_intrinsics
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.se3 import axis_angle_to_matrix_np
from depth_pose_ros.losses import (
    epipolar_error_map,
    flow_occlusion_mask,
    flow_photometric_loss,
    icp_depth_maps,
    icp_loss,
)
from depth_pose_ros.utils.paths import data_root


def _angle_deg(R: np.ndarray) -> float:
    return float(np.rad2deg(np.linalg.norm(cv2.Rodrigues(R)[0])))


def kitti_epipolar() -> None:
    seq = KittiOdometry(data_root() / "kitti_odometry", sequence="06", frames=[10, 11])
    t, s = seq[0], seq[1]
    size = (t.width // 2, t.height // 2)
    img_t = cv2.resize(t.image, size, interpolation=cv2.INTER_AREA)
    img_s = cv2.resize(s.image, size, interpolation=cv2.INTER_AREA)
    K = torch.from_numpy(scale_intrinsics(t.K, 0.5, 0.5)).float()[None]
    T = np.linalg.inv(s.T_world_cam) @ t.T_world_cam
    fw = torch.from_numpy(dis_flow(img_t, img_s)).permute(2, 0, 1)[None]
    bw = torch.from_numpy(dis_flow(img_s, img_t)).permute(2, 0, 1)[None]
    mask = flow_occlusion_mask(fw, bw, method="fb")
    print(f"KITTI 06 10->11, {size[0]}x{size[1]}, DIS medium; GT motion |t| = {np.linalg.norm(T[:3, 3]):.3f} m, "
          f"rotation {_angle_deg(T[:3, :3]):.3f} deg; fb-consistent pixels {mask.mean().item():.1%}")
    for deg in (0.0, 0.1, 0.25, 0.5, 1.0):
        Tp = T.copy()
        Tp[:3, :3] = axis_angle_to_matrix_np(np.array([0.0, np.deg2rad(deg), 0.0])) @ Tp[:3, :3]
        d = epipolar_error_map(fw, torch.from_numpy(Tp).float()[None], K)[mask > 0]
        print(f"  pose rotated by {deg:4.2f} deg about y: median Sampson distance {d.median().item():.3f} px")

    def image(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).float()[None, None] / 255.0

    both = flow_occlusion_mask(fw, bw, method="both")
    with_flow = flow_photometric_loss(image(img_t), image(img_s), fw, both).item()
    no_flow = flow_photometric_loss(image(img_t), image(img_s), torch.zeros_like(fw), both).item()
    print(f"  flow_photometric_loss (SSIM+L1, non-occluded): DIS flow {with_flow:.4f}, zero flow {no_flow:.4f}")


def tum_icp() -> None:
    for case in ("case_1", "case_2"):
        src = TumRgbd(data_root() / "tum_fr1_xyz_pairs" / case)
        prev, curr = src[0], src[1]
        T = np.linalg.inv(curr.T_world_cam) @ prev.T_world_cam
        for step in (4, 2):
            K = prev.K.copy()
            K[:2] /= step
            Kt = torch.from_numpy(K).float()[None]
            d_t = torch.from_numpy(np.ascontiguousarray(prev.depth[::step, ::step])).float()[None, None]
            d_s = torch.from_numpy(np.ascontiguousarray(curr.depth[::step, ::step])).float()[None, None]
            vt, vs = (d_t > 0).float(), (d_s > 0).float()
            for iterations in (5, 10):
                res = icp_depth_maps(d_t, d_s, torch.eye(4)[None], Kt, vt, vs, iterations=iterations)
                Te = res.transform[0].double().numpy()
                used = res.valid.mean().item()
                print(f"TUM {case} {d_t.shape[-1]}x{d_t.shape[-2]} ICP {iterations:2d} it: GT |t| "
                      f"{1000 * np.linalg.norm(T[:3, 3]):.1f} mm rot {_angle_deg(T[:3, :3]):.2f} deg -> "
                      f"t err {1000 * np.linalg.norm(Te[:3, 3] - T[:3, 3]):.1f} mm, "
                      f"rot err {_angle_deg(Te[:3, :3] @ T[:3, :3].T):.3f} deg, pairs used {used:.0%}")
            at_gt = icp_loss(d_t, d_s, torch.from_numpy(T).float()[None], Kt, vt, vs).item()
            at_zero = icp_loss(d_t, d_s, torch.eye(4)[None], Kt, vt, vs).item()
            print(f"  icp_loss at GT motion {at_gt:.5f}, at zero motion {at_zero:.5f}")


if __name__ == "__main__":
    torch.manual_seed(0)
    kitti_epipolar()
    tum_icp()
