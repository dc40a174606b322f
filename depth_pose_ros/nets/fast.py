"""Inference fast path: BN folding, channels_last, bf16/fp16 autocast, optional torch.compile, and
ONNX export of the streaming step with an onnxruntime parity check.

Why each piece: on the 2-core target CPU (AVX512-BF16, no AMX) oneDNN convolutions in bf16 with an
NHWC (channels_last) layout run much faster than fp32 NCHW, the encoder with BN folding most of all
(docs/bench_nets.md, "Fast path vs eager"); folding BatchNorm into the preceding convolution removes
one full read/write per conv. ``torch.compile`` can fuse the remaining element-wise work but must never
be required (it needs a C++ toolchain and minutes of warm-up), so every failure falls back to eager;
its small gain costs a long first compilation and extra memory (docs/bench_nets.md, torch.compile), so
it is off by default. Outputs that carry metric meaning (depth, flow) and the recurrent state are computed
in fp32 (see the depth/flow heads and the recurrent cells), so autocast does not quantise them.
"""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from depth_pose_ros.nets.device import autocast_dtype, cpu_supports_bf16  # noqa: F401  (re-exported)
from depth_pose_ros.nets.model import DepthFlowNet
from depth_pose_ros.nets.recurrent import RecurrentState


@dataclass
class FastPathOptions:
    """Switches of ``optimize_for_inference`` (all on except compile by default)."""

    fuse_batchnorm: bool = True
    channels_last: bool = True
    autocast: bool = True  # bf16 on CPUs that support it, fp16 on CUDA
    compile: bool = False
    compile_mode: str | None = None  # torch.compile mode; None = torch's default
    # inductor weight freezing: off, because with bf16 autocast on this CPU (torch 2.13) the frozen graph ran
    # many times slower than eager (docs/bench_nets.md, torch.compile); fp32 + freezing works
    compile_freezing: bool = False


@contextlib.contextmanager
def inference_context(device: torch.device | str, use_autocast: bool = True) -> Iterator[None]:
    """``torch.inference_mode`` plus bf16 (CPU) / fp16 (CUDA) autocast where supported."""
    dtype = autocast_dtype(device) if use_autocast else None
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(torch.device(device).type, dtype=dtype):
                yield


def fuse_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ``Conv2d -> BatchNorm2d`` pair into the convolution (in place; eval mode only).

    Recognises pairs that are consecutive children of a container or stored as ``convN``/``bnN``
    attributes of the same block (the ResNet blocks), replacing the BN with ``Identity``.
    """
    if module.training:
        raise ValueError("fuse_batchnorm needs a model in eval mode (it freezes the running statistics)")
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for parent in module.modules():
        names = list(parent._modules.keys())
        for i, name in enumerate(names):
            conv = parent._modules[name]
            if not isinstance(conv, nn.Conv2d):
                continue
            bn_name: str | None = None
            if i + 1 < len(names) and isinstance(parent._modules[names[i + 1]], nn.BatchNorm2d):
                bn_name = names[i + 1]
            elif name.startswith("conv") and isinstance(parent._modules.get("bn" + name[4:]), nn.BatchNorm2d):
                bn_name = "bn" + name[4:]
            if bn_name is None:
                continue
            bn = parent._modules[bn_name]
            assert isinstance(bn, nn.BatchNorm2d)
            parent._modules[name] = fuse_conv_bn_eval(conv, bn)
            parent._modules[bn_name] = nn.Identity()
    return module


def try_compile(module: nn.Module, mode: str | None = None, freezing: bool = False) -> nn.Module:
    """``torch.compile`` (optionally with weight freezing); returns ``module`` unchanged on failure.

    Compilation is lazy, so the caller should run one warm-up forward inside a ``try`` as well
    (``optimize_for_inference`` does).
    """
    try:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = freezing  # constant-fold weights (incl. layout/dtype conversions)
        return torch.compile(module, mode=mode, dynamic=False)  # type: ignore[return-value]
    except Exception as exc:  # noqa: BLE001 - any failure means "no compile"
        warnings.warn(f"torch.compile unavailable, staying in eager mode: {exc}", stacklevel=2)
        return module


@dataclass
class FastModel:
    """A ``DepthFlowNet`` prepared for inference plus how to call it (device, autocast, layout)."""

    model: DepthFlowNet
    device: torch.device
    options: FastPathOptions = field(default_factory=FastPathOptions)
    compiled: bool = False

    def context(self) -> contextlib.AbstractContextManager[None]:
        return inference_context(self.device, self.options.autocast)

    def prepare_input(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.options.channels_last else images


def optimize_for_inference(
    model: DepthFlowNet,
    options: FastPathOptions | None = None,
    device: torch.device | str = "cpu",
    example_size: tuple[int, int] | None = None,
) -> FastModel:
    """Return the model prepared for fast streaming inference (the model is modified in place).

    Inference only: BatchNorm layers are folded away and compiled submodules are wrapped, so the
    modified model's ``state_dict`` no longer matches a checkpoint — save weights from an unmodified
    model. ``example_size`` (H, W) triggers a warm-up (and, with ``compile``, the compilation) at that
    size; if compilation fails the eager modules are restored.
    """
    opts = options or FastPathOptions()
    dev = torch.device(device)
    model = model.eval().to(dev)
    if opts.fuse_batchnorm:
        fuse_batchnorm(model)
    if opts.channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    fast = FastModel(model, dev, opts)
    if opts.compile:
        eager = {n: getattr(model, n) for n in ("encoder", "depth_decoder", "flow_decoder") if getattr(model, n)}
        for name, mod in eager.items():
            setattr(model, name, try_compile(mod, opts.compile_mode, opts.compile_freezing))
        fast.compiled = any(getattr(model, n) is not m for n, m in eager.items())
        if fast.compiled and example_size is not None:
            try:
                warm_up(fast, example_size)
            except Exception as exc:  # noqa: BLE001 - fall back to eager on any compile error
                warnings.warn(f"torch.compile failed at warm-up, using eager modules: {exc}", stacklevel=2)
                for name, mod in eager.items():
                    setattr(model, name, mod)
                fast.compiled = False
    if example_size is not None:
        warm_up(fast, example_size)
    return fast


def warm_up(fast: FastModel, size: tuple[int, int], steps: int = 2) -> None:
    """Run the streaming step a few times at ``size`` (primes oneDNN caches / compiles)."""
    c = fast.model.cfg.encoder.image_channels
    image = fast.prepare_input(torch.rand(1, c, size[0], size[1]))
    with fast.context():
        prev, state = fast.model.encode(image)
        for _ in range(steps):
            feats, state = fast.model.encode(image, state)
            fast.model.predict_depth(feats, _cues(fast.model, prev, feats, image))
            if fast.model.flow_decoder is not None:
                fast.model.predict_flow(prev, feats)
            prev = feats


def _cues(model: DepthFlowNet, prev: list[Tensor], cur: list[Tensor], image: Tensor) -> list[Tensor] | None:
    if model.idce is None:
        return None
    return model.stream_features(prev, cur, image, image)


# ---------------------------------------------------------------------------------------------- ONNX
@dataclass
class OnnxExport:
    """What ``export_onnx`` wrote: the file and the graph's input/output names in order.

    Inputs: ``image`` (1xCxHxW in [0, 1]), ``has_prev`` (1-element float: 0 on the first frame of a
    stream, then 1; only when previous features are used), ``prev_feat_l{level}`` (features returned by
    the previous step),
    ``state_h{k}`` / ``state_c{k}`` (recurrent state; zeros on the first frame). Outputs: ``depth``
    (1x1xHxW metres), ``flow_fw`` / ``flow_bw`` (1x2xHxW pixels, previous -> current and back),
    ``non_occluded_fw`` / ``non_occluded_bw`` (with the occlusion mask), ``feat_l{level}`` and
    ``new_state_*`` — feed these back as ``prev_feat_*`` / ``state_*`` on the next frame.
    """

    path: Path
    input_names: list[str]
    output_names: list[str]
    feature_levels: tuple[int, ...]
    input_shapes: dict[str, tuple[int, ...]]

    @property
    def carried_names(self) -> list[str]:
        """Inputs fed from the previous step's outputs (the last ``len(carried_names)`` outputs)."""
        return [n for n in self.input_names if n.startswith(("prev_feat_", "state_"))]


class _StreamingStep(nn.Module):
    """One streaming step with all carried tensors explicit (ONNX cannot hold Python state)."""

    def __init__(self, model: DepthFlowNet, levels: tuple[int, ...]) -> None:
        super().__init__()
        self.model = model
        self.levels = levels
        self.n_hidden = len(model.recurrent.levels)
        self.lstm = model.recurrent.cell_type == "lstm"

    def forward(self, image: Tensor, *inputs: Tensor) -> tuple[Tensor, ...]:
        """``inputs`` = (has_prev, prev features...) when levels are carried, then the state tensors."""
        m = self.model
        n_feat = len(self.levels)
        has_prev, carried = (inputs[0], inputs[1:]) if n_feat else (None, inputs)
        prev_feats = list(carried[:n_feat])
        state_t = carried[n_feat:]
        hidden = tuple(state_t[: self.n_hidden])
        cell = tuple(state_t[self.n_hidden :]) if self.lstm else ()
        h, w = image.shape[-2:]
        state = RecurrentState(hidden, cell, (int(h), int(w)))
        feats, new_state = m.encode(image, state if self.n_hidden else None)
        # first frame: the current features stand in for the missing previous ones
        prev = list(feats)
        for i, lv in enumerate(self.levels):
            assert has_prev is not None
            prev[lv] = feats[lv] + has_prev * (prev_feats[i] - feats[lv])
        cues = _cues(m, prev, feats, image)
        outputs: list[Tensor] = [m.predict_depth(feats, cues)[0]]
        if m.flow_decoder is not None:
            flow = m.predict_flow(prev, feats, both_directions=True)
            assert flow.backward is not None
            outputs += [flow.forward[0], flow.backward[0]]
            if flow.non_occluded_fw is not None and flow.non_occluded_bw is not None:
                outputs += [flow.non_occluded_fw[0], flow.non_occluded_bw[0]]
        outputs += [feats[lv] for lv in self.levels]
        outputs += new_state.tensors() if self.n_hidden else []
        return tuple(outputs)


def carried_levels(model: DepthFlowNet) -> tuple[int, ...]:
    """Feature levels a streaming step needs from the previous frame (flow and IDCE pair inputs)."""
    levels: set[int] = set()
    if model.flow_decoder is not None:
        levels.update(model.flow_decoder.levels)
    if model.idce is not None and model.cfg.idce.source == "feature_pair":
        levels.update(model.idce.levels)
    return tuple(sorted(levels))


def export_onnx(model: DepthFlowNet, path: str | Path, height: int, width: int, opset: int = 17) -> OnnxExport:
    """Export the streaming step (encoder + recurrent + depth + bidirectional flow) to ONNX.

    The graph has a fixed input size ``height`` x ``width`` (divisible by 32) and batch 1; the
    recurrent state and the previous frame's features are explicit inputs/outputs (see
    ``OnnxExport``). The PoseNet and the pose-encoder IDCE source are not part of the graph.
    """
    if height % 32 or width % 32:
        raise ValueError(f"export_onnx: height and width must be divisible by 32, got {height}x{width}")
    if model.idce is not None and model.cfg.idce.source == "pose_encoder":
        raise ValueError("export_onnx: idce.source='pose_encoder' needs the PoseNet, which is not exported")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    levels = carried_levels(model)
    step = _StreamingStep(model, levels).eval()
    c = model.cfg.encoder.image_channels
    image = torch.rand(1, c, height, width)
    with torch.inference_mode():
        feats, state = model.encode(image)
    example = [image] + ([torch.ones(1)] if levels else [])
    example += [torch.randn_like(feats[lv]) for lv in levels]
    state_names: list[str] = []
    if model.recurrent.enabled:
        example += [torch.zeros_like(t) for t in state.tensors()]
        state_names = [f"state_h{k}" for k in range(len(state.hidden))]
        state_names += [f"state_c{k}" for k in range(len(state.cell))]
    input_names = ["image"] + (["has_prev"] if levels else []) + [f"prev_feat_l{lv}" for lv in levels]
    input_names += state_names
    output_names = ["depth"]
    if model.flow_decoder is not None:
        output_names += ["flow_fw", "flow_bw"]
        if model.flow_decoder.occlusion_mask:
            output_names += ["non_occluded_fw", "non_occluded_bw"]
    output_names += [f"feat_l{lv}" for lv in levels] + ["new_" + n for n in state_names]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer chatter about Python ints; the graph is static by design
        torch.onnx.export(
            step,
            tuple(example),
            str(path),
            input_names=input_names,
            output_names=output_names,
            opset_version=opset,
            dynamo=False,
            do_constant_folding=True,
        )
    shapes = {n: tuple(t.shape) for n, t in zip(input_names, example)}
    return OnnxExport(path, input_names, output_names, levels, shapes)


def onnx_parity(model: DepthFlowNet, export: OnnxExport, steps: int = 3, seed: int = 0) -> float:
    """Run torch and onnxruntime side by side over ``steps`` frames; max abs difference of any output.

    Carried tensors (features, state) are fed back from each side's own outputs, so drift through the
    recurrence is included. Depth is compared as inverse depth (metres^-1): its absolute error is
    bounded for every depth, unlike depth itself near ``max_depth``.
    """
    import onnxruntime as ort

    model = model.eval()
    sess = ort.InferenceSession(str(export.path), providers=["CPUExecutionProvider"])
    step = _StreamingStep(model, export.feature_levels).eval()
    gen = torch.Generator().manual_seed(seed)
    shape = export.input_shapes["image"]
    names = export.carried_names
    carried_torch = [torch.zeros(export.input_shapes[n]) for n in names]
    carried_ort = [t.numpy() for t in carried_torch]
    n_out_fixed = len(export.output_names) - len(carried_torch)
    worst = 0.0
    for i in range(steps):
        image = torch.rand(shape, generator=gen)
        flag = [torch.tensor([0.0 if i == 0 else 1.0])] if "has_prev" in export.input_names else []
        with torch.inference_mode():
            out_t = step(image, *flag, *carried_torch)
        feeds = {"image": image.numpy()}
        if flag:
            feeds["has_prev"] = flag[0].numpy()
        feeds.update(dict(zip(names, carried_ort)))
        out_o = sess.run(export.output_names, feeds)
        for name, t, o in zip(export.output_names, out_t, out_o):
            ref = t.numpy()
            if name == "depth":
                ref, o = 1.0 / ref, 1.0 / o
            worst = max(worst, float(abs(ref - o).max()))
        carried_torch = list(out_t[n_out_fixed:])
        carried_ort = list(out_o[n_out_fixed:])
    return worst


__all__ = [
    "FastModel",
    "FastPathOptions",
    "OnnxExport",
    "autocast_dtype",
    "carried_levels",
    "cpu_supports_bf16",
    "export_onnx",
    "fuse_batchnorm",
    "inference_context",
    "onnx_parity",
    "optimize_for_inference",
    "try_compile",
    "warm_up",
]
