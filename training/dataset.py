"""The training data: configured sources -> clips -> augmented samples, in an order that can resume.

Why a module of its own: what a training step reads is decided here, apart from how the step is taken
(``training.train``) and when which terms and groups train (``training.schedule``).

- :func:`build_dataset` opens every ``data.train`` source (``open_source`` spec), optionally caches or
  shrinks it (:class:`CachedSource`, :func:`shrink_frame`), attaches the geometry teacher
  (``training.geometry_teacher``), cuts ``ClipDataset`` clips and augments them with exact K
  (``training.augment.AugmentedClips``);
- :class:`ResumableSampler` shards each epoch per rank (a ``DistributedSampler``) and can start
  mid-epoch, its order and each batch's input size a pure function of (seed, epoch, position), which
  makes resuming exact.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from torch.utils.data import DistributedSampler

from depth_pose_ros.data.clips import ClipDataset
from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.source import FrameSource, open_source
from depth_pose_ros.geometry.camera import scale_intrinsics
from depth_pose_ros.geometry.two_view_config import TwoViewConfig
from depth_pose_ros.utils.config import ConfigError
from depth_pose_ros.utils.paths import REPO_ROOT
from training.augment import AugmentedClips
from training.config import TrainConfig
from training.geometry_teacher import TeacherDepth
from training.schedule import stage_weights, stages_of


def shrink_frame(frame: Frame, width: int) -> Frame:
    """``frame`` at ``width`` pixels wide (area resampling, aspect kept, K scaled exactly); dense GT is
    dropped (a resampled depth edge is no longer exact). Used for recorded sources far larger than the
    network: the geometry teacher still reads them at their recorded size (training.geometry_teacher)."""
    h, w = frame.height, frame.width
    new_h = max(1, int(round(h * width / w)))
    image = cv2.resize(frame.image, (width, new_h), interpolation=cv2.INTER_AREA)
    K = np.asarray(scale_intrinsics(frame.K, width / w, new_h / h), dtype=np.float64)
    return dataclasses.replace(frame, image=image, K=K, depth=None, flow_next=None, flow_prev=None,
                               occlusion_next=None, moving_mask=None, stereo_image=None)


class CachedSource:
    """Keep every frame read from a source in memory (small training sets, e.g. the synthetic world).

    The synthetic world ray-casts every frame it returns (frame rates: docs/bench_synthetic.md); a
    100-frame training set read thousands of times is worth caching. Dense GT (depth, flow, masks) is
    dropped unless ``keep_gt`` (the losses never read it), so a frame costs only its image
    (400 frames of 192x640 RGB: 400 x 192 x 640 x 3 bytes = 147 MB). Exposes what
    ``ClipDataset`` needs: len, getitem, stamps, fps, name and the ``has_*`` flags.
    """

    def __init__(self, source: Any, keep_gt: bool = False, keep_depth: bool = False, width: int = 0) -> None:
        self.source = source
        self.keep_gt = keep_gt
        self.keep_depth = keep_depth  # losses.depth_supervised reads the exact depth
        self.width = int(width)  # > 0: frames shrunk to this width (aspect and exact K kept), see SourceConfig
        self.name = getattr(source, "name", type(source).__name__)
        self.fps = getattr(source, "fps", None)
        for flag in ("has_gt_pose", "has_gt_depth", "has_gt_flow", "has_stereo"):
            setattr(self, flag, getattr(source, flag, False))
        self._cache: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> Any:
        if i not in self._cache:
            frame = self.source[i]
            if not self.keep_gt:  # the losses never read dense GT: do not hold it in memory
                frame = dataclasses.replace(frame, depth=frame.depth if self.keep_depth else None, flow_next=None,
                                            flow_prev=None, occlusion_next=None, moving_mask=None)
            if 0 < self.width < frame.width:
                frame = shrink_frame(frame, self.width)
            self._cache[i] = frame
        return self._cache[i]

    def stamps(self) -> np.ndarray:
        return self.source.stamps()


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` (per-rank shard, order from (seed, epoch)) that can start mid-epoch.

    Yields ``(clip index, epoch)`` so the dataset can seed each sample's augmentation from them, and with
    several input sizes ``(clip index, epoch, size index)``, the size fixed per batch of ``batch_size``.
    """

    def __init__(self, dataset: Any, num_replicas: int = 1, rank: int = 0, shuffle: bool = True,
                 seed: int = 0, batch_size: int = 1, num_sizes: int = 1) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=True)
        self.start = 0
        self.batch_size = int(batch_size)
        self.num_sizes = int(num_sizes)

    def size_of_batch(self, batch: int) -> int:
        """The input-size index of the epoch's ``batch``-th batch (a pure function of seed, epoch, batch)."""
        if self.num_sizes <= 1:
            return 0
        return int(np.random.default_rng([self.seed & 0xFFFFFFFF, int(self.epoch), int(batch), 0x5123])
                   .integers(self.num_sizes))

    def set_position(self, epoch: int, start: int) -> None:
        self.set_epoch(epoch)
        self.start = int(start)

    def __iter__(self) -> Iterator[tuple[int, int] | tuple[int, int, int]]:
        indices = list(super().__iter__())
        for k, i in enumerate(indices[self.start:], start=self.start):
            if self.num_sizes > 1:
                yield (int(i), int(self.epoch), self.size_of_batch(k // self.batch_size))
            else:
                yield (int(i), int(self.epoch))

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start)


def build_dataset(cfg: TrainConfig, channels: int, cache: bool = True) -> AugmentedClips:
    """All training sources as one dataset of augmented clips."""
    datasets = []
    d = cfg.data
    keep_depth = any(stage_weights(cfg, st).get("depth_supervised", 0) > 0 for st in stages_of(cfg))
    for i, src_cfg in enumerate(d.train):
        opts = dict(src_cfg.options)
        if d.stereo:
            spec = src_cfg.spec
            if not spec.startswith("synthetic"):
                opts.setdefault("stereo", True)
        try:
            source: FrameSource | CachedSource = open_source(src_cfg.spec, **opts)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"data.train[{i}] ({src_cfg.spec}): {exc}") from None
        if cache and (src_cfg.spec.startswith("synthetic") or src_cfg.width > 0):
            source = CachedSource(source, keep_depth=keep_depth, width=src_cfg.width)
        teacher = None
        if d.teacher.size_factor > 0:
            out_hw = tuple(np.asarray(source[0].image).shape[:2])
            cache_dir = Path(d.teacher.cache_dir) if d.teacher.cache_dir else None
            if cache_dir is not None and not cache_dir.is_absolute():
                cache_dir = REPO_ROOT / cache_dir
            teacher = TeacherDepth.build(src_cfg.spec, opts, d.teacher.size_factor, out_hw, TwoViewConfig(),
                                         cache_dir=cache_dir, log=lambda line: print(line, flush=True),
                                         with_flow=d.teacher.flow)
        ds = ClipDataset(source, clip_len=d.clip_len, stride=d.stride, with_stereo=d.stereo,
                         max_gap_periods=d.max_gap_periods, teacher=teacher)
        if len(ds) == 0:
            raise ConfigError(f"data.train[{i}] ({src_cfg.spec}): no valid clip of {d.clip_len} frames")
        datasets.extend([ds] * int(src_cfg.repeat))
    return AugmentedClips(datasets, (d.height, d.width), channels, cfg.augment, seed=cfg.seed, train=True,
                          extra_sizes=tuple((int(h), int(w)) for h, w in d.extra_sizes))
