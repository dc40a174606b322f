"""Typed network configuration (one place for defaults) with strict dict/YAML loading.

``NetConfig.from_dict`` (the project's ``config_utils`` loader) rejects unknown keys and wrong value types
with the full dotted key path, so a typo in a YAML file ("serach_range") fails loudly instead of silently
training the default network; ``validate`` adds the cross-field checks.
The defaults are the light CPU configuration (``config/models/st_light.yaml`` spells them out).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from depth_pose_ros.utils import config as config_utils


@dataclass
class EncoderConfig:
    """Shared per-frame ResNet encoder."""

    depth: int = 18  # 18, 34 or 50
    width: float = 0.5  # channel multiplier (1.0 = standard ResNet)
    image_channels: int = 3  # 3 RGB, 1 gray


@dataclass
class RecurrentConfig:
    """Recurrent spatio-temporal cell(s) on encoder levels (empty ``levels`` = single-frame network)."""

    type: str = "gru"  # "gru" or "lstm"
    levels: tuple[int, ...] = (4,)  # encoder levels 0..4 (stride 2**(level+1))
    hidden_channels: tuple[int, ...] = (128,)  # one per level
    kernel_size: int = 3


@dataclass
class DepthDecoderConfig:
    """Monodepth2-style disparity decoder."""

    channels: tuple[int, ...] = (16, 16, 32, 64, 128)  # per decoder level, strides 1, 2, 4, 8, 16
    finest_level: int = 1  # 0: last stage at full resolution; 1: at stride 2 (then upsampled)
    pad_mode: str = "zeros"  # "zeros" or "reflect" (Monodepth2)
    min_depth: float = 0.1  # metres
    max_depth: float = 100.0


@dataclass
class IDCEConfig:
    """Implicit depth cue extractor (Wang et al.) feeding unit-stream cues into the depth decoder."""

    enabled: bool = False
    source: str = "feature_pair"  # "feature_pair": [X_{t-1}, X_t]; "pose_encoder": PoseNet encoder
    levels: tuple[int, ...] = (4,)
    num_bottlenecks: int = 4


@dataclass
class FlowDecoderConfig:
    """PWC-style flow decoder on [X_{t-1}, X_t]; per-level lists run coarse -> fine."""

    enabled: bool = True
    coarsest_level: int = 4  # stride 32
    finest_level: int = 1  # stride 4 (0: stride 2)
    feature_channels: tuple[int, ...] = (32, 32, 24, 16)  # 1x1 matching projection (0: raw features)
    search_range: int = 3
    estimator_channels: tuple[tuple[int, ...], ...] = ((64, 48, 32), (64, 48, 32), (48, 32, 24), (32, 24, 16))
    occlusion_mask: bool = True  # Fang et al. / MaskFlowNet learnable occlusion mask


@dataclass
class PoseNetConfig:
    """Optional two-frame PoseNet (Monodepth2 baseline method), with optional HAM (Wang et al.)."""

    enabled: bool = False
    depth: int = 18
    width: float = 1.0
    decoder_channels: int = 256
    ham: bool = False
    ham_delta: float = 0.5


@dataclass
class NetConfig:
    """Everything that defines the network architecture of ``DepthFlowNet``."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    recurrent: RecurrentConfig = field(default_factory=RecurrentConfig)
    depth: DepthDecoderConfig = field(default_factory=DepthDecoderConfig)
    idce: IDCEConfig = field(default_factory=IDCEConfig)
    flow: FlowDecoderConfig = field(default_factory=FlowDecoderConfig)
    pose_net: PoseNetConfig = field(default_factory=PoseNetConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Cross-field checks (each message names the offending key)."""
        if self.encoder.depth not in (18, 34, 50):
            raise ValueError(f"encoder.depth must be 18, 34 or 50, got {self.encoder.depth}")
        if self.encoder.image_channels not in (1, 3):
            raise ValueError(f"encoder.image_channels must be 1 or 3, got {self.encoder.image_channels}")
        if self.recurrent.type not in ("gru", "lstm"):
            raise ValueError(f"recurrent.type must be 'gru' or 'lstm', got {self.recurrent.type!r}")
        if len(self.recurrent.levels) != len(self.recurrent.hidden_channels):
            raise ValueError(
                "recurrent.hidden_channels needs one entry per recurrent.levels entry, got "
                f"levels={list(self.recurrent.levels)} hidden_channels={list(self.recurrent.hidden_channels)}"
            )
        if len(self.depth.channels) != 5:
            raise ValueError(f"depth.channels needs 5 entries (strides 1..16), got {list(self.depth.channels)}")
        if self.idce.source not in ("feature_pair", "pose_encoder"):
            raise ValueError(f"idce.source must be 'feature_pair' or 'pose_encoder', got {self.idce.source!r}")
        if self.idce.enabled and self.idce.source == "pose_encoder" and not self.pose_net.enabled:
            raise ValueError("idce.source='pose_encoder' needs pose_net.enabled: true")
        if self.pose_net.ham and not self.pose_net.enabled:
            raise ValueError("pose_net.ham: true needs pose_net.enabled: true")
        f = self.flow
        n_flow = f.coarsest_level - f.finest_level + 1
        if not 0 <= f.finest_level <= f.coarsest_level <= 4:
            raise ValueError(
                f"flow needs 0 <= finest_level <= coarsest_level <= 4, got {f.finest_level}, {f.coarsest_level}"
            )
        if len(f.feature_channels) != n_flow or len(f.estimator_channels) != n_flow:
            raise ValueError(
                f"flow.feature_channels and flow.estimator_channels need {n_flow} entries (levels "
                f"{f.coarsest_level}..{f.finest_level}, coarse to fine), got {len(f.feature_channels)} and "
                f"{len(f.estimator_channels)}"
            )
        for name, levels in (("recurrent.levels", self.recurrent.levels), ("idce.levels", self.idce.levels)):
            if any(not 0 <= lv <= 4 for lv in levels):
                raise ValueError(f"{name} entries must be in 0..4, got {list(levels)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "model config") -> NetConfig:
        """Build from a nested dict (e.g. parsed YAML); unknown keys or bad values raise ``ConfigError``.

        ``where`` names the source (a file path) in error messages, which also give the dotted key.
        """
        try:
            return config_utils.from_dict(cls, data or {})
        except ValueError as exc:  # ConfigError (keys/types) or a validate() message
            raise config_utils.ConfigError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (tuples as lists), suitable for YAML/JSON and ``from_dict``."""
        return config_utils.to_dict(self)

    @classmethod
    def from_yaml(cls, path: str | Path) -> NetConfig:
        """Load ``path`` (a YAML mapping of the sections above); errors name the file."""
        return cls.from_dict(config_utils.load_yaml(path), where=str(path))


def architecture_signature(cfg: NetConfig) -> str:
    """Stable short hash of the architecture-defining config, stored in checkpoints.

    Every field of ``NetConfig`` changes either the parameter set or the function the weights compute
    (e.g. depth range, padding), so all of them are hashed, canonically ordered.
    """
    text = json.dumps(cfg.to_dict(), sort_keys=True, separators=(",", ":"))
    return "net-v1-" + hashlib.sha256(text.encode()).hexdigest()[:16]
