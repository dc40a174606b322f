"""Training checkpoints: everything needed to continue a run exactly where it stopped.

One checkpoint is a directory ``<run>/checkpoints/step_00001234/`` holding

* ``model.safetensors`` - weights + architecture (``depth_pose_ros.nets.checkpoint.save_model``; loading
  checks the architecture before copying a tensor, so a mismatching run fails with a clear message);
* ``optimizer.safetensors`` - every tensor of the optimiser state (Adam moments, step counters), the
  GradScaler has none;
* ``rng.safetensors`` - torch CPU (and CUDA) generator states;
* ``trainer.json`` - step, epoch, data-sampler position, NaN-guard counter, optimiser param groups and
  non-tensor state, LR-schedule and GradScaler state, python and numpy RNG states;
* ``config.yaml`` - the full resolved training config;
* ``manifest.json`` - written last: names and sizes of the files above.

Atomicity: the directory is written under a temporary name (``.tmp-step_...``) and renamed into place
only when complete (``os.rename`` of a directory is atomic on POSIX), so a crash or ``kill -9`` during
a save leaves either the previous checkpoints or the new complete one, never a half-written one that
resume could pick. Leftover temporary directories are removed at the next save. ``keep_last`` old
checkpoints are kept; an old one is first renamed to a temporary name, then deleted, so a crash
during deletion cannot leave a partial directory under a valid name either. Loading also verifies
the manifest (every file present with the recorded size).
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from safetensors.torch import load_file

from depth_pose_ros.nets.checkpoint import CheckpointError, load_model, save_model, save_tensors
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import DepthFlowNet

STEP_DIR = re.compile(r"^step_(\d{8,})$")
TMP_PREFIX = ".tmp-"
MANIFEST = "manifest.json"
FORMAT = "depth_pose_ros.train_state/1"


@dataclass
class TrainerState:
    """The loop's own counters (everything that is not a tensor of the model or optimiser)."""

    step: int = 0  # optimisation steps attempted (skipped NaN steps included)
    epoch: int = 0
    position: int = 0  # samples of ``epoch`` already consumed by this process
    nan_skipped: int = 0  # total skipped steps
    nan_consecutive: int = 0
    train_seconds: float = 0.0  # wall time spent in training steps over all resumes (for max_minutes)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# -------------------------------------------------------------------------------------------- RNG state


def capture_rng() -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(JSON-able python/numpy RNG states, torch generator states as tensors)."""
    py = random.getstate()
    np_state = np.random.get_state(legacy=True)  # the default: (name, keys, pos, has_gauss, cached_gaussian)
    assert isinstance(np_state, tuple)  # the global RandomState is MT19937, whose legacy state is the tuple
    js = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    return js, tensors


def restore_rng(js: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
    py = js["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    st = js["numpy"]
    np.random.set_state((st[0], np.asarray(st[1], dtype=np.uint32), st[2], st[3], st[4]))
    torch.set_rng_state(tensors["torch_cpu"].to(torch.uint8))
    if torch.cuda.is_available():
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([c.to(torch.uint8) for c in cuda])


# ------------------------------------------------------------------------------------- optimiser state


def split_optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimiser ``state_dict`` as (flat tensors ``state.<param>.<key>``, JSON-able rest)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def join_optimizer_state(tensors: dict[str, torch.Tensor], js: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in js.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": js["param_groups"]}


# --------------------------------------------------------------------------------------- save / find


def checkpoint_dir_name(step: int) -> str:
    return f"step_{int(step):08d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def clean_temporaries(root: Path) -> None:
    """Remove half-written or half-deleted checkpoint directories left by a crash."""
    if not root.is_dir():
        return
    for p in root.iterdir():
        if p.name.startswith(TMP_PREFIX) and p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def save_checkpoint(root: str | Path, model: DepthFlowNet, optimizer: torch.optim.Optimizer,
                    state: TrainerState, config_yaml: str, schedule_state: Optional[dict[str, Any]] = None,
                    scaler_state: Optional[dict[str, Any]] = None, keep_last: int = 3,
                    _before_rename: Any = None) -> Path:
    """Write a complete checkpoint of ``state.step`` atomically; returns its directory.

    ``_before_rename`` is a test hook called with the temporary directory just before it is renamed
    into place (a raising hook simulates a crash at the worst moment).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    clean_temporaries(root)
    name = checkpoint_dir_name(state.step)
    final = root / name
    tmp = root / f"{TMP_PREFIX}{name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()

    save_model(tmp / "model.safetensors", model, extra={"step": state.step})
    opt_tensors, opt_json = split_optimizer_state(optimizer)
    save_tensors(tmp / "optimizer.safetensors", opt_tensors, {"format": FORMAT})
    rng_json, rng_tensors = capture_rng()
    save_tensors(tmp / "rng.safetensors", rng_tensors, {"format": FORMAT})
    trainer = {
        "format": FORMAT,
        "state": state.to_dict(),
        "optimizer": opt_json,
        "schedule": schedule_state or {},
        "scaler": scaler_state or {},
        "rng": rng_json,
    }
    _write_text(tmp / "trainer.json", json.dumps(trainer, default=_json_default))
    _write_text(tmp / "config.yaml", config_yaml)
    files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir())}
    _write_text(tmp / MANIFEST, json.dumps({"format": FORMAT, "step": state.step, "files": files}, indent=1))
    _fsync_dir(tmp)
    if _before_rename is not None:
        _before_rename(tmp)
    if final.exists():  # re-saving the same step (e.g. final save right after a periodic one)
        old = root / f"{TMP_PREFIX}old-{name}-{os.getpid()}"
        os.rename(final, old)
        shutil.rmtree(old, ignore_errors=True)
    os.rename(tmp, final)
    _fsync_dir(root)
    prune_checkpoints(root, keep_last)
    return final


def _write_text(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _json_default(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def list_checkpoints(root: str | Path) -> list[Path]:
    """Complete-looking checkpoint directories under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := STEP_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(root: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (rename first, then delete)."""
    for old in list_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        doomed = root / f"{TMP_PREFIX}del-{old.name}-{os.getpid()}"
        os.rename(old, doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def verify_checkpoint(path: Path) -> Optional[str]:
    """None when ``path`` is a complete checkpoint, else the reason it is not."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return f"{path}: no {MANIFEST} (incomplete checkpoint)"
    try:
        info = json.loads(manifest.read_text())
    except json.JSONDecodeError as exc:
        return f"{path}: unreadable {MANIFEST} ({exc})"
    if info.get("format") != FORMAT:
        return f"{path}: not a training checkpoint (format {info.get('format')!r})"
    for fname, size in info.get("files", {}).items():
        f = path / fname
        if not f.is_file() or f.stat().st_size != size:
            return f"{path}: {fname} missing or of the wrong size"
    return None


def latest_checkpoint(root: str | Path) -> Optional[Path]:
    """The newest complete checkpoint under ``root`` (incomplete ones are skipped), or None."""
    for path in reversed(list_checkpoints(root)):
        if verify_checkpoint(path) is None:
            return path
    return None


# --------------------------------------------------------------------------------------------- loading


@dataclass
class LoadedCheckpoint:
    path: Path
    state: TrainerState
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    scaler: dict[str, Any]
    config_yaml: str
    rng_json: dict[str, Any]
    rng_tensors: dict[str, torch.Tensor]


def load_checkpoint(path: str | Path, model: DepthFlowNet, map_location: str = "cpu") -> LoadedCheckpoint:
    """Read checkpoint ``path`` into ``model`` (in place) and return the rest of the training state.

    Raises:
        FileNotFoundError: no such directory.
        CheckpointError: incomplete checkpoint, or the stored architecture differs from ``model``'s
            (the message names both signatures and the differing config fields).
    """
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"training checkpoint not found: {path}")
    problem = verify_checkpoint(path)
    if problem:
        raise CheckpointError(problem)
    expected: NetConfig = model.cfg
    try:
        stored, _ = load_model(path / "model.safetensors", map_location=map_location, expected=expected)
    except CheckpointError as exc:
        raise CheckpointError(f"cannot resume from {path}: {exc}. Resume with the config the run was started "
                              f"with (saved as {path / 'config.yaml'}) or start a new run directory.") from None
    model.load_state_dict(stored.state_dict())
    trainer = json.loads((path / "trainer.json").read_text())
    opt_tensors = load_file(str(path / "optimizer.safetensors"), device=map_location)
    rng_tensors = load_file(str(path / "rng.safetensors"), device="cpu")
    st = trainer["state"]
    return LoadedCheckpoint(
        path=path,
        state=TrainerState(**st),
        optimizer=join_optimizer_state(opt_tensors, trainer["optimizer"]),
        schedule=trainer.get("schedule", {}),
        scaler=trainer.get("scaler", {}),
        config_yaml=(path / "config.yaml").read_text(),
        rng_json=trainer["rng"],
        rng_tensors=rng_tensors,
    )
