"""Deterministic synthetic driving sequences with exact ground truth, and a KITTI-layout writer.

``SyntheticSequence(seed=0, length=100, height=192, width=640)`` is a street seen from a car (road
with lane markings, kerbs and sidewalks, building blocks with gaps, poles, trees, parked cars and
``num_moving`` moving cars) at car speeds (5-15 m/s at 10 Hz) with smooth curves. With ``world="room"``
it is indoors instead (:mod:`synthetic_room`: closed rooms with furniture, a handheld camera, no
sky). ``seq[i]`` is a
:class:`~depth_pose_ros.data.frame.Frame` with every ground truth the world knows: depth, camera
pose, forward / backward flow, forward occlusion and moving-object masks (and a right stereo image
with ``stereo_baseline``). The same seed always gives the same arrays, whatever the order frames
are read in; the scene is built once (see :mod:`synthetic_scene`), frames are ray cast on demand
(:mod:`synthetic_render`), the flow comes from the 3D hit points (:mod:`synthetic_flow`).

Choices worth knowing:
* Sky has depth 0 (invalid, as in KITTI depth ground truth), a colour that depends only on the
  viewing direction, and rotation-only flow (points at infinity). Road beyond ``max_depth`` (300 m)
  counts as sky.
* Intrinsics: square pixels, ``fx = fy = W / (2 tan(hfov / 2))`` with hfov 81.5 deg (fx = 0.58 W,
  KITTI-like), principal point at the image centre ((W-1)/2, (H-1)/2); any resolution works.
* ``T_world_cam`` is camera-to-world in a world frame with x right, y down, z forward at the start
  and the road plane at y = 0 (camera height 1.65 m).
* Textures are functions of surface coordinates; with ``antialias=True`` (default) they are
  mip-mapped (the colour of a point then changes very slightly with distance), with ``False`` they
  are strictly view-independent but alias far away. Global lighting noise is off by default.
* ``flow_prev`` of the first frame and ``flow_next`` / ``occlusion_next`` of the last are None.

KITTI-odometry layout written by :func:`write_kitti_layout` (``NN`` = ``sequence``)::

    OUT/sequences/NN/image_2/000000.png   colour left image (image_0 with gray=True), 8-bit
    OUT/sequences/NN/image_3/000000.png   right image (image_1 when gray), only with a stereo baseline
    OUT/sequences/NN/calib.txt            "P0: 12 numbers" .. "P3:" (3x4 row-major, %.12e); P0 = P2 =
                                          K [I | 0]; P1 = P3 = K [I | (-baseline, 0, 0)] (= P0 without
                                          stereo); plus "Tr:" identity (velodyne = camera)
    OUT/sequences/NN/times.txt            one stamp per line (i / fps seconds)
    OUT/poses/NN.txt                      12 numbers per line: 3x4 camera-to-world, frame 0 = identity
    OUT/sequences/NN/depth/000000.png     16-bit depth in millimetres, 0 = invalid (sky, > 65.535 m)
    OUT/sequences/NN/flow/000000.png      KITTI flow PNG, forward flow i -> i+1 (no file for the
                                          last frame): 16-bit, channels (u, v, valid) in RGB order
                                          (written BGR by cv2), u = (value - 2^15) / 64 px; valid = 1
                                          wherever the flow is defined and fits the +-512 px range
                                          (occluded pixels included, as KITTI's flow_occ)
    OUT/sequences/NN/occlusion/000000.png 8-bit, 255 = occluded in the next frame (extra)
    OUT/sequences/NN/moving/000000.png    8-bit, 255 = on a moving object (extra)
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.kitti_flow import encode_kitti_flow
from depth_pose_ros.data.synthetic_flow import flow_to, group_map, occlusion_from_flow, point_transforms
from depth_pose_ros.data.synthetic_render import Renderer, View, scaled_intrinsics
from depth_pose_ros.data.synthetic_scene import SyntheticWorld, se3

DEFAULT_HFOV_DEG = 81.5
WORLDS = ("street", "room")


class SyntheticSequence:
    """A deterministic synthetic sequence (street or room); ``len(seq)``, ``seq[i] -> Frame``, iteration.

    Args:
        seed: everything (layout, trajectory, cars) derives from it.
        length: number of frames.
        height, width: image size; K is scaled to it (see :func:`scaled_intrinsics`).
        gray: HxW gray images instead of HxWx3 RGB.
        fps: frame rate; stamps are ``i / fps``.
        speed_range: (min, max) ego ground speed in m/s (None: street 5-15, room 0.3-1.2).
        num_moving: independently moving cars (the first leads in the ego lane, the others oncoming);
            None = 3. Street only.
        stereo_baseline: metres; renders the right image of a rectified pair (right camera at +x).
        hfov_deg: horizontal field of view (None: street 81.5, room drawn per seed in [55, 75]).
        pose_jitter_deg: amplitude of the smooth pitch/roll oscillation of the car body (0 = none;
            None = 0.2). Street only.
        lighting_noise: std of a per-frame global gain (and a quarter of it as offset); 0 = off.
        antialias: mip-mapped textures (see the module docstring).
        camera_height: metres above the road / floor (None: street 1.65, room drawn per seed in
            [0.9, 1.7]).
        world: ``"street"`` (:mod:`synthetic_scene`) or ``"room"`` (indoor, :mod:`synthetic_room`:
            closed rooms, handheld camera, no sky: every pixel has a depth).
        close_traffic: street only: the leading cars queue 4-9 m ahead of the camera (see
            ``SyntheticWorld._moving_car``).
    """

    def __init__(self, seed: int = 0, length: int = 100, height: int = 192, width: int = 640,
                 gray: bool = False, fps: float = 10.0, speed_range: Optional[tuple[float, float]] = None,
                 num_moving: Optional[int] = None, stereo_baseline: Optional[float] = None,
                 hfov_deg: Optional[float] = None, pose_jitter_deg: Optional[float] = None,
                 lighting_noise: float = 0.0, antialias: bool = True, camera_height: Optional[float] = None,
                 world: str = "street", close_traffic: bool = False) -> None:
        # length, fps, speed_range, num_moving, pose_jitter_deg, camera_height: the world classes check
        if world not in WORLDS:
            raise ValueError(f"world must be one of {list(WORLDS)}, got {world!r}")
        if int(height) < 8 or int(width) < 8:
            raise ValueError(f"height and width must be >= 8 pixels, got height={height} width={width}")
        if stereo_baseline is not None and not stereo_baseline > 0:
            raise ValueError(f"stereo_baseline must be > 0 metres (or None), got {stereo_baseline}")
        if lighting_noise < 0:
            raise ValueError(f"lighting_noise must be >= 0, got {lighting_noise}")
        self.seed = int(seed)
        self.length = int(length)
        self.height, self.width = int(height), int(width)
        self.gray = bool(gray)
        self.fps = float(fps)
        self.stereo_baseline = None if stereo_baseline is None else float(stereo_baseline)
        self.lighting_noise = float(lighting_noise)
        self.world_kind = world
        # SyntheticWorld or RoomWorld (the room duck-types the street world's interface, not its class)
        self.world: Any
        self.renderer: Renderer
        if world == "room":
            street_only = {"num_moving": num_moving, "pose_jitter_deg": pose_jitter_deg,
                           "close_traffic": close_traffic or None}
            given = sorted(k for k, v in street_only.items() if v is not None)
            if given:
                raise ValueError(f"{given} apply to world=street only (the room world is static and its "
                                 f"camera is handheld)")
            from depth_pose_ros.data.synthetic_room import RoomRenderer, RoomWorld

            self.name = f"synthetic:world=room,seed={self.seed}"
            self.world = RoomWorld(seed=self.seed, length=self.length, fps=self.fps,
                                   speed_range=(0.3, 1.2) if speed_range is None else speed_range,
                                   camera_height=camera_height)
            self.hfov_deg = self.world.hfov_deg if hfov_deg is None else float(hfov_deg)
            self.K = scaled_intrinsics(self.height, self.width, self.hfov_deg)
            self.renderer = RoomRenderer(self.world, self.K, self.height, self.width, antialias=antialias)
        else:
            self.name = f"synthetic:seed={self.seed}"
            self.hfov_deg = DEFAULT_HFOV_DEG if hfov_deg is None else float(hfov_deg)
            self.K = scaled_intrinsics(self.height, self.width, self.hfov_deg)
            self.world = SyntheticWorld(
                seed=self.seed, length=self.length, fps=self.fps,
                speed_range=(5.0, 15.0) if speed_range is None else speed_range,
                num_moving=3 if num_moving is None else int(num_moving),
                pose_jitter_deg=0.2 if pose_jitter_deg is None else pose_jitter_deg,
                camera_height=1.65 if camera_height is None else camera_height, close_traffic=close_traffic)
            self.renderer = Renderer(self.world, self.K, self.height, self.width, antialias=antialias)
        self._views: OrderedDict[int, View] = OrderedDict()
        self._cache_size = 3

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_views"] = OrderedDict()  # rendered views are a cache, not state
        return state

    # ---- sequence protocol -----------------------------------------------------------------------
    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.length):
            yield self[i]

    def __getitem__(self, index: int) -> Frame:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self.name}: frame index must be an int, got {type(index).__name__}")
        i = int(index) + self.length if index < 0 else int(index)
        if not 0 <= i < self.length:
            raise IndexError(f"{self.name}: frame {index} out of range (sequence has {self.length} frames)")
        return self._frame(i)

    def __repr__(self) -> str:
        world = ", world=room" if self.world_kind == "room" else ""
        return (f"SyntheticSequence(seed={self.seed}{world}, length={self.length}, {self.height}x{self.width}"
                f"{', gray' if self.gray else ''})")

    def stamps(self) -> np.ndarray:
        """Stamps (seconds) of all frames, ``i / fps``, without rendering."""
        return np.arange(self.length, dtype=np.float64) / self.fps

    def poses(self) -> np.ndarray:
        """(length, 4, 4) ground-truth T_world_cam (camera-to-world) of all frames, without rendering."""
        return np.stack([self.world.camera_pose(i) for i in range(self.length)])

    # ---- rendering -------------------------------------------------------------------------------
    def view(self, i: int) -> View:
        """Rendered view of frame ``i`` (cached: sequential reading renders each frame once)."""
        if i in self._views:
            self._views.move_to_end(i)
            return self._views[i]
        view = self.renderer.render(self.world.camera_pose(i), i)
        self._views[i] = view
        while len(self._views) > self._cache_size:
            self._views.popitem(last=False)
        return view

    def _to_uint8(self, image: Optional[np.ndarray], i: int) -> np.ndarray:
        assert image is not None  # a view rendered with its image
        if self.lighting_noise > 0:
            rng = np.random.default_rng([self.seed, 0x119, i])
            gain = 1.0 + self.lighting_noise * rng.standard_normal()
            image = image * np.float32(gain) + np.float32(0.25 * self.lighting_noise * rng.standard_normal())
        rgb = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if self.gray else rgb

    def _frame(self, i: int) -> Frame:
        view = self.view(i)
        groups = group_map(self.world, view)
        flow_next = occlusion = flow_prev = None
        if i + 1 < self.length:
            flow_next, z_next = flow_to(view, groups, point_transforms(self.world, i, i + 1), self.K)
            occlusion = occlusion_from_flow(flow_next, z_next, self.view(i + 1).depth)
        if i > 0:
            flow_prev, _ = flow_to(view, groups, point_transforms(self.world, i, i - 1), self.K)
        stereo = None
        if self.stereo_baseline is not None:
            T_cam_right = se3(np.eye(3), (self.stereo_baseline, 0.0, 0.0))
            right = self.renderer.render(self.world.camera_pose(i) @ T_cam_right, i)
            stereo = self._to_uint8(right.image, i)
        return Frame(
            image=self._to_uint8(view.image, i),
            K=self.K.copy(),
            stamp=i / self.fps,
            index=i,
            T_world_cam=self.world.camera_pose(i),
            depth=view.depth.copy(),
            flow_next=flow_next,
            flow_prev=flow_prev,
            occlusion_next=occlusion,
            moving_mask=groups >= 0,
            stereo_image=stereo,
            stereo_baseline=self.stereo_baseline,
            source=self.name,
        )


# ---- KITTI-layout writer ---------------------------------------------------------------------------
def _write_png(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def _matrix_line(M: np.ndarray, fmt: str) -> str:
    return " ".join(fmt % x for x in np.asarray(M, dtype=np.float64).reshape(-1))


def write_kitti_layout(seq: SyntheticSequence, out_dir: Union[str, Path], sequence: str = "00",
                       progress: bool = False) -> Path:
    """Write ``seq`` in the KITTI-odometry layout described in the module docstring; returns the sequence dir.

    Poses are re-expressed relative to frame 0 (``inv(T_world_cam[0]) @ T_world_cam[i]``), so frame 0
    is the identity, as in KITTI.
    """
    if not str(sequence) or any(c in str(sequence) for c in "/\\"):
        raise ValueError(f"sequence must be a plain folder name like '00', got {sequence!r}")
    out = Path(out_dir)
    seq_dir = out / "sequences" / str(sequence)
    left, right = ("image_0", "image_1") if seq.gray else ("image_2", "image_3")
    folders = [left, "depth", "flow", "occlusion", "moving"] + ([right] if seq.stereo_baseline else [])
    for name in folders:
        (seq_dir / name).mkdir(parents=True, exist_ok=True)
    (out / "poses").mkdir(parents=True, exist_ok=True)

    P0 = np.hstack([seq.K, np.zeros((3, 1))])
    P1 = P0.copy()
    if seq.stereo_baseline:
        P1[0, 3] = -seq.K[0, 0] * seq.stereo_baseline
    calib = [f"P{k}: {_matrix_line(P, '%.12e')}" for k, P in enumerate((P0, P1, P0, P1))]
    calib.append(f"Tr: {_matrix_line(np.eye(4)[:3], '%.12e')}")
    (seq_dir / "calib.txt").write_text("\n".join(calib) + "\n")
    (seq_dir / "times.txt").write_text("".join(f"{t:.6e}\n" for t in seq.stamps()))

    poses = seq.poses()
    rel = np.linalg.inv(poses[0]) @ poses
    (out / "poses" / f"{sequence}.txt").write_text(
        "".join(_matrix_line(T[:3], "%.9e") + "\n" for T in rel))

    frames = iter(seq)
    if progress:
        from tqdm import tqdm

        frames = tqdm(frames, total=len(seq), desc=f"synth {seq_dir}")
    for frame in frames:
        name = f"{frame.index:06d}.png"
        img = frame.image if frame.image.ndim == 2 else cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        _write_png(seq_dir / left / name, img)
        if frame.stereo_image is not None:
            s = frame.stereo_image
            _write_png(seq_dir / right / name, s if s.ndim == 2 else cv2.cvtColor(s, cv2.COLOR_RGB2BGR))
        assert frame.depth is not None and frame.moving_mask is not None  # a synthetic frame has both
        depth_mm = np.round(frame.depth.astype(np.float64) * 1000.0)
        depth_mm[(depth_mm > 65535) | ~np.isfinite(depth_mm)] = 0
        _write_png(seq_dir / "depth" / name, depth_mm.astype(np.uint16))
        _write_png(seq_dir / "moving" / name, frame.moving_mask.astype(np.uint8) * 255)
        if frame.flow_next is not None:
            assert frame.occlusion_next is not None  # comes with flow_next
            _write_png(seq_dir / "flow" / name, encode_kitti_flow(frame.flow_next)[0])
            _write_png(seq_dir / "occlusion" / name, frame.occlusion_next.astype(np.uint8) * 255)
    return seq_dir
