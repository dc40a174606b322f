"""``depth-pose run SOURCE``: the Estimator over any frame source, with files for every frame.

Writes into ``--out`` (NNNNNN is the frame's number in the recording, ``Frame.index``, so outputs stay
aligned with the input files when ``--frames`` selects a range or an unreadable frame is skipped):
``depth/NNNNNN.png`` (16-bit, millimetres, 0 = unknown) and/or ``depth/NNNNNN.npy``
(float32 metres), ``depth_color/``, ``flow_color/``, ``clouds/NNNNNN.ply`` (every ``--cloud-every``
frames, camera frame). Depth, its colour map and the clouds are what the ROS node publishes: with
``--output-size camera`` (the default) the depth registered to the (undistorted) camera image, its size
and K; with ``network`` the network's size and K. Also ``scene.ply`` (accumulated, world frame, from the
network-size depth), ``trajectory_tum.txt`` and
``trajectory_kitti.txt``, ``summary.png``, ``metrics.json`` (against ground truth when the source has
it, with ``skipped_frames``: the frames that could not be read and were left out) and, with
``--video``, ``panels.mp4``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from depth_pose_ros.pipeline.result import OUTPUT_SIZES
from depth_pose_ros.utils.json_output import jsonable as _jsonable


def write_run_outputs(run, out: Path, metrics: dict[str, Any], trajectory_formats=("tum", "kitti")) -> None:
    """Summary panel, metrics, accumulated cloud and trajectory files of a finished run."""
    import cv2
    import numpy as np

    from depth_pose_ros.data.trajectory_io import write_kitti_poses, write_tum_trajectory
    from depth_pose_ros.pipeline.runner import summary_image, write_ply

    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / "summary.png"), cv2.cvtColor(summary_image(run), cv2.COLOR_RGB2BGR))
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")
    if run.cloud_xyz:
        write_ply(out / "scene.ply", np.concatenate(run.cloud_xyz), np.concatenate(run.cloud_rgb))
    poses = np.stack(run.poses)
    if "tum" in trajectory_formats:
        write_tum_trajectory(out / "trajectory_tum.txt", np.asarray(run.stamps), poses)
    if "kitti" in trajectory_formats:
        write_kitti_poses(out / "trajectory_kitti.txt", poses)




def _intrinsics(text: str | None):
    """``fx,fy,cx,cy`` -> a 4-tuple; anything else (a YAML path) is passed on unchanged."""
    if text and "," in text:
        try:
            return tuple(float(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"--intrinsics {text!r}: expected fx,fy,cx,cy numbers or a YAML file") from None
    return text


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    from tqdm import tqdm

    from depth_pose_ros.data.source import open_source, skipped_records, skipped_summary
    from depth_pose_ros.geometry.camera import backproject_np
    from depth_pose_ros.pipeline.factory import build_estimator
    from depth_pose_ros.pipeline.result import output_depth
    from depth_pose_ros.pipeline.runner import flow_panel, run_sequence, summarize, write_ply
    from depth_pose_ros.utils.image import to_rgb_or_gray
    from depth_pose_ros.utils.viz import colorize_depth, flow_to_color

    estimator, weights = build_estimator(args.checkpoint, args.set)
    source = open_source(args.source, frames=args.frames, image_topic=args.image_topic, info_topic=args.info_topic,
                         K=_intrinsics(args.intrinsics), sequence=args.sequence)
    out = Path(args.out)
    formats = set(args.depth_format.split(","))
    unknown = formats - {"png", "npy", "none"}
    if unknown:
        raise ValueError(f"--depth-format: unknown {sorted(unknown)}; use png, npy or png,npy")
    for sub in ("depth", "depth_color", "flow_color", "clouds"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    video = None

    def on_result(frame, result) -> None:
        nonlocal video
        name = f"{frame.index:06d}"  # the input's frame number: stays aligned when a frame was skipped
        depth, K = output_depth(result, frame.K, frame.image.shape[:2], args.output_size)

        def image():  # the image the depth belongs to: the undistorted camera image, or the network's
            if args.output_size == "network":
                img = result.image
            else:
                img = estimator.undistort(to_rgb_or_gray(frame.image), frame.K, frame.distortion)
            return img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)

        if "png" in formats:
            mm = np.clip(np.round(depth * 1000.0), 0, 65535).astype(np.uint16)
            cv2.imwrite(str(out / "depth" / f"{name}.png"), mm)
        if "npy" in formats:
            np.save(out / "depth" / f"{name}.npy", depth)
        depth_rgb = colorize_depth(depth)
        cv2.imwrite(str(out / "depth_color" / f"{name}.png"), cv2.cvtColor(depth_rgb, cv2.COLOR_RGB2BGR))
        flow_rgb = flow_panel(result, depth_rgb.shape[:2])
        if result.flow is not None:
            cv2.imwrite(str(out / "flow_color" / f"{name}.png"),
                        cv2.cvtColor(flow_to_color(result.flow), cv2.COLOR_RGB2BGR))
        if args.cloud_every > 0 and frame.index % args.cloud_every == 0:
            xyz, rgb = backproject_np(depth, K, args.cloud_stride, max_depth=args.max_range, image=image())
            write_ply(out / "clouds" / f"{name}.ply", xyz, rgb)
        if args.video:
            panel = np.concatenate([image(), depth_rgb, flow_rgb], axis=0)
            if video is None:
                fourcc = cv2.VideoWriter.fourcc(*"mp4v")
                video = cv2.VideoWriter(str(out / "panels.mp4"), fourcc, source.fps or 10.0,
                                        (panel.shape[1], panel.shape[0]))
            video.write(cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))

    with tqdm(total=len(source), unit="frame", disable=args.quiet) as progress:
        result = run_sequence(source, estimator, on_result=on_result, progress=progress,
                              cloud_stride=args.cloud_stride, cloud_max_depth=args.max_range)
    if video is not None:
        video.release()
    metrics = summarize(result)
    metrics.update(source=str(args.source), model=weights, skipped_frames=skipped_records(source.skipped))
    write_run_outputs(result, out, metrics)
    print(json.dumps({k: v for k, v in _jsonable(metrics).items() if k not in ("pose", "skipped_frames")},
                     indent=1)[:2000])
    print(f"wrote {len(result.poses)} frames of outputs to {out}")
    if source.skipped:
        print(skipped_summary(source.skipped))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="run the estimator over a sequence and write depth, flow, clouds, poses",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="KITTI sequence dir, rosbag, video, image folder or synthetic[:...]")
    p.add_argument("--out", default="out/run", help="output folder")
    p.add_argument("--checkpoint", default=None, help="model file or folder (default: models/default)")
    p.add_argument("--frames", default=None, help="frame selection START:STOP[:STEP]")
    p.add_argument("--sequence", default=None, help="KITTI odometry sequence when SOURCE is a dataset root")
    p.add_argument("--image-topic", default=None, help="bag image topic (default: the only one)")
    p.add_argument("--info-topic", default=None, help="bag camera_info topic")
    p.add_argument("--intrinsics", default=None, help="K as fx,fy,cx,cy or a YAML file (videos, folders)")
    p.add_argument("--depth-format", default="png", help="png (16-bit mm), npy (float32 m), png,npy or none")
    p.add_argument("--output-size", default="camera", choices=OUTPUT_SIZES,
                   help="size of depth, depth_color and clouds, as the node's output.size: camera (registered "
                        "to the camera image, its K) or network (the network's size and K)")
    p.add_argument("--cloud-every", type=int, default=10, help="write a PLY every N frames (0: never)")
    p.add_argument("--cloud-stride", type=int, default=2, help="pixel stride of the clouds")
    p.add_argument("--max-range", type=float, default=60.0, help="max depth of cloud points (m)")
    p.add_argument("--video", action="store_true", help="also write panels.mp4")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Estimator config override")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
