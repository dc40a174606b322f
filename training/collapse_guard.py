"""Noticing a depth collapse (or divergence) during training, and what to do about it.

Why: a self-supervised depth network can fall into a state it never leaves: every sigmoid of the depth
decoder saturated, so the depth is one constant map (usually the far bound), the smoothness term is 0 and
the gradients through the saturated sigmoid vanish. The losses keep a plausible value, so without a check
a long run trains on in silence. Two signs are watched:

* every logged step: the spread of the predicted depth (std of log depth over each target image, and the
  share of pixels at the depth bounds, both in ``LossResult.diagnostics``); ``patience`` logged steps in a
  row with a spread below ``min_log_std`` is a collapse;
* every periodic evaluation: held-out AbsRel no better than a constant depth map on the same frames
  (``worse_than_constant`` x its AbsRel) is a collapse or a divergence.

A healthy evaluation saves the weights as ``last_good.safetensors`` in the run folder, and arms the guard (a
fine-tune from ``init_from`` is evaluated before its first step for that). On a collapse the run
reloads them, starts a fresh optimiser (the Adam moments that walked into the collapse are dropped) and
multiplies the learning rate by ``lr_factor`` (kept in the trainer state, so a resumed run keeps it); after
``max_recoveries`` it stops with :class:`DepthCollapseError`, whose message says what was seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from training.config import CollapseGuardConfig

LAST_GOOD = "last_good.safetensors"


class DepthCollapseError(RuntimeError):
    """The depth collapsed (or diverged) more often than ``collapse_guard.max_recoveries`` allows."""


def depth_diagnostics(depth: torch.Tensor, min_depth: float, max_depth: float) -> dict[str, float]:
    """Spread of a Bx1xHxW depth batch: mean over items of the std of log depth, the mean log depth, and
    the share of pixels within 1 % of either depth bound (saturated sigmoids)."""
    d = depth.detach().float().clamp_min(1e-6)
    logs = torch.log(d).flatten(1)
    at_bound = ((d <= min_depth * 1.01) | (d >= max_depth * 0.99)).float().mean()
    return {"depth_log_std": float(logs.std(dim=1, unbiased=False).mean()),
            "depth_log_mean": float(logs.mean()),  # the network's units: free to drift under scale-free terms
            "depth_at_bound": float(at_bound)}


@dataclass
class Verdict:
    """What the guard decided for one observation: nothing, recover, or stop (with the reason)."""

    action: str  # "ok" | "recover" | "stop"
    reason: str = ""


class CollapseGuard:
    """Watches the depth spread of logged steps and the periodic evaluations of one run."""

    def __init__(self, cfg: CollapseGuardConfig, run_dir: Path) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.flat_steps = 0

    @property
    def last_good(self) -> Path:
        return self.run_dir / LAST_GOOD

    @property
    def armed(self) -> bool:
        """Watching starts at the run's first healthy evaluation: a network trained from scratch starts out
        flat and worse than a constant, which is no collapse."""
        return self.cfg.enabled and self.last_good.is_file()

    def observe_step(self, diagnostics: dict[str, float], recoveries: int) -> Verdict:
        """A logged step's diagnostics; a run of ``patience`` constant maps is a collapse."""
        if not self.armed or "depth_log_std" not in diagnostics:
            return Verdict("ok")
        spread = diagnostics["depth_log_std"]
        if math.isfinite(spread) and spread >= self.cfg.min_log_std:
            self.flat_steps = 0
            return Verdict("ok")
        self.flat_steps += 1
        if self.flat_steps < self.cfg.patience:
            return Verdict("ok")
        self.flat_steps = 0
        reason = (f"the predicted depth is one constant map on {self.cfg.patience} logged steps in a row "
                  f"(std of log depth {spread:.4g} < collapse_guard.min_log_std={self.cfg.min_log_std}; "
                  f"{100 * diagnostics.get('depth_at_bound', float('nan')):.0f} % of pixels at a depth bound)")
        return self._act(reason, recoveries)

    def observe_eval(self, metrics: dict[str, Any], recoveries: int) -> Verdict:
        """A periodic evaluation; AbsRel no better than the constant map's is a collapse."""
        if not self.armed:
            return Verdict("ok")
        rel, const = metrics.get("depth_abs_rel"), metrics.get("depth_abs_rel_constant")
        if rel is None or const is None:
            return Verdict("ok")
        if math.isfinite(rel) and rel < self.cfg.worse_than_constant * const:
            return Verdict("ok")
        reason = (f"held-out depth AbsRel {rel:.4g} is no better than a constant depth map ({const:.4g}; "
                  f"collapse_guard.worse_than_constant={self.cfg.worse_than_constant})")
        return self._act(reason, recoveries)

    def _act(self, reason: str, recoveries: int) -> Verdict:
        if recoveries >= self.cfg.max_recoveries:
            return Verdict("stop", f"{reason}; {recoveries} recoveries already made "
                                   f"(collapse_guard.max_recoveries={self.cfg.max_recoveries})")
        return Verdict("recover", reason)


def lr_scale(extra: dict[str, Any]) -> float:
    """The learning-rate multiplier that recoveries left in the trainer state (1 without any)."""
    return float(extra.get("collapse_lr_scale", 1.0))


def recoveries(extra: dict[str, Any]) -> int:
    return int(extra.get("collapse_recoveries", 0))


def record_recovery(extra: dict[str, Any], factor: float, step: int, reason: str) -> None:
    """Note one recovery in the trainer state (saved with every checkpoint)."""
    extra["collapse_lr_scale"] = lr_scale(extra) * float(factor)
    extra["collapse_recoveries"] = recoveries(extra) + 1
    log: list = extra.setdefault("collapse_log", [])
    log.append({"step": int(step), "reason": reason})
