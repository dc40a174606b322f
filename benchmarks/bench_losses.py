"""Timing of every loss (forward + backward) at a training resolution; not a test (run by hand).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_losses.py --batch 4 --height 192 --width 640
"""
from __future__ import annotations

import argparse
import time

import torch

from depth_pose_ros.geometry.se3 import pose_vec_to_mat
from depth_pose_ros.geometry.warp import rigid_flow, warp_by_flow, warp_rigid
from depth_pose_ros.losses import (
    adaptive_cross_weighted_loss,
    depth_reprojection_loss,
    edge_aware_smoothness,
    epipolar_error_map,
    epipolar_loss,
    fb_consistency_loss,
    flow_photometric_loss,
    flow_smoothness,
    icp_loss,
    min_reprojection_loss,
    multiscale_reprojection_loss,
    multiview_structure_loss,
    occlusion_aware_flow_loss,
    photometric_error,
    rigid_flow_consistency_loss,
)
from depth_pose_ros.losses.photometric import SSIM_C1, SSIM_C2, ssim


def ssim_avg_pool_reference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM with ``F.avg_pool2d`` box means: the form the shipped :func:`ssim` replaced, kept here as the
    same-run reference of its speed."""
    pool = torch.nn.functional.avg_pool2d
    xp = torch.nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    yp = torch.nn.functional.pad(y, (1, 1, 1, 1), mode="reflect")
    mu_x, mu_y = pool(xp, 3, 1), pool(yp, 3, 1)
    sigma_x = pool(xp * xp, 3, 1) - mu_x * mu_x
    sigma_y = pool(yp * yp, 3, 1) - mu_y * mu_y
    sigma_xy = pool(xp * yp, 3, 1) - mu_x * mu_y
    num = (2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * sigma_xy + SSIM_C2)
    den = (mu_x * mu_x + mu_y * mu_y + SSIM_C1) * (sigma_x + sigma_y + SSIM_C2)
    return (num / den).clamp(-1.0, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    dev = torch.device(args.device)
    b, h, w = args.batch, args.height, args.width
    g = torch.Generator().manual_seed(0)
    img = [torch.rand(b, 3, h, w, generator=g).to(dev) for _ in range(3)]
    depth = (2.0 + 20.0 * torch.rand(b, 1, h, w, generator=g)).to(dev).requires_grad_(True)
    depth_s = (2.0 + 20.0 * torch.rand(b, 1, h, w, generator=g)).to(dev).requires_grad_(True)
    flow = (2.0 * torch.randn(b, 2, h, w, generator=g)).to(dev).requires_grad_(True)
    flow_bw = (2.0 * torch.randn(b, 2, h, w, generator=g)).to(dev).requires_grad_(True)
    image_g = img[0].clone().requires_grad_(True)
    vec = torch.tensor([[0.01, -0.02, 0.005]] * b, device=dev, requires_grad=True)
    trans = torch.tensor([[0.1, -0.05, -0.8]] * b, device=dev)

    def pose() -> torch.Tensor:  # rebuilt per call so each backward has its own graph
        return pose_vec_to_mat(vec, trans)
    K = torch.tensor([[0.58 * w, 0, (w - 1) / 2], [0, 1.92 * h, (h - 1) / 2], [0, 0, 1.0]], device=dev)
    K = K.expand(b, 3, 3)

    def rigid_warp_loss():
        warped, valid = warp_rigid(img[1], depth, pose(), K)
        return min_reprojection_loss(img[0], [warped], valid=[valid], sources=[img[1]])

    def cross_weighted():
        T = pose()
        rf, _ = rigid_flow(depth, T, K)
        wr, vr = warp_by_flow(img[1], rf)
        wf, vf = warp_by_flow(img[1], flow)
        lo, ld = photometric_error(wf, img[0]), photometric_error(wr, img[0])
        return adaptive_cross_weighted_loss(lo, ld, epipolar_error_map(flow, T, K), epipolar_error_map(rf, T, K),
                                            valid=vr * vf)

    cases = {
        "ssim (separable box mean, shipped)": lambda: ssim(image_g, img[1]).mean(),
        "ssim (avg_pool2d reference)": lambda: ssim_avg_pool_reference(image_g, img[1]).mean(),
        "min_reprojection (1 source, automask, incl. rigid warp)": rigid_warp_loss,
        "multiscale_reprojection (4 scales, 2 sources)": lambda: multiscale_reprojection_loss(
            img[0], [img[1], img[2]],
            [torch.nn.functional.avg_pool2d(depth, 2**k) for k in range(4)], [pose(), pose()], K)[0],
        "edge_aware_smoothness": lambda: edge_aware_smoothness(1.0 / depth, img[0]),
        "flow_smoothness order 2": lambda: flow_smoothness(flow, img[0], order=2),
        "flow_photometric_loss": lambda: flow_photometric_loss(img[0], img[1], flow),
        "fb_consistency_loss": lambda: fb_consistency_loss(flow, flow_bw),
        "occlusion_aware_flow_loss (eq. 1-3)": lambda: occlusion_aware_flow_loss(
            img[0], img[1], img[2], flow, flow_bw, -flow, -flow_bw),
        "adaptive_cross_weighted_loss (eq. 5-7, incl. warps)": cross_weighted,
        "epipolar_loss": lambda: epipolar_loss(flow, pose(), K),
        "multiview_structure_loss": lambda: multiview_structure_loss(depth, depth_s, flow, pose(), K),
        "depth_reprojection_loss": lambda: depth_reprojection_loss(depth, depth_s, pose(), K),
        "rigid_flow_consistency_loss (incl. rigid_flow)": lambda: rigid_flow_consistency_loss(
            rigid_flow(depth, pose(), K)[0], flow),
        "icp_loss projective (5 it)": lambda: icp_loss(depth, depth_s, pose(), K),
        "icp_loss nearest 1024 pts (5 it)": lambda: icp_loss(depth, depth_s, pose(), K, association="nearest"),
    }
    print(f"batch {b}, {h}x{w}, device {dev}, threads {torch.get_num_threads()}, "
          f"min and median of {args.repeats} (forward + backward)")
    best: dict[str, float] = {}
    for name, fn in cases.items():
        times = []
        for _ in range(args.repeats + 1):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            loss = fn()
            loss.backward()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
            for p in (depth, depth_s, flow, flow_bw, vec, image_g):
                p.grad = None
        times = sorted(times[1:])
        best[name] = times[0]
        print(f"  {name:55s} min {1000 * times[0]:8.1f} ms   median {1000 * times[len(times) // 2]:8.1f} ms")
    print(f"ssim shipped / avg_pool2d reference (min times, same run): "
          f"{best['ssim (separable box mean, shipped)'] / best['ssim (avg_pool2d reference)']:.2f}")


if __name__ == "__main__":
    main()
