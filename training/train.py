"""The trainer: data -> network -> configured losses -> guarded optimiser step, with exact resume.

Why a module of its own: it takes the steps -- network and losses as one DDP module (:class:`TrainStep`),
the guarded update, logging, evaluation, checkpoints and resume (:class:`Trainer`, :func:`train`). What
it reads is ``training.dataset``; the learning rate and stage of a step are ``training.schedule``.

``train(config, run_dir)`` (or ``depth-pose train``) runs ``config.steps`` optimisation steps:

1. clips from the configured sources (``training.dataset.build_dataset``: ``open_source`` +
   ``ClipDataset``), augmented with exact K (``training.augment``), sharded per rank by
   ``training.dataset.ResumableSampler`` (a ``DistributedSampler`` that can start mid-epoch);
2. ``DepthFlowNet.forward_clip`` on the clip (AMP on CUDA, optional bf16 autocast on CPU) and the loss
   terms selected by the config (``training.losses_from_config``), in float32;
3. backward (DDP averages the gradients across ranks), gradient clipping, and the NaN guard: a step
   whose loss or gradient norm is not finite is skipped (no optimiser update) on every rank, counted,
   and training stops with a clear message after ``nan_guard.max_consecutive`` in a row;
4. logging (tqdm bar with ETA, TensorBoard scalars and image panels, ``losses.jsonl``), periodic
   held-out evaluation (``eval.jsonl``) and atomic training checkpoints (``training.state``).

A corrupt or unreadable frame does not stop training: ``ClipDataset`` serves the next readable clip in
its place, and the frames skipped reach the loop with the batch (``TrainBatch.skipped``); each is
printed once, counted in ``losses.jsonl`` (``skipped_frames``) and listed in the summary.

Exact resume: everything random is a pure function of saved state. Augmentation draws from a
per-sample RNG seeded by (seed, epoch, clip index); the sampler order from (seed, epoch); the
auto-mask tie-breaking noise from a generator seeded by (seed, rank, step); the two-view module is
seeded by its config. A checkpoint stores the step, epoch and position in the epoch, so a run
killed at any point and resumed from its last checkpoint repeats the very same steps.

The learning rate is a pure function of the step (``training.schedule.lr_at``), set before each update,
so the "scheduler state" is the step itself.
"""
from __future__ import annotations

import contextlib
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from depth_pose_ros.data.source import skipped_summary
from depth_pose_ros.nets.checkpoint import load_model, save_model
from depth_pose_ros.nets.device import resolve_precision
from depth_pose_ros.nets.model import ClipOutput, DepthFlowNet, FlowOutput, build_model
from depth_pose_ros.nets.pose import PoseOutput
from depth_pose_ros.utils.config import ConfigError, dict_diff
from depth_pose_ros.utils.json_output import jsonable as _jsonable
from training import distributed
from training.augment import AugmentedClips, TrainBatch, collate_samples
from training.collapse_guard import (
    CollapseGuard,
    DepthCollapseError,
    Verdict,
    depth_diagnostics,
    lr_scale,
    record_recovery,
    recoveries,
)
from training.config import StageConfig, TrainConfig
from training.dataset import ResumableSampler, build_dataset
from training.losses_from_config import LossAssembler, LossResult
from training.periodic_eval import HeldOut, append_jsonl, evaluate, load_heldout
from training.schedule import apply_stage, lr_at, stage_at, stage_weights, stages_of, trainable_groups
from training.state import TrainerState, latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class NonFiniteLossError(RuntimeError):
    """Training stopped by the NaN guard."""


# ------------------------------------------------------------------------------------- step module


def _float_output(out: ClipOutput) -> ClipOutput:
    """The network outputs in float32 (the losses run outside autocast)."""
    def f(xs):
        return None if xs is None else [x.float() for x in xs]

    flows = [FlowOutput(f(fl.forward), f(fl.backward), f(fl.non_occluded_fw), f(fl.non_occluded_bw), fl.strides)
             for fl in out.flows]
    poses = None if out.poses is None else [PoseOutput(p.axis_angle.float(), p.translation.float(),
                                                       p.T_prev_cur.float()) for p in out.poses]
    return ClipOutput([f(d) for d in out.depths], flows, poses, out.state, out.last_features)


def _output_tensors(out: ClipOutput) -> list[torch.Tensor]:
    tensors = [d[0] for d in out.depths]
    for fl in out.flows:
        tensors += [fl.forward[0]] + ([fl.backward[0]] if fl.backward is not None else [])
    tensors += [p.T_prev_cur for p in out.poses or []]
    return tensors


class TrainStep(nn.Module):
    """Network + loss assembly as one module, so that DDP sees exactly the parameters a loss used."""

    def __init__(self, model: DepthFlowNet, assembler: LossAssembler, cfg: TrainConfig) -> None:
        super().__init__()
        self.model = model
        self.assembler = assembler
        self.truncate = cfg.truncate_every or None
        self.flow_trains_encoder = cfg.flow_trains_encoder

    def forward(self, batch: TrainBatch, weights: dict[str, float], autocast: Any,
                generator: Optional[torch.Generator], want_maps: bool, step: int) -> LossResult:
        with autocast():
            out = self.model.forward_clip(batch.net_images, truncate_every=self.truncate,
                                          flow_trains_encoder=self.flow_trains_encoder)
        out = _float_output(out)
        tensors = _output_tensors(out)
        if not all(bool(torch.isfinite(t).all()) for t in tensors):
            # Never warp with a non-finite depth/flow/pose: grid_sample's CPU backward can crash on NaN
            # coordinates. A NaN loss wired to every output lets the NaN guard skip the step instead.
            nan_loss = sum(t.sum() for t in tensors) * float("nan")
            assert isinstance(nan_loss, torch.Tensor)  # a sum of tensor sums: tensors holds the non-finite one
            return LossResult(total=nan_loss, terms={"non_finite_network_output": nan_loss.detach()}, maps={},
                              pose_ok_ratio=0.0)
        result = self.assembler(batch.images, batch.K, out, weights, batch.stereo_images, batch.stereo_T,
                              generator=generator, want_maps=want_maps, step=step, teacher_depth=batch.teacher_depth,
                              teacher_poses=batch.teacher_poses,
                              teacher_flows=batch.teacher_flows, gt_depth=batch.gt_depth)
        d = self.model.cfg.depth
        result.diagnostics.update(depth_diagnostics(torch.cat([x[0] for x in out.depths]), d.min_depth,
                                                    d.max_depth))
        return result


# ------------------------------------------------------------------------------------------ trainer


@dataclass
class TrainSummary:
    run_dir: Path
    step: int
    last_loss: float
    nan_skipped: int
    resumed_from: Optional[Path] = None
    checkpoints: list[Path] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    skipped_frames: list[tuple[str, int, str]] = field(default_factory=list)  # (source, index, reason)


class Trainer:
    """One training run in ``run_dir`` (auto-resumed from its newest checkpoint unless told otherwise).

    Args:
        cfg: the training config.
        run_dir: output folder (checkpoints, TensorBoard events, losses.jsonl, eval.jsonl, config.yaml).
        resume: ``"auto"`` (newest checkpoint in ``run_dir`` if any), ``"never"`` (refuse a run_dir
            that already holds checkpoints), or the path of a checkpoint directory.
        dataset: optional ready dataset (tests); default: built from ``cfg.data``.
        heldout: optional held-out data for periodic evaluation; default: from ``cfg.eval.source``.
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, resume: str = "auto",
                 dataset: Optional[AugmentedClips] = None, heldout: Optional[HeldOut] = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dist = distributed.init_distributed(cfg.device)
        self.device = self.dist.device
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        self._seed_everything(cfg.seed)
        self.precision = self._precision()

        self.model = build_model(cfg.model)
        if cfg.init_from:
            init, _ = load_model(cfg.init_from, expected=cfg.model)
            self.model.load_state_dict(init.state_dict())
        self.model.to(self.device)
        self.assembler = LossAssembler(cfg.losses, cfg.pose_source, cfg.model, cfg.two_view, cfg.two_view_flow)
        for st in stages_of(cfg):  # every stage's weights must suit the model, checked before training
            self.assembler.check(stage_weights(cfg, st), cfg.model)
        self.step_module = TrainStep(self.model, self.assembler, cfg)
        self.wrapped: nn.Module = self.step_module
        self._stage_index = -1

        self.optimizer = self._optimizer()
        self.scaler = torch.amp.GradScaler("cuda") if self.precision == "fp16" else None
        self.state = TrainerState()
        self.dataset = dataset if dataset is not None else build_dataset(cfg, cfg.model.encoder.image_channels)
        self.sampler = ResumableSampler(self.dataset, self.dist.world_size, self.dist.rank, shuffle=True,
                                        seed=cfg.seed, batch_size=cfg.data.batch_size,
                                        num_sizes=1 + len(cfg.data.extra_sizes))
        per_rank = len(self.dataset) // self.dist.world_size
        if per_rank < cfg.data.batch_size:
            raise ConfigError(f"data: {len(self.dataset)} clips give {per_rank} per process, fewer than "
                              f"data.batch_size={cfg.data.batch_size}")
        self.heldout = heldout
        self.guard = CollapseGuard(cfg.collapse_guard, self.run_dir)
        self.resumed_from: Optional[Path] = None
        self._resume(resume)
        self.writer: Optional[SummaryWriter] = None
        self.evals: list[dict[str, Any]] = []
        self.skipped_frames: dict[tuple[str, int], str] = {}  # unreadable frames this rank's loader skipped

    # ------------------------------------------------------------------ setup helpers
    def _seed_everything(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed & 0xFFFFFFFF)
        torch.manual_seed(seed)

    def _precision(self) -> str:
        """``auto``: fp16 AMP on CUDA, fp32 on every CPU (nets.device.resolve_precision)."""
        try:
            return resolve_precision(self.cfg.precision, self.device, auto_cpu_bf16=False)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    def autocast(self) -> Any:
        if self.precision == "fp16":
            return torch.autocast("cuda", dtype=torch.float16)
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        params = list(self.model.parameters())
        cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
        # o.betas is typed as a pair; tuple() also takes a list set in code (a wrong length fails in the optimiser)
        betas = cast("tuple[float, float]", tuple(o.betas))
        return cls(params, lr=o.lr, betas=betas, weight_decay=o.weight_decay)

    @property
    def checkpoint_root(self) -> Path:
        return self.run_dir / "checkpoints"

    def _resume(self, resume: str) -> None:
        if resume == "never":
            if list_checkpoints(self.checkpoint_root):
                raise ConfigError(f"{self.run_dir} already holds checkpoints; resume it (the default) or choose "
                                  "another run directory")
            return
        if resume == "auto":
            path = latest_checkpoint(self.checkpoint_root)
            if path is None:
                return
        else:
            path = Path(resume)
            if path.is_dir() and (path / "checkpoints").is_dir():  # a run directory
                found = latest_checkpoint(path / "checkpoints")
                if found is None:
                    raise FileNotFoundError(f"no complete checkpoint under {path / 'checkpoints'}")
                path = found
        ck = load_checkpoint(path, self.model, map_location=str(self.device))
        self.model.to(self.device)
        self.optimizer.load_state_dict(ck.optimizer)
        if self.scaler is not None and ck.scaler:
            self.scaler.load_state_dict(ck.scaler)
        self.state = ck.state
        if self.dist.is_main:
            from training.state import restore_rng

            restore_rng(ck.rng_json, ck.rng_tensors)
            self._warn_config_changes(ck.config_yaml, path)
        self.resumed_from = path

    def _warn_config_changes(self, stored_yaml: str, path: Path) -> None:
        """Resuming with other settings is allowed (e.g. more steps), but said out loud."""
        import yaml

        diffs = dict_diff(yaml.safe_load(stored_yaml) or {}, self.cfg.to_dict())
        if diffs:
            print(f"resuming {path} with a changed config: {'; '.join(diffs[:8])}", flush=True)

    # ------------------------------------------------------------------ stages
    def _enter_stage(self) -> StageConfig:
        index, stage = stage_at(self.cfg, self.state.step)
        if index != self._stage_index:
            apply_stage(self.model, stage)
            # DDP registers the trainable parameters at construction: rebuild on every change.
            self.wrapped = distributed.wrap(self.step_module, self.dist)
            self._stage_index = index
            if self.dist.is_main and len(stages_of(self.cfg)) > 1:
                print(f"step {self.state.step}: stage '{stage.name}' trains {sorted(trainable_groups(stage))}",
                      flush=True)
        return stage

    def _set_train_mode(self, stage: StageConfig) -> None:
        self.model.train()
        apply_stage(self.model, stage)  # frozen groups back to eval mode (BatchNorm statistics fixed)

    # ------------------------------------------------------------------ data
    def _batches(self) -> Iterator[TrainBatch]:
        while True:
            self.sampler.set_position(self.state.epoch, self.state.position)
            gen = torch.Generator()
            gen.manual_seed(self.cfg.seed * 1_000_003 + self.state.epoch)
            loader = DataLoader(self.dataset, batch_size=self.cfg.data.batch_size, sampler=self.sampler,
                                collate_fn=collate_samples, num_workers=self.cfg.data.num_workers, drop_last=True,
                                generator=gen, pin_memory=self.device.type == "cuda")
            yield from loader
            self.state.epoch += 1
            self.state.position = 0

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: TrainBatch, want_maps: bool = False) -> tuple[LossResult, float, bool]:
        """Forward, backward, guarded update. Returns (loss result, grad norm, applied)."""
        stage = self._enter_stage()
        self._set_train_mode(stage)
        weights = stage_weights(self.cfg, stage)
        batch = batch.to(self.device)
        gen = torch.Generator(device=self.device)
        gen.manual_seed((self.cfg.seed * 1_000_003 + self.dist.rank * 7919 + self.state.step) & 0x7FFFFFFFFFFFFFFF)
        lr = self.lr()
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        result = self.compute_loss(batch, weights, gen, want_maps)
        loss = result.total
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        max_norm = self.cfg.optim.grad_clip if self.cfg.optim.grad_clip > 0 else float("inf")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm)) if params else 0.0
        loss_ok = bool(torch.isfinite(loss.detach()))
        grad_ok = math.isfinite(grad_norm)
        ok = distributed.all_true(loss_ok and grad_ok, self.dist)
        applied = False
        if self.scaler is not None and distributed.all_true(loss_ok, self.dist) and not ok:
            # fp16 overflow of the gradients: the scaler skips the update and lowers its scale (normal AMP)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.state.nan_consecutive = 0
        elif ok:
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.state.nan_consecutive = 0
            applied = True
        else:
            if self.scaler is not None:
                self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            self.state.nan_skipped += 1
            self.state.nan_consecutive += 1
            if self.state.nan_consecutive >= self.cfg.nan_guard.max_consecutive:
                terms = {k: float(v) for k, v in result.terms.items()}
                raise NonFiniteLossError(
                    f"training stopped at step {self.state.step}: {self.state.nan_consecutive} consecutive steps "
                    f"with a non-finite loss or gradient (nan_guard.max_consecutive="
                    f"{self.cfg.nan_guard.max_consecutive}; last loss terms {terms}, grad norm {grad_norm}). "
                    "No update was applied in those steps; lower optim.lr, check the data, or resume from the "
                    f"last checkpoint in {self.checkpoint_root}.")
        self.state.step += 1
        return result, grad_norm, applied

    def lr(self, step: Optional[int] = None) -> float:
        """The learning rate of ``step`` (default: the next one): the schedule's, times what collapse
        recoveries left."""
        return lr_at(self.cfg, self.state.step if step is None else step) * lr_scale(self.state.extra)

    def _guard(self, verdict: Verdict) -> None:
        """Carry out the collapse guard's verdict: nothing, back to the last healthy weights, or stop."""
        if verdict.action == "ok" or not self.dist.is_main:
            return
        step = self.state.step
        if verdict.action == "stop":
            raise DepthCollapseError(
                f"training stopped at step {step}: {verdict.reason}. The weights of the last healthy evaluation "
                f"are in {self.guard.last_good}; lower optim.lr or change the data, then resume or fine-tune from "
                "them (init_from).")
        init, _ = load_model(self.guard.last_good, expected=self.cfg.model)
        self.model.load_state_dict(init.state_dict())
        self.model.to(self.device)
        self.optimizer = self._optimizer()
        record_recovery(self.state.extra, self.cfg.collapse_guard.lr_factor, step, verdict.reason)
        message = (f"step {step}: depth collapse: {verdict.reason}. Back to {self.guard.last_good} with a fresh "
                   f"optimiser and learning rate x{lr_scale(self.state.extra):.3g} "
                   f"(recovery {recoveries(self.state.extra)} of {self.cfg.collapse_guard.max_recoveries}).")
        print(message, flush=True)
        append_jsonl(self.run_dir / "eval.jsonl", {"step": step, "collapse_recovery": verdict.reason,
                                                   "lr_scale": lr_scale(self.state.extra)})

    def compute_loss(self, batch: TrainBatch, weights: dict[str, float], generator: Optional[torch.Generator],
                     want_maps: bool) -> LossResult:
        """The loss of one batch (through DDP when distributed). Tests override it to inject faults."""
        return self.wrapped(batch, weights, self.autocast, generator, want_maps, self.state.step)

    # ------------------------------------------------------------------ outputs
    def _open_logs(self) -> None:
        if not self.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(self.cfg.to_yaml())
        if self.cfg.log.tensorboard and self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tb"), purge_step=self.state.step or None)

    def _log(self, result: LossResult, grad_norm: float, applied: bool, seconds: float, want_scalars: bool) -> None:
        if not self.dist.is_main:
            return
        step = self.state.step  # already incremented: the number of steps done
        record = {"step": step, "loss": _jsonable(float(result.total.detach())),
                  "terms": {k: _jsonable(float(v)) for k, v in result.terms.items()},
                  "lr": self.lr(step - 1), "grad_norm": _jsonable(grad_norm),
                  "applied": applied,
                  "pose_ok": result.pose_ok_ratio, **{k: _jsonable(v) for k, v in result.diagnostics.items()},
                  "epoch": self.state.epoch, "seconds": round(seconds, 4),
                  "skipped_frames": len(self.skipped_frames)}
        with open(self.run_dir / "losses.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None and want_scalars:
            w = self.writer
            w.add_scalar("loss/total", float(result.total.detach()), step)
            for k, v in result.terms.items():
                w.add_scalar(f"loss/{k}", float(v), step)
            w.add_scalar("train/lr", record["lr"], step)
            w.add_scalar("train/grad_norm", grad_norm if math.isfinite(grad_norm) else -1.0, step)
            w.add_scalar("train/pose_ok_ratio", result.pose_ok_ratio, step)
            for k, value in result.diagnostics.items():
                w.add_scalar(f"train/{k}", value, step)
            w.add_scalar("train/nan_skipped", self.state.nan_skipped, step)
            w.add_scalar("time/step_s", seconds, step)
        if self.writer is not None and result.maps:
            self._log_images(result.maps, step)

    def _log_images(self, maps: dict[str, torch.Tensor], step: int) -> None:
        from depth_pose_ros.utils.viz import colorize_depth, flow_to_color

        writer = self.writer
        assert writer is not None  # _log calls this only with a writer
        for name, x in maps.items():
            x = x[0]
            if name == "depth":
                img = colorize_depth(x[0].numpy())
            elif name == "flow":
                img = flow_to_color(x.permute(1, 2, 0).numpy())
            elif name == "image":
                img = (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
                img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img
            else:  # masks / error maps: gray, normalised
                m = x[0].numpy()
                top = float(np.percentile(m, 99)) if m.size else 1.0
                img = (np.clip(m / max(top, 1e-6), 0, 1) * 255).astype(np.uint8)
                img = np.repeat(img[..., None], 3, axis=2)
            writer.add_image(f"panels/{name}", img, step, dataformats="HWC")

    def save(self) -> Path:
        """Write a training checkpoint of the current step (rank 0) and return its directory."""
        path = save_checkpoint(self.checkpoint_root, self.model, self.optimizer, self.state, self.cfg.to_yaml(),
                               schedule_state={"kind": "lr_at(step)", "step": self.state.step,
                                               "lr": lr_at(self.cfg, self.state.step)},
                               scaler_state=self.scaler.state_dict() if self.scaler is not None else None,
                               keep_last=self.cfg.checkpoint.keep_last)
        return path

    def run_eval(self) -> Optional[dict[str, Any]]:
        if not self.dist.is_main:
            return None
        if self.heldout is None:
            e = self.cfg.eval
            self.heldout = load_heldout(e.source, self.cfg.data.height, self.cfg.data.width,
                                        self.cfg.model.encoder.image_channels, e.max_frames)
        metrics = evaluate(self.model, self.heldout, self.cfg.eval.two_view, self.device)
        record = {"step": self.state.step, **metrics}
        append_jsonl(self.run_dir / "eval.jsonl", record)
        if self.writer is not None:
            for k, v in metrics.items():
                self.writer.add_scalar(f"eval/{k}", v, self.state.step)
        self.evals.append(record)
        verdict = self.guard.observe_eval(metrics, recoveries(self.state.extra))
        if verdict.action == "ok" and self.cfg.collapse_guard.enabled:
            save_model(self.guard.last_good, self.model, extra={"step": self.state.step, "method": self.cfg.method})
        self._guard(verdict)
        return record

    def _note_skipped(self, batch: TrainBatch, bar: Any) -> None:
        """Print each unreadable frame the loader skipped once (through the bar so it stays intact)."""
        for source, index, reason in batch.skipped:
            if (source, index) in self.skipped_frames:
                continue
            self.skipped_frames[(source, index)] = reason
            line = f"rank {self.dist.rank}: skipped unreadable frame {index} of {source}: {reason}"
            if bar is not None:
                bar.write(line)
            else:
                print(line, flush=True)

    # ------------------------------------------------------------------ the loop
    def run(self) -> TrainSummary:
        cfg = self.cfg
        self._open_logs()
        bar = None
        if self.dist.is_main and cfg.log.progress:
            from tqdm import tqdm

            if cfg.max_minutes > 0:  # a time budget: the bar (and its ETA) counts step seconds, not steps
                bar = tqdm(total=round(60.0 * cfg.max_minutes), initial=round(self.state.train_seconds), unit="s",
                           dynamic_ncols=True, desc=cfg.method,
                           bar_format="{l_bar}{bar}| {n:.0f}/{total} s [{elapsed}<{remaining}{postfix}]")
            else:
                bar = tqdm(total=cfg.steps, initial=self.state.step, dynamic_ncols=True, desc=cfg.method)
        last_loss = float("nan")
        saved: list[Path] = []
        batches = self._batches()
        if cfg.init_from and cfg.eval.every and cfg.collapse_guard.enabled and self.state.step == 0:
            self.run_eval()  # the starting point's metrics, and the collapse guard's first healthy weights
        try:
            while self.state.step < cfg.steps and not self._out_of_time():
                batch = next(batches)
                self._note_skipped(batch, bar)
                self.state.position += cfg.data.batch_size
                t0 = time.perf_counter()
                next_step = self.state.step + 1
                want_maps = bool(cfg.log.image_every) and next_step % cfg.log.image_every == 0 and self.dist.is_main
                result, grad_norm, applied = self.train_step(batch, want_maps=want_maps)
                seconds = time.perf_counter() - t0
                self.state.train_seconds += seconds
                last_loss = float(result.total.detach())
                want_scalars = cfg.log.every > 0 and (self.state.step % cfg.log.every == 0 or self.state.step == 1)
                self._log(result, grad_norm, applied, seconds, want_scalars)
                if want_scalars:
                    self._guard(self.guard.observe_step(result.diagnostics, recoveries(self.state.extra)))
                if bar is not None:
                    # the last step overshoots the time budget: the bar stops at its total
                    bar.update(min(seconds, max(0.0, bar.total - bar.n)) if cfg.max_minutes > 0 else 1)
                    bar.set_postfix(step=self.state.step, loss=f"{last_loss:.4f}", skipped=self.state.nan_skipped)
                if cfg.eval.every and self.state.step % cfg.eval.every == 0:
                    self.run_eval()
                if cfg.checkpoint.every and self.state.step % cfg.checkpoint.every == 0 and self.state.step < cfg.steps:
                    if self.dist.is_main:
                        saved.append(self.save())
                    distributed.barrier(self.dist)
            distributed.broadcast_buffers(self.model, self.dist)
            if self.dist.is_main:
                saved.append(self.save())
                save_model(self.run_dir / "model.safetensors", self.model,
                           extra={"step": self.state.step, "method": cfg.method,
                                  "height": cfg.data.height, "width": cfg.data.width})
            distributed.barrier(self.dist)
        finally:
            if bar is not None:
                bar.close()
            if self.writer is not None:
                self.writer.flush()
        skipped = [(source, index, reason) for (source, index), reason in self.skipped_frames.items()]
        if skipped:
            print(f"rank {self.dist.rank}: "
                  + skipped_summary([(f"{source}:{index}", reason) for source, index, reason in skipped]),
                  flush=True)
        return TrainSummary(self.run_dir, self.state.step, last_loss, self.state.nan_skipped, self.resumed_from,
                            saved, self.evals, skipped)

    def _out_of_time(self) -> bool:
        """True once ``max_minutes`` of step time (summed over resumes) are spent; all ranks agree."""
        if self.cfg.max_minutes <= 0:
            return False
        spent = self.state.train_seconds >= 60.0 * self.cfg.max_minutes
        return not distributed.all_true(not spent, self.dist)  # stop when any rank is out of time

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        distributed.shutdown(self.dist)


def train(cfg: TrainConfig, run_dir: str | Path, resume: str = "auto") -> TrainSummary:
    """Run (or resume) a training run; see :class:`Trainer`."""
    trainer = Trainer(cfg, run_dir, resume=resume)
    try:
        return trainer.run()
    finally:
        trainer.close()

