"""``depth-pose export``: the streaming network step as ONNX (for onnxruntime, TensorRT, ...).

The graph takes one frame plus the carried tensors (previous features, recurrent state) and returns
depth, forward/backward flow (and occlusion masks) and the tensors to carry to the next frame; the
input/output names are written beside the model in ``<out>.json``. ``--check`` runs onnxruntime next
to torch over a few frames and prints the largest difference.

The graph has one fixed input size. The Estimator's default ``input_fit: aspect`` picks the network size
per camera size (the camera's aspect ratio at about the trained pixel count), so export at the size of
the camera the graph will serve: ``--camera WIDTHxHEIGHT`` exports at the size the Estimator would
choose for it; without it (or with ``--height`` / ``--width``) the model's own size is used, which is the
``input_fit`` crop / stretch size.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from depth_pose_ros.nets.fast import export_onnx, onnx_parity
    from depth_pose_ros.pipeline.factory import build_estimator

    size = [f"height={args.height}"] if args.height else []
    size += [f"width={args.width}"] if args.width else []
    estimator, weights = build_estimator(args.checkpoint, size)
    h, w = estimator.network_size
    if args.camera:
        try:
            cw, ch = (int(v) for v in args.camera.lower().split("x"))
        except ValueError:
            raise ValueError(f"--camera {args.camera!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
        h, w = estimator.input_size((ch, cw))
    model = estimator.model
    out = Path(args.out)
    export = export_onnx(model, out, h, w, opset=args.opset)
    info = {"weights": weights, "height": h, "width": w, "inputs": export.input_names,
            "outputs": export.output_names, "input_shapes": {k: list(v) for k, v in export.input_shapes.items()},
            "carried": export.carried_names}
    if args.check:
        info["max_abs_diff_vs_torch"] = onnx_parity(model, export)
    out.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {h}x{w}) from {weights}")
    if args.check:
        print(f"onnxruntime vs torch, max abs difference over 3 frames: {info['max_abs_diff_vs_torch']:.2e}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="export the streaming network step to ONNX", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="model file or folder (default: models/default)")
    p.add_argument("--out", default="out/depth_pose_step.onnx", help="output .onnx path")
    p.add_argument("--height", type=int, default=None, help="input height (default: the model's)")
    p.add_argument("--width", type=int, default=None, help="input width (default: the model's)")
    p.add_argument("--camera", default=None, metavar="WIDTHxHEIGHT",
                   help="export at the network size the Estimator (input_fit) chooses for this camera size")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--check", action="store_true", help="compare onnxruntime with torch on random frames")
    p.set_defaults(func=run)
