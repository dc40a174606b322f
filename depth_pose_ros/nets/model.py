"""``DepthFlowNet``: shared encoder + recurrent cell + depth decoder + bidirectional flow decoder
(+ optional PoseNet, IDCE, HAM), with a streaming API and a clip API.

Streaming (Estimator): per frame call ``encode`` once, then ``predict_depth`` on the new features and
``predict_flow`` between the cached previous features and the new ones — the encoder never runs twice
on a frame. Training: ``forward_clip`` runs the same modules on a clip of T frames, batching the
non-recurrent parts over all frames (the ResNet trunk over B*T images, the decoders over all frames /
pairs) and stepping only the recurrent cell through time.

Images are Bx C xHxW float in [0, 1] (C = ``cfg.encoder.image_channels``), H and W divisible by 32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from depth_pose_ros.nets.blocks import resize_like
from depth_pose_ros.nets.config import NetConfig, architecture_signature
from depth_pose_ros.nets.depth_decoder import DepthDecoder, sigmoid_to_depth
from depth_pose_ros.nets.flow_decoder import FlowDecoder, upsample_flow
from depth_pose_ros.nets.idce import DepthCueExtractor
from depth_pose_ros.nets.pose import PoseNet, PoseOutput
from depth_pose_ros.nets.recurrent import RecurrentFeatures, RecurrentState
from depth_pose_ros.nets.resnet import LEVEL_STRIDES, ResNetEncoder, normalize_image

__all__ = [
    "INPUT_MULTIPLE",
    "ClipOutput",
    "DepthFlowNet",
    "FlowOutput",
    "architecture_signature",
    "build_model",
]

#: Input height and width must be multiples of this: the coarsest encoder level has stride 32 and the
#: decoders add skip connections level by level without padding or cropping.
INPUT_MULTIPLE = LEVEL_STRIDES[-1]


@dataclass
class FlowOutput:
    """Optical flow from image A to image B (``forward``) and from B to A (``backward``).

    Each list is ``[full resolution, finest level, ..., coarsest level]`` with the matching entry of
    ``strides`` (e.g. ``(1, 4, 8, 16, 32)``); every flow is Bx2xH_sxW_s in pixels *of its own
    resolution* (the full-resolution entry is the finest level upsampled with values scaled).
    ``forward`` is defined on the pixels of A and points into B. ``non_occluded_fw`` (Bx1xH_sxW_s in
    [0, 1], 1 = the pixel of A is visible in B) and ``non_occluded_bw`` exist when the occlusion
    mask is enabled; ``backward`` / ``non_occluded_bw`` are None when only one direction was asked.
    """

    forward: list[Tensor]
    backward: list[Tensor] | None
    non_occluded_fw: list[Tensor] | None
    non_occluded_bw: list[Tensor] | None
    strides: tuple[int, ...]


@dataclass
class ClipOutput:
    """Network outputs for a clip of T frames (``forward_clip``).

    ``depths[t]``: the 4 depth maps of frame t (as ``predict_depth``). ``flows[t-1]``: ``FlowOutput``
    between frames t-1 (A) and t (B), for t = 1..T-1. ``poses[t-1]``: ``PoseOutput`` of the pair
    (T_prev_cur maps points of frame t into frame t-1) when the PoseNet is enabled, else None.
    ``state``: recurrent state after the last frame (still attached to the graph; ``detach()`` it to
    continue the sequence with truncated BPTT). ``last_features``: features of the last frame, for
    the flow to the first frame of the next clip.
    """

    depths: list[list[Tensor]]
    flows: list[FlowOutput]
    poses: list[PoseOutput] | None
    state: RecurrentState
    last_features: list[Tensor]


class DepthFlowNet(nn.Module):
    """The project's network; build it with ``build_model(cfg)``."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        enc = cfg.encoder
        self.encoder = ResNetEncoder(enc.depth, enc.width, enc.image_channels)
        ch = self.encoder.channels
        rec = cfg.recurrent
        self.recurrent = RecurrentFeatures(
            ch, LEVEL_STRIDES, tuple(rec.levels), rec.type, tuple(rec.hidden_channels), rec.kernel_size
        )
        dcfg = cfg.depth
        self.depth_decoder = DepthDecoder(ch, tuple(dcfg.channels), dcfg.finest_level, dcfg.pad_mode)
        self.flow_decoder: FlowDecoder | None = None
        if cfg.flow.enabled:
            f = cfg.flow
            self.flow_decoder = FlowDecoder(
                ch,
                f.coarsest_level,
                f.finest_level,
                f.feature_channels,
                f.search_range,
                tuple(f.estimator_channels),
                f.occlusion_mask,
            )
        self.pose_net: PoseNet | None = None
        if cfg.pose_net.enabled:
            p = cfg.pose_net
            self.pose_net = PoseNet(enc.image_channels, p.depth, p.width, p.decoder_channels, p.ham, p.ham_delta)
        self.idce: DepthCueExtractor | None = None
        if cfg.idce.enabled:
            if cfg.idce.source == "pose_encoder":
                assert self.pose_net is not None  # guaranteed by cfg.validate()
                stream_ch = self.pose_net.channels
            else:
                stream_ch = tuple(2 * c for c in ch)
            self.idce = DepthCueExtractor(tuple(cfg.idce.levels), stream_ch, ch, cfg.idce.num_bottlenecks)

    # ------------------------------------------------------------------ properties
    @property
    def signature(self) -> str:
        """``architecture_signature`` of the config this model was built from."""
        return architecture_signature(self.cfg)

    @property
    def feature_channels(self) -> tuple[int, ...]:
        return self.encoder.channels

    @property
    def depth_strides(self) -> tuple[int, ...]:
        """Strides of ``predict_depth`` outputs relative to the input (first entry always 1)."""
        return (1,) + self.depth_decoder.disp_strides[1:]

    # ------------------------------------------------------------------ streaming API
    def init_state(
        self,
        batch: int,
        height: int,
        width: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> RecurrentState:
        """Zero recurrent state (first-frame behaviour) for ``batch`` streams of height x width images."""
        return self.recurrent.init_state(batch, height, width, device, dtype)

    def encode(self, images: Tensor, state: RecurrentState | None = None) -> tuple[list[Tensor], RecurrentState]:
        """Encoder (once per frame) + recurrent cell: images BxCxHxW in [0, 1] -> (5 features, new state).

        ``state=None``, or a state built for another batch size or resolution, starts from zeros.
        """
        self._check_images(images, "images")
        b, _, h, w = images.shape
        feats = self.encoder(normalize_image(images))
        if state is None or not state.matches(b, (h, w)):
            state = self.init_state(b, h, w, images.device)
        if not self.recurrent.enabled:
            return feats, state
        return self.recurrent(feats, state)

    def stream_features(
        self,
        feats_prev: list[Tensor] | None,
        feats_cur: list[Tensor],
        image_prev: Tensor | None = None,
        image_cur: Tensor | None = None,
    ) -> list[Tensor]:
        """Unit-stream features for IDCE: ``[X_{t-1}, X_t]`` per level, or the PoseNet encoder output.

        For the first frame of a stream pass ``feats_prev=None`` (or ``image_prev=None``): the current
        frame stands in for the previous one (a static pair). With the feature-pair source only the
        levels IDCE reads are concatenated; the other entries are the current features, unused.
        """
        if self.cfg.idce.source == "pose_encoder":
            if self.pose_net is None or image_cur is None:
                raise ValueError("idce.source='pose_encoder' needs the PoseNet and image_cur")
            return self.pose_net.encode(image_cur if image_prev is None else image_prev, image_cur)
        prev = feats_cur if feats_prev is None else feats_prev
        levels = self.idce.levels if self.idce is not None else range(len(feats_cur))
        return [torch.cat([p, c], dim=1) if lv in levels else c for lv, (p, c) in enumerate(zip(prev, feats_cur))]

    def predict_depth(
        self, features: list[Tensor], cue_features: list[Tensor] | None = None
    ) -> list[Tensor]:
        """Depth maps in metres (Bx1xH_sxW_s) at ``depth_strides``, finest first.

        The first entry is at the input resolution (upsampled from stride 2 when
        ``depth.finest_level`` is 1). ``cue_features`` (from ``stream_features``) are required when
        IDCE is enabled and ignored otherwise.
        """
        if self.idce is not None:
            if cue_features is None:
                raise ValueError("IDCE is enabled: predict_depth needs cue_features (see stream_features)")
            cues = self.idce(cue_features)
            features = [f if c is None else f + c for f, c in zip(features, cues)]
        sigmoids = self.depth_decoder(features)
        image_size = _image_size(features)
        sigmoids[0] = resize_like(sigmoids[0], image_size)
        d = self.cfg.depth
        return [sigmoid_to_depth(s, d.min_depth, d.max_depth) for s in sigmoids]

    def predict_flow(
        self, feats_a: list[Tensor], feats_b: list[Tensor], both_directions: bool = True
    ) -> FlowOutput:
        """Flow A -> B (and B -> A); both directions run as one batch through the decoder."""
        if self.flow_decoder is None:
            raise ValueError("the flow decoder is disabled in this model config (flow.enabled: false)")
        b = feats_a[0].shape[0]
        out = self.flow_decoder(feats_a, feats_b, both_directions)
        image_size = _image_size(feats_a)
        flows = [upsample_flow(out.flows[0], image_size)] + out.flows
        masks = None
        if out.non_occluded is not None:
            masks = [resize_like(out.non_occluded[0], image_size)] + out.non_occluded
        strides = (1,) + self.flow_decoder.strides
        if not both_directions:
            return FlowOutput(flows, None, masks, None, strides)
        return FlowOutput(
            [f[:b] for f in flows],
            [f[b:] for f in flows],
            None if masks is None else [m[:b] for m in masks],
            None if masks is None else [m[b:] for m in masks],
            strides,
        )

    def predict_pose(self, image_prev: Tensor, image_cur: Tensor) -> PoseOutput:
        """PoseNet ``T_prev_cur`` (maps points of the current camera into the previous camera)."""
        if self.pose_net is None:
            raise ValueError("the PoseNet is disabled in this model config (pose_net.enabled: false)")
        return self.pose_net(image_prev, image_cur)

    # ------------------------------------------------------------------ training API
    def forward_clip(
        self, images: Tensor, state: RecurrentState | None = None, truncate_every: int | None = None,
        flow_trains_encoder: bool = True,
    ) -> ClipOutput:
        """Run a clip BxTxCxHxW: depth per frame, flow (both directions) and pose per consecutive pair.

        The recurrent state flows through all T frames, so gradients reach the cell across the clip;
        ``truncate_every=k`` detaches it after every k frames (truncated BPTT inside the clip).
        ``flow_trains_encoder=False`` gives the flow decoder detached features: only the depth (and pose)
        losses train the shared encoder and recurrent cell (a training ablation of the shared encoder;
        the outputs are the same).
        """
        if images.dim() != 5:
            raise ValueError(f"forward_clip expects images BxTxCxHxW, got shape {tuple(images.shape)}")
        if truncate_every is not None and truncate_every < 1:
            raise ValueError(f"truncate_every must be >= 1, got {truncate_every}")
        b, t = images.shape[:2]
        flat = images.flatten(0, 1)
        self._check_images(flat, "images")
        h, w = flat.shape[-2:]
        feats = self.encoder(normalize_image(flat))  # one batched pass over all B*T frames
        per_frame = [list(f.reshape(b, t, *f.shape[1:]).unbind(1)) for f in feats]  # level -> frame
        if state is None or not state.matches(b, (h, w)):
            state = self.init_state(b, h, w, images.device)
        if self.recurrent.enabled:
            for i in range(t):
                if truncate_every is not None and i > 0 and i % truncate_every == 0:
                    state = state.detach()
                frame = [per_frame[lv][i] for lv in range(len(feats))]
                frame, state = self.recurrent(frame, state)
                for lv in self.recurrent.levels:
                    per_frame[lv][i] = frame[lv]
        seq = [torch.stack(per_frame[lv], 1) for lv in range(len(feats))]  # level: B x T x ...
        all_frames = [s.flatten(0, 1) for s in seq]

        cues = None
        poses: list[PoseOutput] | None = None
        if self.pose_net is not None:
            pose_cues = self.idce is not None and self.cfg.idce.source == "pose_encoder"
            if pose_cues:  # every frame needs a stream; frame 0 pairs with itself
                prev_images = torch.cat([images[:, :1], images[:, :-1]], 1).flatten(0, 1)
                cues = self.pose_net.encode(prev_images, flat)
                pair_stream = [s.reshape(b, t, *s.shape[1:])[:, 1:].flatten(0, 1) for s in cues]
            elif t > 1:
                pair_stream = self.pose_net.encode(images[:, :-1].flatten(0, 1), images[:, 1:].flatten(0, 1))
            poses = []
            if t > 1:
                pose = self.pose_net.decode(pair_stream)
                poses = [_pose_at(pose, b, t - 1, i) for i in range(t - 1)]
        if self.idce is not None and cues is None:
            prev = [torch.cat([s[:, :1], s[:, :-1]], 1).flatten(0, 1) for s in seq]
            cues = self.stream_features(prev, all_frames)
        depth_all = self.predict_depth(all_frames, cues)
        depths = [[d.reshape(b, t, *d.shape[1:])[:, i] for d in depth_all] for i in range(t)]

        flows: list[FlowOutput] = []
        if self.flow_decoder is not None and t > 1:
            flow_seq = seq if flow_trains_encoder else [s.detach() for s in seq]
            fa = [s[:, :-1].flatten(0, 1) for s in flow_seq]
            fb = [s[:, 1:].flatten(0, 1) for s in flow_seq]
            out = self.predict_flow(fa, fb, both_directions=True)
            flows = [_flow_at(out, b, t - 1, i) for i in range(t - 1)]
        last = [s[:, -1] for s in seq]
        return ClipOutput(depths, flows, poses, state, last)

    def forward(self, images: Tensor, state: RecurrentState | None = None) -> ClipOutput:
        """Alias of ``forward_clip`` so that ``model(clip)`` works with hooks and DDP."""
        return self.forward_clip(images, state)

    # ------------------------------------------------------------------ helpers
    def _check_images(self, images: Tensor, name: str) -> None:
        c = self.cfg.encoder.image_channels
        if images.dim() != 4 or images.shape[1] != c:
            raise ValueError(f"{name} must be Bx{c}xHxW (encoder.image_channels={c}), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
            raise ValueError(f"{name} height and width must be divisible by {INPUT_MULTIPLE}, got {h}x{w}")


def build_model(cfg: NetConfig | None = None) -> DepthFlowNet:
    """Factory: the model of ``cfg`` (default: the light CPU configuration)."""
    return DepthFlowNet(cfg if cfg is not None else NetConfig())


def _image_size(features: list[Tensor]) -> tuple[int, int]:
    """Input size from the stride-2 level (the encoder requires sizes divisible by 32)."""
    return int(features[0].shape[-2]) * 2, int(features[0].shape[-1]) * 2


def _take(x: Tensor, b: int, n: int, i: int) -> Tensor:
    """Item i of a tensor whose batch axis is (b, n) flattened."""
    return x.reshape(b, n, *x.shape[1:])[:, i]


def _flow_at(out: FlowOutput, b: int, n: int, i: int) -> FlowOutput:
    def pick(xs: list[Tensor] | None) -> list[Tensor] | None:
        return None if xs is None else [_take(x, b, n, i) for x in xs]

    return FlowOutput(
        [_take(x, b, n, i) for x in out.forward],
        pick(out.backward),
        pick(out.non_occluded_fw),
        pick(out.non_occluded_bw),
        out.strides,
    )


def _pose_at(pose: PoseOutput, b: int, n: int, i: int) -> PoseOutput:
    return PoseOutput(
        _take(pose.axis_angle, b, n, i), _take(pose.translation, b, n, i), _take(pose.T_prev_cur, b, n, i)
    )
