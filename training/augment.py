"""Training samples: clips resized to the network size, augmented, with intrinsics kept exact.

Geometric augmentation changes where a 3D point lands in the image, so K must change with it or the
view-synthesis losses learn a wrong geometry. The rules (pixel centres at integer coordinates):

* resize by (sx, sy): ``geometry.camera.scale_intrinsics`` (``fx' = sx fx``, ``cx' = sx (cx + .5) - .5``);
* crop at (x0, y0): ``geometry.camera.crop_intrinsics`` (``cx' = cx - x0``);
* horizontal flip: ``x' = W - 1 - x``, which is the image of the mirrored world ``X' = -X`` seen
  by the camera with ``cx' = W - 1 - cx`` (fx unchanged). Motions are conjugated by the mirror
  ``M = diag(-1, 1, 1)``; the stereo partner, at +b along x, sits at -b in the mirrored world.

Colour jitter (brightness, contrast, saturation, hue) is the same for every frame of a clip and is
applied to the *network input* only; the losses compare the clean images (Monodepth2), so the
network learns invariance to the jitter without the photometric target moving with it.

Randomness comes from a per-sample seed (training seed, epoch, clip index), so a sample is the same
whatever the number of loader workers, and a resumed run sees exactly the samples it would have.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from depth_pose_ros.data.clips import Clip
from depth_pose_ros.geometry.camera import crop_intrinsics, scale_intrinsics
from training.config import AugmentConfig

MIRROR = np.diag([-1.0, 1.0, 1.0, 1.0])  # X' = M X: the world seen in a horizontally flipped image


@dataclass
class GeometricParams:
    """Resize to ``resized_hw``, crop ``out_hw`` at (x0, y0), then optionally flip horizontally."""

    resized_hw: tuple[int, int]
    x0: int
    y0: int
    out_hw: tuple[int, int]
    flip: bool = False


@dataclass
class ColorParams:
    """Jitter factors (1 = unchanged) and a hue rotation in turns."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0

    @property
    def identity(self) -> bool:
        return (self.brightness, self.contrast, self.saturation, self.hue) == (1.0, 1.0, 1.0, 0.0)


@dataclass
class TrainBatch:
    """A collated batch of training samples (:class:`~depth_pose_ros.data.clips.Clip` s from
    :func:`make_sample`): their fields with a leading batch dimension B (K is Bx3x3), as far as the loop reads
    them. ``stereo_T`` stacks ``Clip.stereo_T``; ``skipped`` names the source of each unreadable frame.
    """

    images: torch.Tensor
    net_images: torch.Tensor
    K: torch.Tensor
    stereo_images: Optional[torch.Tensor] = None
    stereo_T: Optional[torch.Tensor] = None
    gt_depth: Optional[torch.Tensor] = None
    teacher_depth: Optional[torch.Tensor] = None  # sparse, see data.clips.Clip
    teacher_poses: Optional[torch.Tensor] = None  # B x (T-1) x 4 x 4 (mirrored on flips)
    teacher_flow_fw: Optional[torch.Tensor] = None  # B x (T-1) x 2 x H x W
    teacher_flow_bw: Optional[torch.Tensor] = None
    gt_flow: Optional[torch.Tensor] = None
    gt_poses: Optional[torch.Tensor] = None
    sources: tuple[str, ...] = ()
    skipped: tuple[tuple[str, int, str], ...] = ()  # unreadable frames the loader skipped for this batch

    def to(self, device: Any) -> TrainBatch:
        moved: dict[str, Any] = {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                                 for k, v in self.__dict__.items()}
        return TrainBatch(**moved)

    def pin_memory(self) -> TrainBatch:
        """Page-locked copies (DataLoader ``pin_memory=True`` calls this) for faster host-to-GPU copies."""
        pinned: dict[str, Any] = {k: (v.pin_memory() if isinstance(v, torch.Tensor) else v)
                                  for k, v in self.__dict__.items()}
        return TrainBatch(**pinned)

    @property
    def teacher_flows(self) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """``(teacher_flow_fw, teacher_flow_bw)``, or None without teacher flows (a sample has both or neither)."""
        if self.teacher_flow_fw is None:
            return None
        assert self.teacher_flow_bw is not None, "teacher_flow_fw without teacher_flow_bw"
        return self.teacher_flow_fw, self.teacher_flow_bw

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])


# --------------------------------------------------------------------------------------------- sampling


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The RNG of one sample: a pure function of (training seed, epoch, clip index)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(epoch), int(index)])


def sample_geometric(rng: np.random.Generator, cfg: AugmentConfig, out_hw: tuple[int, int],
                     train: bool = True) -> GeometricParams:
    """Random resize-crop window and flip (or a plain resize when ``train`` is False / disabled)."""
    h, w = out_hw
    if not (train and cfg.enabled):
        return GeometricParams((h, w), 0, 0, (h, w), False)
    s = 1.0
    if rng.random() < cfg.resize_crop_prob and cfg.max_scale > 1.0:
        s = float(rng.uniform(1.0, cfg.max_scale))
    rh, rw = max(h, int(round(h * s))), max(w, int(round(w * s)))
    x0 = int(rng.integers(0, rw - w + 1))
    y0 = int(rng.integers(0, rh - h + 1))
    flip = bool(rng.random() < cfg.hflip_prob)
    return GeometricParams((rh, rw), x0, y0, (h, w), flip)


def sample_color(rng: np.random.Generator, cfg: AugmentConfig, train: bool = True) -> ColorParams:
    if not (train and cfg.enabled) or rng.random() >= cfg.color_jitter_prob:
        return ColorParams()
    return ColorParams(
        brightness=float(rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)),
        contrast=float(rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)),
        saturation=float(rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)),
        hue=float(rng.uniform(-cfg.hue, cfg.hue)),
    )


# ----------------------------------------------------------------------------------------- geometric ops


def resize_images(images: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """N x C x H x W -> N x C x h x w, bilinear with pixel-centre alignment (antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == tuple(hw):
        return images
    shrink = hw[0] < images.shape[-2] or hw[1] < images.shape[-1]
    return F.interpolate(images, size=hw, mode="bilinear", align_corners=False, antialias=shrink)


def apply_geometric_K(K: Any, in_hw: tuple[int, int], p: GeometricParams) -> Any:
    """Intrinsics of the augmented image (numpy or torch 3x3), through the shared camera helpers."""
    (h, w), (rh, rw) = in_hw, p.resized_hw
    K2 = scale_intrinsics(K, rw / w, rh / h)
    K2 = crop_intrinsics(K2, p.x0, p.y0)
    if p.flip:
        K2[..., 0, 2] = (p.out_hw[1] - 1) - K2[..., 0, 2]
        K2[..., 0, 1] = -K2[..., 0, 1]  # skew changes sign with x
    return K2


def _crop_flip(x: torch.Tensor, p: GeometricParams) -> torch.Tensor:
    h, w = p.out_hw
    x = x[..., p.y0:p.y0 + h, p.x0:p.x0 + w]
    return torch.flip(x, dims=[-1]) if p.flip else x


def apply_geometric_images(images: torch.Tensor, p: GeometricParams) -> torch.Tensor:
    """T x C x H x W images resized, cropped and flipped."""
    return _crop_flip(resize_images(images, p.resized_hw), p).contiguous()


def apply_geometric_depth(depth: torch.Tensor, p: GeometricParams) -> torch.Tensor:
    """T x 1 x H x W depth maps: nearest (centre-aligned) resampling, so no depth is invented at edges."""
    d = depth if tuple(depth.shape[-2:]) == p.resized_hw else F.interpolate(depth, size=p.resized_hw,
                                                                             mode="nearest-exact")
    return _crop_flip(d, p).contiguous()


def apply_geometric_sparse_depth(depth: torch.Tensor, p: GeometricParams) -> torch.Tensor:
    """T x 1 x H x W sparse depth (0 = none): each output pixel averages, in log depth, the points that fall
    in it (area weights), so shrinking keeps every point's information where nearest sampling would drop
    most points; enlarging repeats them like nearest."""
    d = depth
    if tuple(d.shape[-2:]) != p.resized_hw:
        known = (d > 0).to(d.dtype)
        logs = torch.where(d > 0, torch.log(d.clamp_min(1e-12)), torch.zeros_like(d))
        w = F.interpolate(known, size=p.resized_hw, mode="area")
        s = F.interpolate(logs, size=p.resized_hw, mode="area")
        d = torch.where(w > 0, torch.exp(s / w.clamp_min(1e-12)), torch.zeros_like(w))
    return _crop_flip(d, p).contiguous()


def apply_geometric_flow(flow: torch.Tensor, p: GeometricParams) -> torch.Tensor:
    """N x 2 x H x W flow: values scaled with the resize, dx negated on a flip."""
    h, w = flow.shape[-2:]
    rh, rw = p.resized_hw
    f = flow
    if (h, w) != (rh, rw):
        f = F.interpolate(flow, size=(rh, rw), mode="bilinear", align_corners=False)
        f = f * torch.tensor([rw / w, rh / h], dtype=f.dtype).view(1, 2, 1, 1)
    f = _crop_flip(f, p)
    if p.flip:
        f = f * torch.tensor([-1.0, 1.0], dtype=f.dtype).view(1, 2, 1, 1)
    return f.contiguous()


def mirror_poses(T: torch.Tensor) -> torch.Tensor:
    """Rigid motions ...x4x4 expressed in the mirrored world: ``M T M`` (M = diag(-1, 1, 1, 1))."""
    M = torch.as_tensor(MIRROR, dtype=T.dtype)
    return M @ T @ M


# -------------------------------------------------------------------------------------------- colour ops

_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_GRAY_WEIGHTS = torch.tensor([0.299, 0.587, 0.114])


def apply_color(images: torch.Tensor, c: ColorParams) -> torch.Tensor:
    """Jitter N x C x H x W images in [0, 1] (C = 1: brightness and contrast only)."""
    if c.identity:
        return images
    x = images * c.brightness
    if x.shape[1] == 3:
        gray = (x * _GRAY_WEIGHTS.view(1, 3, 1, 1)).sum(1, keepdim=True)
    else:
        gray = x
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * c.contrast + mean
    if x.shape[1] == 3:
        gray = (x * _GRAY_WEIGHTS.view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = gray + (x - gray) * c.saturation
        if c.hue != 0.0:  # rotate the chroma plane (I, Q) of YIQ by the hue angle
            a = 2.0 * math.pi * c.hue
            rot = torch.tensor([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])
            m = torch.linalg.inv(_RGB_TO_YIQ) @ rot @ _RGB_TO_YIQ
            x = torch.einsum("ij,njhw->nihw", m.to(x.dtype), x)
    return x.clamp(0.0, 1.0)


def match_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """N x C x H x W images converted to the network's channel count (gray <-> RGB)."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3 and c == 1:
        return images.expand(-1, 3, -1, -1).contiguous()
    if channels == 1 and c == 3:
        return (images * _GRAY_WEIGHTS.to(images.dtype).view(1, 3, 1, 1)).sum(1, keepdim=True)
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


# ------------------------------------------------------------------------------------------- the sample


def make_sample(clip: Clip, out_hw: tuple[int, int], channels: int, cfg: AugmentConfig,
                rng: Optional[np.random.Generator] = None, train: bool = True) -> Clip:
    """Resize/crop/flip/jitter one :class:`Clip` into the training sample at ``out_hw``: a new Clip with
    ``channels`` channels, one 3x3 K and ``net_images`` set (stamps, indices, source and skipped kept)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    K = clip.K
    if K.dim() == 3:
        if not torch.allclose(K, K[:1].expand_as(K)):
            raise ValueError(f"{clip.source}: K changes within the clip; training needs one K per clip")
        K = K[0]
    in_hw = (int(clip.images.shape[-2]), int(clip.images.shape[-1]))
    geo = sample_geometric(rng, cfg, out_hw, train)
    col = sample_color(rng, cfg, train)

    images = match_channels(apply_geometric_images(clip.images, geo), channels)
    K_out = apply_geometric_K(K.double(), in_hw, geo).float()
    sample = Clip(images=images, net_images=apply_color(images, col), K=K_out, stamps=clip.stamps,
                  indices=clip.indices, source=clip.source, skipped=clip.skipped)
    if clip.stereo_images is not None and clip.stereo_baseline is not None:
        sample.stereo_images = match_channels(apply_geometric_images(clip.stereo_images, geo), channels)
        b = float(clip.stereo_baseline)  # partner at +b along x (stereo_T maps X to X - [b, 0, 0]) ...
        sample.stereo_baseline = torch.tensor(-b if geo.flip else b, dtype=torch.float32)  # ... at -b mirrored
    if clip.gt_depth is not None:
        sample.gt_depth = apply_geometric_depth(clip.gt_depth, geo)
    if clip.teacher_depth is not None:
        sample.teacher_depth = apply_geometric_sparse_depth(clip.teacher_depth, geo)
    if clip.teacher_poses is not None:  # resize and crop change K only; a flip mirrors the motion
        poses = clip.teacher_poses.double()
        sample.teacher_poses = (mirror_poses(poses) if geo.flip else poses).float()
    if clip.teacher_flow_fw is not None and clip.teacher_flow_bw is not None:
        sample.teacher_flow_fw = apply_geometric_flow(clip.teacher_flow_fw.float(), geo)
        sample.teacher_flow_bw = apply_geometric_flow(clip.teacher_flow_bw.float(), geo)
    if clip.gt_flow is not None:
        sample.gt_flow = apply_geometric_flow(clip.gt_flow, geo)
    if clip.gt_poses is not None:
        sample.gt_poses = mirror_poses(clip.gt_poses.double()).float() if geo.flip else clip.gt_poses
    return sample


def collate_samples(samples: list[Clip]) -> TrainBatch:
    """Stack samples of :func:`make_sample` into a :class:`TrainBatch`; an optional field survives only if every
    sample has it (depth maps: see ``depth_or_unknown``)."""
    if not samples:
        raise ValueError("collate_samples: empty batch")

    def opt(name: str) -> Optional[torch.Tensor]:
        vals = [getattr(s, name) for s in samples]  # a field or a property (stereo_T)
        return None if any(v is None for v in vals) else torch.stack(vals)

    def depth_or_unknown(name: str) -> Optional[torch.Tensor]:
        """A depth map where any sample has one: 0 (unknown) for the others, so that synthetic clips with
        exact depth and real clips without share a batch."""
        vals = [getattr(s, name) for s in samples]
        known = [v for v in vals if v is not None]
        if not known:
            return None
        return torch.stack([v if v is not None else torch.zeros_like(known[0]) for v in vals])

    return TrainBatch(
        images=torch.stack([s.images for s in samples]),
        net_images=torch.stack([s.images if s.net_images is None else s.net_images for s in samples]),
        K=torch.stack([s.K for s in samples]),
        stereo_images=opt("stereo_images"),
        stereo_T=opt("stereo_T"),
        gt_depth=depth_or_unknown("gt_depth"),
        teacher_depth=opt("teacher_depth"),
        teacher_poses=opt("teacher_poses"),
        teacher_flow_fw=opt("teacher_flow_fw"),
        teacher_flow_bw=opt("teacher_flow_bw"),
        gt_flow=opt("gt_flow"),
        gt_poses=opt("gt_poses"),
        sources=tuple(s.source for s in samples),
        skipped=tuple((s.source, index, reason) for s in samples for index, reason in s.skipped),
    )


class ClipSource(Protocol):
    """What :class:`AugmentedClips` reads from a dataset (e.g. a ``ClipDataset``): its length and its clips."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Clip: ...


class AugmentedClips(Dataset):
    """Clips of one or more ``ClipDataset`` turned into training samples (:func:`make_sample`).

    Indexed by ``(index, epoch)`` pairs (what :class:`training.dataset.ResumableSampler` yields) so the
    augmentation of a sample depends only on (seed, epoch, index); a plain int means epoch 0.
    """

    def __init__(self, datasets: Sequence[ClipSource], out_hw: tuple[int, int], channels: int, cfg: AugmentConfig,
                 seed: int = 0, train: bool = True, extra_sizes: tuple[tuple[int, int], ...] = ()) -> None:
        self.datasets = list(datasets)
        self.offsets: np.ndarray = np.cumsum(np.asarray([0] + [len(d) for d in self.datasets]))
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))
        # index 0 is out_hw; a key's third element picks the size (the sampler keeps it fixed per batch)
        self.sizes = [self.out_hw] + [(int(h), int(w)) for h, w in extra_sizes]
        self.channels = int(channels)
        self.cfg = cfg
        self.seed = int(seed)
        self.train = bool(train)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def clip(self, index: int) -> Clip:
        if not 0 <= index < len(self):
            raise IndexError(f"clip {index} out of range ({len(self)} clips)")
        k = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.datasets[k][int(index - self.offsets[k])]

    def __getitem__(self, key: int | tuple[int, ...]) -> Clip:
        """``key``: a clip index, ``(index, epoch)`` or ``(index, epoch, size index)``."""
        index, epoch = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), 0)
        size = int(key[2]) if isinstance(key, tuple) and len(key) > 2 else 0
        rng = sample_rng(self.seed, epoch, index)
        return make_sample(self.clip(index), self.sizes[size], self.channels, self.cfg, rng, self.train)
