#!/usr/bin/env python3
"""Frames lost between a camera and depth_pose_node, per QoS pairing and DDS transport.

A camera driver publishes ``--frames`` colour images (``--encoding``, ``--size``) at ``--rate`` Hz with their
camera_info; this process plays the camera (images and camera_info from one thread, in that order, as
drivers do; each message built before the loop so publishing is all the loop does), ``depth_pose_node`` runs
in a child process with ``config/default.yaml`` and the shipped model (``--set`` adds node parameters). For
every pairing of the camera's image / camera_info reliability (best effort / reliable) and each ``--transports``
setting of Fast DDS (``default``: shared memory + UDP as installed; ``large_data``: the
``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` builtin), the node's ``/diagnostics`` totals say how many frames it
received, processed, dropped (slower than the camera) and skipped (with the reasons).

    .venv/bin/python benchmarks/bench_node_qos.py --frames 100 --rate 10
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test" / "ros"))  # ros_harness


def run_pairing(image_reliable: bool, info_reliable: bool, transports: str, opts, log_dir: Path) -> dict[str, str]:
    """One node (or, with ``--listener``, a plain image-counting subscriber matching the camera's
    reliability), one camera run; returns the node's last diagnostics values (totals)."""
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from ros_harness import (
        ISOLATION_KEYS,
        BackgroundSpin,
        isolated_ros_env,
        panning_frames,
        play_camera,
        ros_context,
        spin_until,
        start_child,
    )
    from sensor_msgs.msg import CameraInfo, Image

    from depth_pose_ros.ros.qos import reliable_qos, sensor_data_qos

    env = isolated_ros_env(log_dir, large_data=False)
    if transports != "default":
        env["FASTDDS_BUILTIN_TRANSPORTS"] = transports
    for key in ISOLATION_KEYS:
        if key in env:
            os.environ[key] = env[key]
        else:
            os.environ.pop(key, None)
    args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
            str(REPO / "config" / "default.yaml"), "-p", "diagnostics.period_s:=0.5"]
    for p in opts.set:
        args += ["-p", p]
    h, w = opts.size
    frames = panning_frames(opts.frames, h, w)
    K = np.array([[0.8 * w, 0, w / 2], [0, 0.8 * w, h / 2], [0, 0, 1.0]])
    if opts.listener:
        args = ["-m", "ros_harness", "count_listener", "--topic", "/image"] + (["--reliable"] if image_reliable else [])
    with start_child(args, env, log_dir / "node.log") as proc, ros_context() as context:
        node = Node("qos_camera", context=context)
        image_pub = node.create_publisher(Image, "/image", reliable_qos() if image_reliable else sensor_data_qos())
        info_pub = node.create_publisher(CameraInfo, "/camera_info",
                                         reliable_qos() if info_reliable else sensor_data_qos())
        diags: list[dict[str, str]] = []
        node.create_subscription(DiagnosticArray, "/diagnostics",
                                 lambda m: diags.append({kv.key: kv.value for kv in m.status[0].values}),
                                 reliable_qos(50))
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        ok = spin_until(executor, lambda: image_pub.get_subscription_count() > 0 and (
            opts.listener or (info_pub.get_subscription_count() > 0 and diags)), 120.0, children=[proc])
        if not ok:
            raise RuntimeError(f"node did not come up:\n{proc.output()}")
        spin_until(executor, lambda: False, 1.0)  # discovery settles (both directions)
        spin_until(executor, lambda: False, 1.5)  # qos auto re-matches within a second
        with BackgroundSpin(executor):
            play_camera(image_pub, info_pub, frames, K, opts.rate, opts.encoding)
            time.sleep(3.0)  # the last frame processed and one diagnostics window after it
        if opts.listener:
            proc.stop()
            counted = [line for line in proc.output().splitlines() if line.startswith("received ")]
            node.destroy_node()
            return {"total_received": counted[-1].split()[1] if counted else "?", "total_processed": "-"}
        last = dict(diags[-1]) if diags else {}
        worst = [float(d[k]) for d in diags for k in ("pair_ms_max",) if d.get(k, "n/a") != "n/a"]
        totals = [float(d["total_ms_mean"]) for d in diags if d.get("total_ms_mean", "n/a") != "n/a"]
        last["worst_pair_ms"] = f"{max(worst):.0f}" if worst else "n/a"
        last["mean_total_ms"] = f"{np.mean(totals):.0f}" if totals else "n/a"
        node.destroy_node()
    return last


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--size", type=int, nargs=2, default=[480, 640], metavar=("H", "W"))
    ap.add_argument("--encoding", default="bgr8", choices=["bgr8", "rgb8"])
    ap.add_argument("--transports", nargs="+", default=["default", "LARGE_DATA"],
                    help="FASTDDS_BUILTIN_TRANSPORTS values (default: unset), e.g. LARGE_DATA UDPv4 SHM")
    ap.add_argument("--pairings", nargs="+", default=["be/be", "be/rel", "rel/be", "rel/rel"],
                    help="image/camera_info reliability of the camera: be (best effort) or rel (reliable)")
    ap.add_argument("--listener", action="store_true",
                    help="a plain counting subscriber instead of the node: what DDS alone delivers")
    ap.add_argument("--set", action="append", default=[], metavar="NAME:=VALUE", help="node parameter")
    opts = ap.parse_args()
    print(f"{opts.frames} {opts.encoding} {opts.size[1]}x{opts.size[0]} frames at {opts.rate:g} Hz; "
          f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          + ("plain counting listener" if opts.listener else f"node params {opts.set or 'default'}"))
    print("| transports | camera image / camera_info | received | processed | dropped | skipped (reasons) | "
          "receive -> processed, mean ms | decode + camera_info pairing, worst ms |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for transports in opts.transports:
            for k, pairing in enumerate(opts.pairings):
                img, info = pairing.split("/")
                d = run_pairing(img == "rel", info == "rel", transports, opts, Path(tmp) / f"{transports}_{k}")
                skipped = ", ".join(f"{key[8:]} {v}" for key, v in d.items() if key.startswith("skipped_"))
                print(f"| {transports} | {pairing} | {d.get('total_received', '0')} | "
                      f"{d.get('total_processed', '0')} | "
                      f"{d.get('total_dropped', '0')} | {d.get('total_skipped', '0')} ({skipped}) | "
                      f"{d.get('mean_total_ms', '?')} | {d.get('worst_pair_ms', '?')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
