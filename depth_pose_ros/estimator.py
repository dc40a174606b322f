"""Streaming depth / flow / ego-motion estimator: frames in, :class:`Result` out. No ROS imports.

One call of :meth:`Estimator.step` per camera frame (han2021's inference path):

1. the frame is validated, resized to the network resolution and K scaled accordingly;
2. the shared encoder runs once and the recurrent cell advances its state;
3. the depth decoder gives the dense depth of this frame;
4. the flow decoder runs on the cached features of the previous frame and the new ones, in both
   directions (backward flow feeds the fb-consistency scores and occlusion masks);
5. the two-view module recovers ``T_cur_prev`` from the flow (essential matrix, cheirality,
   triangulation) and the translation length from the alignment of the previous depth to the
   triangulated points, so the translation scale follows the network depth and stays consistent
   over the sequence; an optional absolute scale (camera height or stereo) makes it metric;
6. the pose is accumulated; everything returned is finite.

The state resets on a timestamp gap larger than ``max_gap_s`` or a backward jump; the first frame
after a reset yields depth without pose. Degenerate motion uses the geometry module's fallbacks
(PnP from the previous depth, then constant velocity).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import cv2
import numpy as np
import torch

from depth_pose_ros.estimator_types import EstimatorConfig, Result, ScaleConfig
from depth_pose_ros.geometry.camera import scale_intrinsics, validate_intrinsics
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.se3_np import invert_np
from depth_pose_ros.geometry.two_view import TwoViewEstimator, TwoViewResult, TwoViewStatus
from depth_pose_ros.nets.fast import FastPathOptions, autocast_dtype, optimize_for_inference
from depth_pose_ros.nets.model import DepthFlowNet
from depth_pose_ros.refinement import refine_estimator
from depth_pose_ros.scale_sources import CameraHeightScale, StereoScale

__all__ = ["Estimator", "EstimatorConfig", "FrameError", "Result", "ScaleConfig"]


class FrameError(ValueError):
    """The frame given to :meth:`Estimator.step` cannot be processed (the caller skips it)."""


@dataclass
class _Previous:
    """What the next step needs of the previous frame."""

    stamp: float
    features: list[torch.Tensor]
    image: np.ndarray  # network-resolution image (for DIS flow)
    depth: np.ndarray  # network-resolution depth, network units (before absolute scale)
    T_world_cam: np.ndarray


class Estimator:
    """Streaming estimator over one camera; owns the recurrent state and the odometry."""

    def __init__(self, model: DepthFlowNet, config: Optional[EstimatorConfig] = None) -> None:
        self.config = config if config is not None else EstimatorConfig()
        cfg = self.config
        if cfg.height % 32 or cfg.width % 32:
            raise ValueError(f"network input size must be divisible by 32, got {cfg.height}x{cfg.width}")
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        self.device = torch.device(cfg.device)
        self.model = model.to(self.device).eval()
        if cfg.flow_source == "network" and model.flow_decoder is None:
            raise ValueError("flow_source='network' needs a model with the flow decoder enabled")
        self.channels = model.cfg.encoder.image_channels
        if (cfg.fast_path or cfg.compile) and cfg.refinement.enabled:
            raise ValueError("online refinement trains the weights: it cannot run on the fast path "
                             "(folded BatchNorm / compiled modules); disable one of them")
        if cfg.fast_path or cfg.compile:
            options = FastPathOptions(fuse_batchnorm=cfg.fast_path, channels_last=cfg.fast_path, autocast=False,
                                      compile=cfg.compile)
            self.model = optimize_for_inference(self.model, options, self.device, (cfg.height, cfg.width)).model
        self._autocast_dtype = _autocast_dtype(cfg, self.device)
        self.two_view = TwoViewEstimator(cfg.two_view)
        self.scale_source = _make_scale_source(cfg.scale)
        self._state = None
        self._prev: Optional[_Previous] = None
        self._index = 0
        self._scale = 1.0
        self._last_T_cur_prev: Optional[np.ndarray] = None
        self._origin = np.eye(4)  # pose given to the first frame after a reset
        self.refiner = None  # OnlineRefiner, created on first use by refine_estimator

    # ----------------------------------------------------------------------------------- public
    @classmethod
    def from_checkpoint(cls, path: str | Path, config: Optional[EstimatorConfig] = None,
                        map_location: str = "cpu") -> Estimator:
        """Estimator around the weights of a ``.safetensors`` checkpoint (config read from it)."""
        from depth_pose_ros.checkpoint import load_model

        model, _ = load_model(path, map_location=map_location)
        return cls(model, config)

    def reset(self, keep_pose: bool = False) -> None:
        """Forget the recurrent state and cached features; the next frame is a 'first'.

        ``keep_pose=False`` also restarts the odometry at the identity; ``True`` (used for timestamp
        gaps) continues the trajectory from the last pose, so a dropped stretch of frames does not
        throw the vehicle back to the origin.
        """
        self._origin = self._prev.T_world_cam.copy() if keep_pose and self._prev is not None else np.eye(4)
        self._state = None
        self._prev = None
        self._last_T_cur_prev = None
        self.two_view.reset()
        if self.refiner is not None:
            self.refiner.reset()
        if self.scale_source is not None:
            self.scale_source.reset()
        self._scale = 1.0

    @property
    def network_size(self) -> tuple[int, int]:
        return self.config.height, self.config.width

    def step(self, image: np.ndarray, K: np.ndarray, stamp: float,
             stereo_image: Optional[np.ndarray] = None, stereo_baseline: Optional[float] = None) -> Result:
        """Process one frame.

        Args:
            image: HxWx3 uint8 RGB, HxW uint8 gray, or HxW uint16 gray (mono16), any size.
            K: 3x3 intrinsics of ``image``.
            stamp: seconds; a gap > ``max_gap_s`` or a backward jump resets the state first.
            stereo_image, stereo_baseline: right image of a rectified pair and its baseline (m), used
                by the ``stereo`` scale source.

        Raises:
            FrameError: the image or K is unusable (wrong shape/dtype, non-finite, zero size).
        """
        t0 = time.perf_counter()
        cfg = self.config
        net_img, K_net = self._prepare(image, K)
        if cfg.refinement.enabled:  # GLNet online refinement on the recent frames (updates the weights)
            refine_estimator(self, net_img, K_net)
        stamp = float(stamp)
        if not np.isfinite(stamp):
            raise FrameError(f"timestamp must be finite, got {stamp}")
        reset_reason = ""
        if self._prev is not None:
            dt = stamp - self._prev.stamp
            if dt <= 0:
                reset_reason = f"timestamp went backwards by {-dt:.3f}s" if dt < 0 else "repeated timestamp"
            elif dt > cfg.max_gap_s:
                reset_reason = f"timestamp gap of {dt:.3f}s > max_gap_s={cfg.max_gap_s}"
            if reset_reason:
                self.reset(keep_pose=True)
        timings: dict[str, float] = {"prepare": (time.perf_counter() - t0) * 1e3}

        t1 = time.perf_counter()
        x = self._to_tensor(net_img)
        with torch.inference_mode(), self._autocast():
            feats, self._state = self.model.encode(x, self._state)
            cues = None
            if self.model.idce is not None:
                cues = self.model.stream_features(self._prev.features if self._prev else None, feats)
            depth_t = self.model.predict_depth(feats, cues)[0]
            flow_fw = flow_bw = None
            if self._prev is not None and cfg.flow_source == "network":
                out = self.model.predict_flow(self._prev.features, feats, both_directions=cfg.backward_flow)
                flow_fw = out.forward[0]
                flow_bw = out.backward[0] if out.backward is not None else None
        depth = _finite_depth(depth_t[0, 0].float().cpu().numpy(), self.model.cfg.depth.max_depth)
        if flow_fw is not None:
            flow_fw = _finite_flow(flow_fw[0].float().permute(1, 2, 0).cpu().numpy())
            flow_bw = None if flow_bw is None else _finite_flow(flow_bw[0].float().permute(1, 2, 0).cpu().numpy())
        timings["network"] = (time.perf_counter() - t1) * 1e3

        if self._prev is not None and cfg.flow_source == "dis":
            t2 = time.perf_counter()
            flow_fw = dis_flow(self._prev.image, net_img)
            flow_bw = dis_flow(net_img, self._prev.image) if cfg.backward_flow else None
            timings["dis_flow"] = (time.perf_counter() - t2) * 1e3

        # absolute scale (metric) of the network depth, smoothed over time
        if self.scale_source is not None:
            s = self.scale_source.update(depth, K_net, net_img, stereo_image, stereo_baseline, cfg)
            if s is not None:
                self._scale = s

        result = Result(stamp=stamp, index=self._index, image=net_img, K=K_net,
                        depth=np.minimum(depth * self._scale, cfg.max_depth_m).astype(np.float32),
                        T_world_cam=self._origin.copy(), reset_reason=reset_reason, scale=self._scale)
        if self._prev is None:
            result.status = TwoViewStatus.FIRST.value
        else:
            t3 = time.perf_counter()
            tv = self.two_view.estimate(flow_fw, K_net, flow_bw=flow_bw, depth1=self._prev.depth)
            T_cur_prev = self._metric_relative_pose(tv)
            result.T_cur_prev = T_cur_prev
            result.T_world_cam = self._prev.T_world_cam @ invert_np(T_cur_prev)
            result.flow, result.flow_backward = flow_fw, flow_bw
            result.rigid_mask = tv.rigid_mask
            result.status = tv.status.value if isinstance(tv.status, TwoViewStatus) else str(tv.status)
            result.confidence = float(tv.confidence)
            result.num_inliers = int(tv.num_inliers)
            result.inlier_ratio = float(tv.inliers.mean()) if tv.inliers.size else 0.0
            result.dt = stamp - self._prev.stamp
            timings["geometry"] = (time.perf_counter() - t3) * 1e3
        if not np.all(np.isfinite(result.T_world_cam)):  # never hand out NaN: restart the odometry here
            result.T_world_cam = self._prev.T_world_cam.copy() if self._prev else np.eye(4)
            result.status = TwoViewStatus.CONSTANT_VELOCITY.value
        self._prev = _Previous(stamp, feats, net_img, depth, result.T_world_cam)
        self._index += 1
        timings["total"] = (time.perf_counter() - t0) * 1e3
        result.timings_ms = timings
        return result

    def flow_between(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        """Network forward flow image1 -> image2 (HxWx2 at the network size), from a fresh recurrent
        state; the streaming state is left untouched. For pairwise benchmarks such as KITTI 2015."""
        eye = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
        a, _ = self._prepare(image1, eye * [[max(image1.shape[:2])], [max(image1.shape[:2])], [1]])
        b, _ = self._prepare(image2, eye * [[max(image2.shape[:2])], [max(image2.shape[:2])], [1]])
        with torch.inference_mode(), self._autocast():
            feats_a, state = self.model.encode(self._to_tensor(a), None)
            feats_b, _ = self.model.encode(self._to_tensor(b), state)
            flow = self.model.predict_flow(feats_a, feats_b, both_directions=False).forward[0]
        return _finite_flow(flow[0].float().permute(1, 2, 0).cpu().numpy())

    # ---------------------------------------------------------------------------------- helpers
    def _metric_relative_pose(self, tv: TwoViewResult) -> np.ndarray:
        """``T_cur_prev`` with the translation in the units of the published depth.

        The two-view translation is unit-norm; ``tv.scale`` is its length in network-depth units
        (from aligning the previous depth to the triangulated points; PnP gives it directly). With
        no usable scale, the last translation length is kept (constant speed assumption).
        """
        length = tv.scale if tv.scale is not None and np.isfinite(tv.scale) and tv.scale > 0 else None
        if tv.status == TwoViewStatus.CONSTANT_VELOCITY and self._last_T_cur_prev is not None:
            return self._last_T_cur_prev.copy()
        if length is None:
            length = float(np.linalg.norm(self._last_T_cur_prev[:3, 3])) / max(self._scale, 1e-9) \
                if self._last_T_cur_prev is not None else 0.0
        T = np.eye(4)
        T[:3, :3] = tv.R
        T[:3, 3] = np.asarray(tv.t, dtype=np.float64) * length * self._scale
        if not np.all(np.isfinite(T)):
            T = np.eye(4)
        self._last_T_cur_prev = T
        return T

    def _prepare(self, image: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Validate the frame, convert to the network's channel count and size; scale K."""
        img = np.asarray(image)
        if img.size == 0 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
            raise FrameError(f"image must be HxW or HxWx(1|3|4), got shape {img.shape}")
        if img.dtype == np.uint16:
            img = (img / 256).astype(np.uint8)
        elif img.dtype in (np.float32, np.float64):
            if not np.all(np.isfinite(img)):
                raise FrameError("image contains NaN or inf")
            img = np.clip(img * (255.0 if img.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        elif img.dtype != np.uint8:
            raise FrameError(f"image dtype must be uint8, uint16 or float, got {img.dtype}")
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., :3]
        if img.ndim == 3 and img.shape[2] == 1:
            img = img[..., 0]
        h, w = img.shape[:2]
        try:
            K = validate_intrinsics(np.asarray(K, dtype=np.float64), "K")
        except ValueError as exc:
            raise FrameError(str(exc)) from None
        cfg = self.config
        if (h, w) != (cfg.height, cfg.width):
            img = cv2.resize(img, (cfg.width, cfg.height), interpolation=cv2.INTER_AREA)
        if self.channels == 1 and img.ndim == 3:
            img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        elif self.channels == 3 and img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
        K_net = np.asarray(scale_intrinsics(K, cfg.width / w, cfg.height / h), dtype=np.float64)
        return np.ascontiguousarray(img), K_net

    def _to_tensor(self, img: np.ndarray) -> torch.Tensor:
        arr = img[None] if img.ndim == 2 else img.transpose(2, 0, 1)
        x = torch.from_numpy(np.ascontiguousarray(arr)).to(self.device, torch.float32).div_(255.0)[None]
        if self.config.fast_path:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)


def _autocast_dtype(cfg: EstimatorConfig, device: torch.device) -> Optional[torch.dtype]:
    """Reduced precision of the network pass (None: fp32); depth/flow heads stay fp32 inside the nets."""
    if cfg.precision == "auto":
        return autocast_dtype(device) if cfg.fast_path else None
    if cfg.precision == "bf16":
        return torch.bfloat16
    if cfg.precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device (use bf16 on CPU)")
        return torch.float16
    return None


def _make_scale_source(cfg: ScaleConfig):
    if cfg.source == "camera_height":
        return CameraHeightScale(cfg)
    if cfg.source == "stereo":
        return StereoScale(cfg)
    return None


def _finite_depth(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """Depth with non-finite or non-positive values replaced (never hand out NaN)."""
    bad = ~np.isfinite(depth) | (depth <= 0)
    if bad.any():
        depth = depth.copy()
        depth[bad] = max_depth
    return depth.astype(np.float32, copy=False)


def _finite_flow(flow: np.ndarray) -> np.ndarray:
    bad = ~np.isfinite(flow)
    if bad.any():
        flow = flow.copy()
        flow[bad] = 0.0
    return flow.astype(np.float32, copy=False)
