#!/usr/bin/env python3
"""Per-frame network cost of the streaming model vs the Monodepth2 reference (ms/frame, peak RSS).

Ours, per frame: encoder once + recurrent cell + depth decoder (+ IDCE cues when enabled) + forward
AND backward flow between the cached previous features and the new ones — exactly the network work
the Estimator does per frame. Reference, per frame: Monodepth2 ResNet-18 depth of the current image +
ResNet-18 pose of the pair. Geometry (E-RANSAC etc.) is not included here.

Every (model, mode, size) runs in a fresh worker process so that peak RSS is its own and one
configuration's allocator/oneDNN caches do not help another; configurations are interleaved over
``--rounds`` and each is reported by its least-disturbed round (the lowest per-round median), so that a
burst of load from other processes during one round does not decide the result. The load average
is printed with the results: on a shared machine, re-run and compare.

Example (the numbers in docs/bench_nets.md):
    .venv/bin/python benchmarks/bench_networks.py --threads 2 --sizes 192x640 128x416 --rounds 2
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "models" / "st_light.yaml"


def _parse_size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 192x640, got {text!r}") from None
    return h, w


def worker(args: argparse.Namespace) -> dict:
    """Time one configuration in this process; returns a JSON-able dict."""
    import resource

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    h, w = args.size
    fast = args.mode == "fast"
    if args.model == "reference" and args.mode == "onnx":
        raise ValueError("the reference model is not exported to ONNX")
    if args.model == "reference":
        from depth_pose_ros.nets.fast import fuse_batchnorm, inference_context
        from depth_pose_ros.nets.reference import ReferenceMonodepth2

        ref = ReferenceMonodepth2().eval()
        if fast:
            fuse_batchnorm(ref)
            ref = ref.to(memory_format=torch.channels_last)
        fmt = torch.channels_last if fast else torch.contiguous_format
        frames = [torch.rand(1, 3, h, w).contiguous(memory_format=fmt) for _ in range(2)]
        ctx = lambda: inference_context("cpu", use_autocast=fast)  # noqa: E731

        state = {"i": 0}

        def step() -> None:
            i = state["i"] = state["i"] + 1
            ref.step(frames[(i + 1) % 2], frames[i % 2])

    elif args.mode == "onnx":  # our streaming step exported to ONNX, run by onnxruntime (fp32)
        import tempfile

        import numpy as np
        import onnxruntime as ort

        from depth_pose_ros.nets.config import NetConfig
        from depth_pose_ros.nets.fast import export_onnx
        from depth_pose_ros.nets.model import build_model

        model = build_model(NetConfig.from_yaml(args.config)).eval()
        tmp = tempfile.TemporaryDirectory()
        export = export_onnx(model, Path(tmp.name) / "step.onnx", h, w)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(export.path), so, providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        frames = [rng.random(export.input_shapes["image"], dtype=np.float32) for _ in range(2)]
        carried_names = export.carried_names
        n_fixed = len(export.output_names) - len(carried_names)
        onnx_state = {"carried": [np.zeros(export.input_shapes[n], np.float32) for n in carried_names], "i": 0}
        ctx = contextlib.nullcontext

        def step() -> None:
            i = onnx_state["i"] = onnx_state["i"] + 1
            feeds = {"image": frames[i % 2]}
            if "has_prev" in export.input_names:
                feeds["has_prev"] = np.ones(1, np.float32)
            feeds.update(zip(carried_names, onnx_state["carried"]))
            onnx_state["carried"] = sess.run(export.output_names, feeds)[n_fixed:]

    else:
        from depth_pose_ros.nets.config import NetConfig
        from depth_pose_ros.nets.fast import FastPathOptions, optimize_for_inference
        from depth_pose_ros.nets.model import build_model

        cfg = NetConfig.from_yaml(args.config)
        model = build_model(cfg).eval()
        opts = FastPathOptions(compile=args.compile)
        if not fast:
            opts = FastPathOptions(fuse_batchnorm=False, channels_last=False, autocast=False)
        fm = optimize_for_inference(model, opts, "cpu", example_size=(h, w) if args.compile else None)
        c = cfg.encoder.image_channels
        frames = [fm.prepare_input(torch.rand(1, c, h, w)) for _ in range(2)]
        ctx = fm.context
        with ctx():
            prev, rec = model.encode(frames[0])
        carry = {"prev": prev, "state": rec, "i": 0}

        def step() -> None:
            i = carry["i"] = carry["i"] + 1
            image = frames[i % 2]
            feats, carry["state"] = model.encode(image, carry["state"])
            cues = model.stream_features(carry["prev"], feats, image, image) if model.idce is not None else None
            model.predict_depth(feats, cues)
            if model.flow_decoder is not None:
                model.predict_flow(carry["prev"], feats, both_directions=True)
            carry["prev"] = feats

    times = []
    with ctx():
        for _ in range(args.warmup):
            step()
        for _ in range(args.iters):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1e3)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return {
        "model": args.model,
        "mode": args.mode + ("+compile" if args.compile else ""),
        "size": f"{h}x{w}",
        "median_ms": statistics.median(times),
        "p10_ms": sorted(times)[len(times) // 10],
        "min_ms": min(times),
        "peak_rss_mib": rss_mib,
    }


def _cpu_ms(fn, iters: int, warmup: int) -> float:
    import time as _time

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        t0 = _time.process_time()
        fn()
        times.append((_time.process_time() - t0) * 1e3)
    return statistics.median(times)


def _breakdown_row(args: argparse.Namespace, h: int, w: int, fast: bool) -> str:
    import torch

    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.fast import FastPathOptions, fuse_batchnorm, inference_context, optimize_for_inference
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.nets.reference import ReferenceMonodepth2

    torch.manual_seed(0)
    model = build_model(NetConfig.from_yaml(args.config)).eval()
    opts = FastPathOptions() if fast else FastPathOptions(fuse_batchnorm=False, channels_last=False, autocast=False)
    fm = optimize_for_inference(model, opts)
    c = model.cfg.encoder.image_channels
    x, y = (fm.prepare_input(torch.rand(1, c, h, w)) for _ in range(2))
    timed = lambda fn: _cpu_ms(fn, args.iters, args.warmup)  # noqa: E731

    def depth(feats: list) -> None:
        model.predict_depth(feats, model.stream_features(fa, feats, x, y) if model.idce is not None else None)

    def step() -> None:
        feats, _ = model.encode(y, s)
        depth(feats)
        if model.flow_decoder is not None:
            model.predict_flow(fa, feats)

    with fm.context():
        fa, s = model.encode(x)
        fb, _ = model.encode(y, s)
        enc = timed(lambda: model.encoder(y))
        rec = timed(lambda: model.recurrent(fb, s)) if model.recurrent.enabled else 0.0
        dep = timed(lambda: depth(fb))
        flo = timed(lambda: model.predict_flow(fa, fb)) if model.flow_decoder is not None else 0.0
        full = timed(step)
    ref = ReferenceMonodepth2().eval()
    if fast:
        fuse_batchnorm(ref)
        ref = ref.to(memory_format=torch.channels_last)
    with inference_context("cpu", use_autocast=fast):
        ref_ms = timed(lambda: ref.step(x, y))
    mode = "fast" if fast else "eager"
    return (f"| {h}x{w} | {mode} | {enc:.1f} | {rec:.1f} | {dep:.1f} | {flo:.1f} | {full:.1f} | {ref_ms:.1f} "
            f"| {full / ref_ms:.2f} |")


def correlation_variants(args: argparse.Namespace) -> None:
    """Time the shift-loop cost volume against two unfold-based formulations (why correlation.py is a loop)."""
    import torch
    import torch.nn.functional as F

    from depth_pose_ros.nets.correlation import local_correlation

    torch.set_num_threads(1)

    def unfold_all(a, b, d):  # F.unfold materialises C*(2d+1)^2 x HW
        bsz, c, h, w = a.shape
        k = 2 * d + 1
        nb = F.unfold(F.pad(b, (d, d, d, d)), k).view(bsz, c, k * k, h * w)
        return (a.view(bsz, c, 1, h * w) * nb).mean(1).view(bsz, k * k, h, w)

    def unfold_rows(a, b, d):  # one strided row view per dy, contracted with einsum
        h = a.shape[-2]
        k = 2 * d + 1
        bp = F.pad(b, (d, d, d, d))
        rows = [torch.einsum("bchw,bchwk->bkhw", a, bp[:, :, dy : dy + h, :].unfold(3, k, 1)) for dy in range(k)]
        return torch.cat(rows, 1) / a.shape[1]

    print("| features (2 x C x H x W) | d | shift loop (ours) | unfold rows + einsum | F.unfold |")
    print("|---|---|---|---|---|")
    for c, h, w in [(16, 48, 160), (24, 24, 80), (32, 12, 40), (32, 6, 20)]:
        a, b = torch.randn(2, c, h, w), torch.randn(2, c, h, w)
        ref = local_correlation(a, b, 3)
        assert torch.allclose(unfold_all(a, b, 3), ref, atol=1e-5)
        assert torch.allclose(unfold_rows(a, b, 3), ref, atol=1e-5)
        ms = [_cpu_ms(lambda f=f, a=a, b=b: f(a, b, 3), args.iters, args.warmup)
              for f in (local_correlation, unfold_rows, unfold_all)]
        print(f"| 2x{c}x{h}x{w} | 3 | {ms[0]:.2f} | {ms[1]:.2f} | {ms[2]:.2f} |")


def conv_macs(args: argparse.Namespace) -> None:
    """Multiply-accumulates of every Conv2d per frame (forward hooks), by top-level module; load-independent."""
    import torch

    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.nets.reference import ReferenceMonodepth2

    def count(model: torch.nn.Module, run) -> dict[str, int]:
        macs: dict[str, int] = {}
        hooks = []
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Conv2d):
                top = name.split(".")[0]
                per_out = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups

                def hook(_m, _i, out, top=top, per_out=per_out) -> None:
                    macs[top] = macs.get(top, 0) + out.numel() * per_out

                hooks.append(mod.register_forward_hook(hook))
        with torch.no_grad():
            run()
        for h in hooks:
            h.remove()
        return macs

    print("| size | model | GMAC by module | total GMAC | parameters (M) |")
    print("|---|---|---|---|---|")
    for h, w in args.sizes:
        x = torch.rand(1, 3, h, w)
        models = [(p.stem, build_model(NetConfig.from_yaml(p)).eval()) for p in args.macs_configs]
        for label, model in models:
            with torch.no_grad():
                prev, state = model.encode(x)

            def step(model=model, prev=prev, state=state, x=x) -> None:
                feats, _ = model.encode(x, state)
                model.predict_depth(feats, model.stream_features(prev, feats, x, x) if model.idce else None)
                if model.flow_decoder is not None:
                    model.predict_flow(prev, feats)

            macs = count(model, step)
            parts = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in macs.items())
            n_par = sum(p.numel() for p in model.parameters()) / 1e6
            print(f"| {h}x{w} | {label} | {parts} | {sum(macs.values()) / 1e9:.2f} | {n_par:.1f} |")
        ref = ReferenceMonodepth2().eval()
        macs = count(ref, lambda: ref.step(x, x))  # noqa: B023
        parts = ", ".join(f"{k} {v / 1e9:.2f}" for k, v in macs.items())
        n_par = sum(p.numel() for p in ref.parameters()) / 1e6
        print(f"| {h}x{w} | reference | {parts} | {sum(macs.values()) / 1e9:.2f} | {n_par:.1f} |")


def breakdown(args: argparse.Namespace) -> None:
    """Per-component cost in CPU milliseconds (``time.process_time``), ours eager/fast and the reference.

    CPU time of a single-threaded run counts only the time this process actually ran, so it is far less
    disturbed by other processes on a shared machine than wall-clock time of a 2-thread run; it is the
    measurement to compare components and configurations with (the 2-thread wall time is what counts).
    """
    import torch

    torch.set_num_threads(1)
    print("| size | mode | encoder | recurrent | depth dec. | flow (fw+bw) | full step | reference step | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for h, w in args.sizes:
        for fast in (False, True):
            print(_breakdown_row(args, h, w, fast), flush=True)


def run_worker(model: str, mode: str, size: tuple[int, int], args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", "--model", model, "--mode", mode,
        "--size", f"{size[0]}x{size[1]}", "--threads", str(args.threads), "--iters", str(args.iters),
        "--warmup", str(args.warmup), "--config", str(args.config),
    ]  # fmt: skip
    if args.compile and model == "ours" and mode == "fast":
        cmd.append("--compile")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env.setdefault("PYTHONPATH", str(REPO))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd)}):\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=_parse_size, default=[(192, 640), (128, 416)])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every configuration")
    parser.add_argument("--modes", nargs="+", choices=("eager", "fast", "onnx"), default=["eager", "fast"],
                        help="onnx: our exported step in onnxruntime (the reference is not exported)")
    parser.add_argument("--no-reference", action="store_true", help="skip the Monodepth2 reference")
    parser.add_argument("--compile", action="store_true", help="also torch.compile our fast path")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="model YAML (ours)")
    parser.add_argument("--json", type=Path, help="write all results to this file")
    parser.add_argument("--macs", nargs="*", type=Path, dest="macs_configs", default=None,
                        help="instead: conv MACs per frame of these model YAMLs (default: --config) and the reference")
    parser.add_argument("--correlation", action="store_true",
                        help="instead: single-thread CPU ms of cost-volume implementations at our level sizes")
    parser.add_argument("--breakdown", action="store_true",
                        help="instead: single-thread CPU-time cost per component (robust to machine load)")
    # worker-only arguments
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=("ours", "reference"), help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=("eager", "fast", "onnx"), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=_parse_size, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    if not args.config.is_file():
        parser.error(f"--config: file not found: {args.config}")
    if args.macs_configs is not None:
        args.macs_configs = args.macs_configs or [args.config]
        conv_macs(args)
        return 0
    if args.correlation:
        print(f"# bench_networks --correlation: 1 thread, CPU ms (median of {args.iters}), "
              f"load {os.getloadavg()[0]:.2f}")
        correlation_variants(args)
        return 0
    if args.breakdown:
        print(f"# bench_networks --breakdown: 1 thread, CPU ms (median of {args.iters}), config={args.config.name}, "
              f"load average {os.getloadavg()[0]:.2f}")
        breakdown(args)
        return 0

    models = ["ours"] + ([] if args.no_reference else ["reference"])
    combos = [(m, mode, s) for s in args.sizes for mode in args.modes for m in models
              if not (m == "reference" and mode == "onnx")]
    results: dict[tuple, list[dict]] = {c: [] for c in combos}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for combo in combos:
            res = run_worker(*combo, args)
            results[combo].append(res)
            print(f"round {r + 1}: {res}", file=sys.stderr)
    load_after = os.getloadavg()

    print(f"# bench_networks: threads={args.threads} iters={args.iters} rounds={args.rounds} config={args.config.name}")
    print(f"# load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min)")
    print("| size | model | mode | ms/frame (best round's median) | p10 ms | min ms | frames/s | peak RSS MiB "
          "| ratio vs ref (same mode) |")
    print("|---|---|---|---|---|---|---|---|---|")
    summary = []
    for s in args.sizes:
        for mode in args.modes:
            ref_ms = None
            if not args.no_reference and mode != "onnx":
                ref_ms = min(x["median_ms"] for x in results[("reference", mode, s)])
            for m in models:
                if (m, mode, s) not in results:
                    continue
                runs = results[(m, mode, s)]
                med = min(x["median_ms"] for x in runs)  # the least-disturbed round
                mn = min(x["min_ms"] for x in runs)
                p10 = min(x["p10_ms"] for x in runs)
                rss = max(x["peak_rss_mib"] for x in runs)
                ratio = f"{med / ref_ms:.2f}" if ref_ms else "-"
                label = runs[0]["mode"]
                print(f"| {s[0]}x{s[1]} | {m} | {label} | {med:.1f} | {p10:.1f} | {mn:.1f} | {1000 / med:.1f} "
                      f"| {rss:.0f} | {ratio} |")
                summary.append({"size": f"{s[0]}x{s[1]}", "model": m, "mode": label, "median_ms": med, "p10_ms": p10,
                                "min_ms": mn, "peak_rss_mib": rss, "runs": runs})  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"load": [load_before, load_after], "results": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
