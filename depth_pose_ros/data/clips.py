"""Training clips: T consecutive frames of a FrameSource as typed torch samples.

A clip is valid only if its frames really are consecutive in time: every step between neighbouring
stamps must be positive (no backward jump, no duplicate) and at most ``max_gap_periods`` (2.5)
nominal frame periods (no dropped stretch, no join of two recordings). The nominal period is
``1 / source.fps`` when the source knows its rate, else the median stamp step. Validity is decided
from ``source.stamps()`` alone, so building the dataset decodes no image.

``stride`` is the step between the first frames of successive clips (1 = every start position).

Frames with a lens distortion (``Frame.distortion``: bags, image folders with a camera_info.yaml, TUM) are
undistorted on the way into a clip by :func:`~depth_pose_ros.data.frame.undistort_frame`, i.e. by the same
``geometry.distortion.Undistorter`` the node's Estimator uses (same K and size), so a model trained on a
recording sees what the node will show it (``undistort=False`` keeps the images as stored).
Augmentation is not done here; ``transform`` (Clip -> Clip) is the hook for it. :class:`Clip` is also the
record of an augmented training sample (``training.augment.make_sample`` returns one at the network size, with
``net_images`` set), so a sample has one type from the reader to the batch (``training.augment.TrainBatch``).

A clip holding a frame that cannot be read (``source.FrameReadError``: corrupt file, wrong size) is
skipped: the dataset serves the next readable clip in its place (so a DataLoader batch keeps its size)
and remembers the bad frame so that no later clip tries it again. The frames found unreadable while
producing a sample travel with it (``Clip.skipped`` -> ``TrainBatch.skipped``), because DataLoader
workers are separate processes and the training loop can only count what reaches it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from depth_pose_ros.data.frame import Frame, undistort_frame
from depth_pose_ros.data.source import FrameReadError, nominal_period
from depth_pose_ros.utils.image import image_to_tensor


class TeacherMaps(Protocol):
    """What :class:`ClipDataset` needs of a teacher (e.g. ``training.geometry_teacher.TeacherDepth``):
    ``teacher[i]``, frame i's HxW sparse depth; ``pose(i)`` and ``has_flow`` / ``flow(i)`` are optional."""

    def __getitem__(self, i: int) -> np.ndarray: ...

MAX_GAP_PERIODS = 2.5


@dataclass
class Clip:
    """T consecutive frames of one source (tensors on CPU, float32 unless stated).

    Poses follow the project convention ``T_target_source``: ``gt_poses[t]`` is ``T_first_t``, which
    maps points of frame t's camera into frame 0's camera (``gt_poses[0]`` is the identity).

    The same record carries an augmented training sample (``training.augment.make_sample``): the images at
    the network size, what the losses compare; ``net_images`` the (colour-jittered) network input; ``K``
    3 x 3; GT and teacher fields transformed with the images (mirrored on a horizontal flip, which also
    negates ``stereo_baseline``: the mirrored world has the partner on the other side).
    """

    images: torch.Tensor  # T x C x H x W in [0, 1]; C = 3 (RGB) or 1 (gray)
    K: torch.Tensor  # 3 x 3 when constant over the clip, else T x 3 x 3
    stamps: torch.Tensor  # T, float64 seconds
    indices: torch.Tensor  # T, int64 positions in the source
    # T x C x H x W network input when it differs from ``images`` (training: colour jitter), else None
    net_images: Optional[torch.Tensor] = None
    gt_poses: Optional[torch.Tensor] = None  # T x 4 x 4 T_first_t (when every frame has a GT pose)
    gt_depth: Optional[torch.Tensor] = None  # T x 1 x H x W metres, 0 = unknown
    gt_flow: Optional[torch.Tensor] = None  # (T-1) x 2 x H x W flow t -> t+1, NaN where unknown
    stereo_images: Optional[torch.Tensor] = None  # T x C x H x W partner camera images
    stereo_baseline: Optional[torch.Tensor] = None  # scalar, metres: signed x offset of the partner
    # T x 1 x H x W sparse depth of triangulated points (training.geometry_teacher), 0 = none; each frame's
    # values share one unknown scale, so only their ratios carry information
    teacher_depth: Optional[torch.Tensor] = None
    # (T-1) x 4 x 4 teacher motion T_{t+1,t} of each consecutive pair (unit translation in the units of
    # teacher_depth[t]; NaN where the teacher has none), when the teacher provides poses
    teacher_poses: Optional[torch.Tensor] = None
    # (T-1) x 2 x H x W teacher flows of each consecutive pair: forward t -> t+1 on t's grid, backward
    # t+1 -> t on t+1's grid (when the teacher keeps flows)
    teacher_flow_fw: Optional[torch.Tensor] = None
    teacher_flow_bw: Optional[torch.Tensor] = None
    source: str = ""
    skipped: tuple[tuple[int, str], ...] = ()  # (recording index, reason) of frames skipped to serve it

    @property
    def length(self) -> int:
        return int(self.images.shape[0])

    @property
    def stereo_T(self) -> Optional[torch.Tensor]:
        """``T_partner_cam`` (4x4 float32): maps points of each clip camera into its stereo partner, i.e.
        ``X - [b, 0, 0]`` for a partner at signed offset b along x; None without a stereo baseline.

        Derived from ``stereo_baseline`` rather than stored, so the two can never disagree.
        """
        if self.stereo_baseline is None:
            return None
        T = torch.eye(4)
        T[0, 3] = -self.stereo_baseline
        return T


def valid_clip_starts(stamps: np.ndarray, clip_len: int, stride: int = 1, fps: Optional[float] = None,
                      max_gap_periods: float = MAX_GAP_PERIODS) -> np.ndarray:
    """Start positions of clips of ``clip_len`` frames whose stamp steps are all in (0, 2.5 periods]."""
    stamps = np.asarray(stamps, dtype=np.float64)
    n = len(stamps)
    if clip_len < 1 or stride < 1:
        raise ValueError(f"clip_len and stride must be >= 1, got {clip_len}, {stride}")
    starts = np.arange(0, max(n - clip_len + 1, 0), stride, dtype=np.int64)
    if clip_len == 1 or starts.size == 0:
        return starts
    period = nominal_period(stamps, fps)
    steps = np.diff(stamps)
    good = steps > 0
    if period is not None:
        good &= steps <= max_gap_periods * period
    bad_cum = np.concatenate([[0], np.cumsum(~good)])  # bad steps before position i
    n_bad = bad_cum[starts + clip_len - 1] - bad_cum[starts]
    return starts[n_bad == 0]


class ClipDataset(Dataset):
    """``torch.utils.data.Dataset`` of :class:`Clip` samples cut from a FrameSource.

    Args:
        source: a FrameSource (or any sequence of Frames; stamps are then read frame by frame).
        clip_len: T, frames per clip.
        stride: step between the first frames of successive clips.
        with_stereo: include the stereo partner images (every frame must have one).
        transform: optional callable Clip -> Clip applied last (augmentation hook).
        max_gap_periods: largest allowed stamp step, in nominal periods.
        teacher: optional per-frame sparse depth maps indexed like the source (``teacher[i]`` HxW, 0 =
            none), attached to each clip as ``teacher_depth``; when it also has ``pose(i)`` (``T_{i+1,i}``,
            4x4), the clip's pair motions are attached as ``teacher_poses``; when ``has_flow``, its pair flows
            (``flow(i)``: forward, backward) as ``teacher_flow_fw`` / ``teacher_flow_bw``.
        undistort: undistort frames that have a lens distortion as the node does (see module doc); K is kept.
    """

    def __init__(self, source: Sequence[Frame] | Any, clip_len: int = 3, stride: int = 1,
                 with_stereo: bool = False, transform: Optional[Callable[[Clip], Clip]] = None,
                 max_gap_periods: float = MAX_GAP_PERIODS, teacher: Optional[TeacherMaps] = None,
                 undistort: bool = True) -> None:
        self.source = source
        self.undistort = bool(undistort)
        self.teacher = teacher
        self.clip_len = int(clip_len)
        self.stride = int(stride)
        self.with_stereo = bool(with_stereo)
        self.transform = transform
        name = getattr(source, "name", type(source).__name__)
        if self.with_stereo and getattr(source, "has_stereo", True) is False:
            raise ValueError(f"{name}: with_stereo=True but the source has no stereo images "
                             "(open it with stereo=True)")
        stamps_fn = getattr(source, "stamps", None)
        stamps = stamps_fn() if callable(stamps_fn) else np.array([f.stamp for f in source])
        self.stamps = np.asarray(stamps, dtype=np.float64)
        self.starts = valid_clip_starts(self.stamps, self.clip_len, self.stride, getattr(source, "fps", None),
                                        max_gap_periods)
        self.name = name
        self._unreadable: dict[int, tuple[int, str]] = {}  # position in the source -> (index, reason)

    def __len__(self) -> int:
        return int(self.starts.size)

    def __getitem__(self, i: int) -> Clip:
        """Clip ``i``, or the next readable clip when one of its frames cannot be read (see module doc)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{self.name}: clip {i} out of range ({n} clips)")
        met: list[tuple[int, str]] = []
        for k in range(n):
            j = (int(i) + k) % n
            start = int(self.starts[j])
            if any(start + t in self._unreadable for t in range(self.clip_len)):
                continue
            frames = []
            for pos in range(start, start + self.clip_len):
                try:
                    frames.append(self.source[pos])
                except FrameReadError as exc:
                    self._unreadable[pos] = (exc.index, exc.reason)
                    met.append((exc.index, exc.reason))
                    break
            if len(frames) < self.clip_len:
                continue
            clip = frames_to_clip(frames, indices=range(start, start + self.clip_len),
                                  with_stereo=self.with_stereo, source=self.name, undistort=self.undistort)
            clip.skipped = tuple(met)
            if self.teacher is not None:
                teacher: Any = self.teacher  # pose() / has_flow + flow() are optional: duck-typed
                clip.teacher_depth = torch.from_numpy(np.stack(
                    [teacher[pos] for pos in range(start, start + self.clip_len)]))[:, None].float()
                if callable(getattr(teacher, "pose", None)):
                    clip.teacher_poses = torch.from_numpy(np.stack(
                        [teacher.pose(pos) for pos in range(start, start + self.clip_len - 1)])).double()
                if getattr(teacher, "has_flow", False):
                    pairs = [teacher.flow(pos) for pos in range(start, start + self.clip_len - 1)]
                    clip.teacher_flow_fw = torch.from_numpy(np.stack([fw for fw, _ in pairs]))
                    clip.teacher_flow_bw = torch.from_numpy(np.stack([bw for _, bw in pairs]))
            return self.transform(clip) if self.transform is not None else clip
        raise ValueError(f"{self.name}: no clip of {self.clip_len} readable frames "
                         f"({len(self._unreadable)} unreadable: {list(self._unreadable.values())[:3]})")

    @property
    def skipped(self) -> list[tuple[int, str]]:
        """``(recording index, reason)`` of the frames this dataset found unreadable (this process)."""
        return sorted(self._unreadable.values())


def frames_to_clip(frames: Sequence[Frame], indices: Optional[Sequence[int]] = None,
                   with_stereo: bool = False, source: str = "", undistort: bool = True) -> Clip:
    """Stack consecutive Frames into a Clip (equal sizes; a GT field only when every frame has it).

    ``undistort``: frames with a ``distortion`` are first undistorted as the node does
    (:func:`~depth_pose_ros.data.frame.undistort_frame`; K unchanged).
    """
    if not frames:
        raise ValueError("frames_to_clip: no frames")
    if undistort:
        frames = [undistort_frame(f) for f in frames]
    shape = frames[0].image.shape
    for f in frames:
        if f.image.shape != shape:
            raise ValueError(f"{source}: frame {f.index} is {f.image.shape}, clip started with {shape}")
    images = torch.stack([image_to_tensor(f.image) for f in frames])
    Ks = np.stack([np.asarray(f.K, dtype=np.float64) for f in frames])
    K = torch.from_numpy(Ks[0] if np.allclose(Ks, Ks[0]) else Ks).float()
    stamps = torch.tensor([f.stamp for f in frames], dtype=torch.float64)
    idx = torch.as_tensor(list(indices) if indices is not None else [f.index for f in frames],
                          dtype=torch.int64)
    clip = Clip(images=images, K=K, stamps=stamps, indices=idx, source=source)
    if all(f.T_world_cam is not None for f in frames):
        T_w = np.stack([np.asarray(f.T_world_cam, dtype=np.float64) for f in frames])
        clip.gt_poses = torch.from_numpy(np.linalg.inv(T_w[0]) @ T_w).float()  # T_first_t
    if all(f.depth is not None for f in frames):
        clip.gt_depth = torch.stack([torch.from_numpy(np.asarray(f.depth, dtype=np.float32))[None]
                                     for f in frames])
    if len(frames) > 1 and all(f.flow_next is not None for f in frames[:-1]):
        clip.gt_flow = torch.stack([torch.from_numpy(np.asarray(f.flow_next, dtype=np.float32))
                                    .permute(2, 0, 1) for f in frames[:-1]])
    if with_stereo:
        missing = [f.index for f in frames if f.stereo_image is None or f.stereo_baseline is None]
        if missing:
            raise ValueError(f"{source}: frames {missing} have no stereo image "
                             "(open the source with stereo=True)")
        clip.stereo_images = torch.stack([image_to_tensor(f.stereo_image) for f in frames])
        baseline = frames[0].stereo_baseline
        assert baseline is not None  # checked above
        clip.stereo_baseline = torch.tensor(float(baseline), dtype=torch.float32)
    return clip


__all__ = ["Clip", "ClipDataset", "frames_to_clip", "image_to_tensor", "valid_clip_starts"]
