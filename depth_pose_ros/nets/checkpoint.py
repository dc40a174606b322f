"""Model checkpoints: safetensors weights with the architecture config in the file's metadata.

Why this format: safetensors cannot execute code on load (``torch.load`` of a pickle can), and the
metadata block lets one self-contained file carry everything needed to rebuild the network. The
architecture signature stored with the weights is checked before any tensor is copied, so loading a
checkpoint of another architecture fails with a message naming both, instead of a wall of
missing/unexpected keys (or, worse, a silently half-loaded model).

Files are written atomically (temporary file in the same directory + ``os.replace``) so that a
crash or kill mid-write never leaves a truncated checkpoint where a good one was.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from depth_pose_ros.nets.config import NetConfig, architecture_signature
from depth_pose_ros.nets.model import DepthFlowNet, build_model
from depth_pose_ros.utils.config import dict_diff

FORMAT = "depth_pose_ros.model/1"


class CheckpointError(ValueError):
    """The checkpoint file is unreadable, of another format, or of another architecture."""


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the temporary file onto ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Atomic safetensors write of contiguous CPU copies of ``tensors``."""
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(flat, tmp, metadata=metadata))


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata block of a safetensors file (no tensor is read)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def save_model(path: str | Path, model: DepthFlowNet, extra: Optional[dict[str, Any]] = None) -> None:
    """Write the model's weights and architecture config to ``path`` (.safetensors)."""
    meta = {
        "format": FORMAT,
        "net_config": json.dumps(model.cfg.to_dict(), sort_keys=True),
        "signature": architecture_signature(model.cfg),
        "extra": json.dumps(extra or {}, sort_keys=True, default=str),
    }
    save_tensors(path, model.state_dict(), meta)


def interpolate_models(start: str | Path, end: str | Path, alpha: float, out: str | Path,
                       extra: Optional[dict[str, Any]] = None) -> None:
    """Write ``(1 - alpha) * start + alpha * end`` (every floating-point weight and BatchNorm statistic;
    integer buffers from ``end``) to ``out``.

    Why: averaging a fine-tuned network with the one it started from (a weight-space ensemble, WiSE-FT,
    Wortsman et al. 2022) keeps much of what the fine-tune learned on its data while giving back much of
    what it forgot elsewhere; the two share one architecture and one starting point, which is what makes
    the average meaningful. Raises CheckpointError when the two architectures differ.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    model_a, _ = load_model(start)
    model_b, extra_b = load_model(end, expected=model_a.cfg)
    a, b = model_a.state_dict(), model_b.state_dict()
    mixed = {k: ((1.0 - alpha) * a[k].double() + alpha * b[k].double()).to(a[k].dtype)
             if a[k].is_floating_point() else b[k] for k in a}
    model_b.load_state_dict(mixed)
    save_model(out, model_b, {**extra_b, **(extra or {})})


def load_model(path: str | Path, map_location: str = "cpu",
               expected: Optional[NetConfig] = None) -> tuple[DepthFlowNet, dict[str, Any]]:
    """Rebuild the network stored in ``path``; returns ``(model, extra)``.

    Args:
        expected: when given, the checkpoint must have exactly this architecture.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not our format, corrupt, or another architecture than ``expected``.
    """
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a depth_pose_ros model checkpoint (format={meta.get('format')!r})")
    try:
        cfg = NetConfig.from_dict(json.loads(meta["net_config"]), where=f"{path} net_config")
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: missing or corrupt net_config metadata ({exc})") from None
    signature = architecture_signature(cfg)
    if meta.get("signature") not in (None, signature):
        raise CheckpointError(f"{path}: stored signature {meta.get('signature')} does not match its config "
                              f"({signature}); the file is inconsistent")
    if expected is not None and architecture_signature(expected) != signature:
        raise CheckpointError(
            f"{path}: checkpoint architecture {signature} does not match the configured architecture "
            f"{architecture_signature(expected)}; differing fields: {dict_diff(cfg.to_dict(), expected.to_dict())}")
    model = build_model(cfg)
    try:
        state = load_file(str(path), device=map_location)
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: cannot read weights ({exc})") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise CheckpointError(f"{path}: weights do not fit the stored architecture: {exc}") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the stored architecture (missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]})")
    extra = json.loads(meta.get("extra", "{}") or "{}")
    return model, extra
