"""Streaming depth / flow / ego-motion estimator: frames in, :class:`Result` out. No ROS imports.

One :meth:`Estimator.step` per camera frame (han2021's inference path), as named stages:

1. **validate** the frame (image, K, stamp) and apply the **stamp policy** (:func:`stamp_policy`):
   nothing is buffered, refined or run before a frame is known to be usable;
2. **prepare**: undistort (``camera_info`` distortion, maps cached per camera), then two sizes: the
   network input (``input_fit``; by default the whole image at the camera's aspect ratio and about the
   trained pixel count, see :meth:`Estimator.input_size`; K scaled) and the geometry image
   (``pose.image_fraction`` of the camera image, K scaled); a camera of another size than the previous frame's
   restarts the tracking (recurrent state, cached features and flow are tied to the sizes);
3. online **refinement** (GLNet, optional) on the recent network images;
4. **network**: the shared encoder once per frame, the recurrent cell, the depth decoder, and the flow
   decoder on the cached features of the previous frame (both directions);
5. **flow** at the geometry size: classical DIS, or the network flow upsampled (values scaled);
6. **pose**: two-view geometry (essential matrix, cheirality, triangulation) -- or the rotation only
   when there is too little parallax to triangulate, or the model's PoseNet for methods without flow;
   what the odometry makes of that measurement (status -> motion, the constant-velocity memory, step
   lengths, unit factors) is decided by the
   :class:`~depth_pose_ros.pipeline.odometry_policy.OdometryPolicy`;
7. **scale**: the step's translation length carried from the previous pair through the points both
   pairs triangulate in their shared frame (:class:`~depth_pose_ros.pipeline.scale_chain.ScaleChain`,
   ``pose.scale_propagation: geometry``; ``Result.step_length_source == "geometry"``), else from aligning the
   network depth to the triangulation (``"depth"``), else the last step (``"constant_velocity"``);
   the network depth is kept in the same units; an optional metric source (road plane of the
   triangulated points, or stereo) gives the factor from those units to metres;
8. **result**: everything finite, poses in the convention of ``docs/architecture.md``.

Each step enters the trajectory (``T_world_cam``) multiplied by the metric factor known at that step
(1 before the metric source's first observation); poses already handed out are never rescaled, so a
factor that arrives or changes later bends no past pose and the odometry stays continuous (REP 105):
steps taken before the first observation stay in monocular units. The depth of each result is
multiplied by the current factors (network depth -> odometry units -> metres).
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, overload

import cv2
import numpy as np
import torch

from depth_pose_ros.eval.flow_metrics import resize_flow
from depth_pose_ros.geometry.camera import crop_intrinsics, scale_intrinsics, validate_intrinsics
from depth_pose_ros.geometry.dis_flow import dis_flow
from depth_pose_ros.geometry.distortion import Distortion, Undistorter
from depth_pose_ros.geometry.se3_np import invert_np
from depth_pose_ros.geometry.two_view import (
    TwoViewConfig,
    TwoViewStatus,
    estimate_two_view,
    rotation_only_fit,
)
from depth_pose_ros.nets.device import precision_dtype, resolve_device, resolve_precision
from depth_pose_ros.nets.fast import FastPathOptions, optimize_for_inference
from depth_pose_ros.nets.model import INPUT_MULTIPLE, DepthFlowNet
from depth_pose_ros.nets.recurrent import RecurrentState
from depth_pose_ros.pipeline.config import EstimatorConfig
from depth_pose_ros.pipeline.odometry_policy import Motion, OdometryPolicy, Step
from depth_pose_ros.pipeline.refinement import refine_estimator
from depth_pose_ros.pipeline.result import Result
from depth_pose_ros.pipeline.scale_sources import ground_points, observe_camera_height, observe_stereo
from depth_pose_ros.utils.image import image_to_tensor, match_channels, to_gray_u8, to_rgb_or_gray

__all__ = ["Estimator", "EstimatorConfig", "FrameError", "MIN_IMAGE_SIDE", "Result", "aspect_input_size",
           "stamp_policy"]

#: TwoViewConfig fields in pixels: given for the camera image, scaled to the geometry image.
PIXEL_THRESHOLDS = ("refine_loss_scale_px", "rigid_threshold_px", "pnp_threshold_px",
                    "max_reprojection_px", "min_mean_flow_px")

#: Grid samples of the parallax test (the median flow left after the best pure rotation).
PARALLAX_SAMPLES = 2000
#: Smallest accepted image side (pixels): the network's coarsest stride; smaller frames carry no depth.
MIN_IMAGE_SIDE = 32


#: ``input_fit: aspect``: weight of the pixel-count error against the aspect error (both as |log ratio|)
#: when a network size is chosen. Below 1 because the aspect residue is only a mild per-axis stretch
#: (the shipped model was itself trained on stretched KITTI frames), while a larger input costs time in
#: proportion and a smaller one loses detail; 0.5 keeps the input within about 1.25x of the trained count
#: for common cameras.
ASPECT_PIXEL_WEIGHT = 0.5


def aspect_input_size(image_size: tuple[int, int], trained_size: tuple[int, int],
                      multiple: int = INPUT_MULTIPLE) -> tuple[int, int]:
    """(height, width) of the network input for a camera image of ``image_size`` (``input_fit: aspect``).

    Why: the network should see the whole camera image (every camera pixel gets a depth) at the pixel
    scale it was trained at, without the distortion of squeezing a 4:3 image into a 3:1 network size.
    Each side must be a multiple of ``multiple`` (the network's coarsest stride), so the aspect can
    only be approximated: among those sizes, the one minimising ``|log aspect ratio error| +
    ASPECT_PIXEL_WEIGHT * |log pixel count / trained pixel count|`` is taken (ties: the smaller).
    A camera with the trained aspect ratio gets exactly ``trained_size``.
    """
    h, w = int(image_size[0]), int(image_size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    aspect, pixels = w / h, float(trained_size[0] * trained_size[1])
    best: Optional[tuple[float, int, int, int]] = None
    top = max(2, int(math.ceil(2.0 * math.sqrt(pixels / aspect) / multiple)) + 1)
    for nh in range(multiple, top * multiple + 1, multiple):
        k = nh * aspect / multiple
        for nw in {max(1, math.floor(k)) * multiple, max(1, math.ceil(k)) * multiple}:
            cost = abs(math.log(nw / nh / aspect)) + ASPECT_PIXEL_WEIGHT * abs(math.log(nh * nw / pixels))
            key = (round(cost, 9), nh * nw, nh, nw)
            if best is None or key < best:
                best = key
    assert best is not None
    return best[2], best[3]


class FrameError(ValueError):
    """The frame given to :meth:`Estimator.step` cannot be processed (the caller skips it)."""


def stamp_policy(prev_stamp: Optional[float], stamp: float, max_gap_s: float) -> tuple[str, bool]:
    """What a new stamp does to the tracking: ``(reason, keep_pose)``; ``reason`` is empty to continue.

    The one policy of the project (the node applies it to its caches too): a gap larger than
    ``max_gap_s`` or a repeated stamp restarts the tracking but keeps the trajectory (the vehicle did
    not teleport); a stamp going backwards (a bag loop, a restarted driver or clock) restarts the
    odometry at the identity, because the data itself restarted.
    """
    if prev_stamp is None:
        return "", True
    dt = stamp - prev_stamp
    if dt < 0:
        return f"timestamp went backwards by {-dt:.3f}s", False
    if dt == 0:
        return "repeated timestamp", True
    if dt > max_gap_s:
        return f"timestamp gap of {dt:.3f}s > max_gap_s={max_gap_s}", True
    return "", True


@dataclass
class _Prepared:
    """One validated frame at the two working sizes."""

    net_image: np.ndarray  # network size, network channels
    K_net: np.ndarray
    pose_image: np.ndarray  # geometry size, gray uint8
    K_pose: np.ndarray
    tensor: torch.Tensor  # 1xCxHxW network input
    pose_fraction: float  # geometry image width / camera image width
    image_size: tuple[int, int]  # (height, width) of the (undistorted) camera image


@dataclass
class _Previous:
    """What the next step needs of the previous frame."""

    stamp: float
    features: list[torch.Tensor]
    tensor: torch.Tensor
    image_size: tuple[int, int]  # camera image size: a frame of another size restarts the tracking
    pose_image: np.ndarray
    depth_pose: np.ndarray  # network depth (network units) resized to the geometry size
    T_world_cam: np.ndarray  # as handed out (metres once a metric source has a factor)


class Estimator:
    """Streaming estimator over one camera; owns the recurrent state and, through its
    :class:`OdometryPolicy` (``self.odometry``), the odometry."""

    def __init__(self, model: DepthFlowNet, config: Optional[EstimatorConfig] = None) -> None:
        self.config = config if config is not None else EstimatorConfig()
        cfg = self.config
        if cfg.num_threads > 0:
            torch.set_num_threads(cfg.num_threads)
        self.device = resolve_device(cfg.device)
        self.model = model.to(self.device).eval()
        self.uses_posenet = cfg.flow_source == "network" and model.flow_decoder is None
        if self.uses_posenet and model.pose_net is None:
            raise ValueError("flow_source='network' needs a model with a flow decoder or a PoseNet; use "
                             "flow_source='dis' for this model")
        self.channels = model.cfg.encoder.image_channels
        if (cfg.fast_path or cfg.compile) and cfg.refinement.enabled:
            raise ValueError("online refinement trains the weights: it cannot run on the fast path "
                             "(folded BatchNorm / compiled modules); disable one of them")
        if cfg.fast_path or cfg.compile:
            options = FastPathOptions(fuse_batchnorm=cfg.fast_path, channels_last=cfg.fast_path, autocast=False,
                                      compile=cfg.compile)
            # warmed up (compiled) at the configured size; a camera whose input_fit size differs warms up
            # on its first frames (a torch.compile'd model compiles once more for it)
            self.model = optimize_for_inference(self.model, options, self.device, (cfg.height, cfg.width)).model
        # precision auto: the device's fast reduced precision on the fast path, else fp32 (the depth / flow
        # heads stay fp32 inside the nets either way)
        self._autocast_dtype = precision_dtype(resolve_precision(cfg.precision, self.device,
                                                                 auto_reduced=cfg.fast_path))
        self.undistort = Undistorter()
        self.refiner = None  # OnlineRefiner, created on first use by refine_estimator
        # status -> motion, step lengths, the constant-velocity memory and the unit factors
        self.odometry = OdometryPolicy(cfg.pose.scale_propagation, cfg.pose.min_shared_points,
                                       cfg.pose.max_scale_jump, cfg.scale.window, cfg.scale.warmup_frames,
                                       cfg.scale.source)
        self._last_plane_inliers = 0.0
        self._index = 0
        self._stamp: Optional[float] = None
        self._origin = np.eye(4)
        self._state: Optional[RecurrentState] = None
        self._prev: Optional[_Previous] = None
        self._two_view_cache: Optional[tuple[float, TwoViewConfig]] = None
        self._input_sizes: dict[tuple[int, int, str], tuple[int, int]] = {}  # (h, w, fit) -> network size

    # ----------------------------------------------------------------------------------- public
    @classmethod
    def from_checkpoint(cls, path: str | Path, config: Optional[EstimatorConfig] = None,
                        map_location: str = "cpu") -> Estimator:
        """Estimator around the weights of a ``.safetensors`` checkpoint (config read from it)."""
        from depth_pose_ros.nets.checkpoint import load_model

        model, _ = load_model(path, map_location=map_location)
        return cls(model, config)

    def reset(self, keep_pose: bool = False) -> None:
        """Forget the recurrent state, cached features and the scale chain; the next frame is a 'first'.

        ``keep_pose=False`` also restarts the odometry at the identity with fresh scale estimates;
        ``True`` (timestamp gaps) continues the trajectory from the last pose in the same units, so a
        dropped stretch of frames does not throw the vehicle back to the origin.
        """
        self._origin = self._prev.T_world_cam.copy() if keep_pose and self._prev is not None else np.eye(4)
        self._state = None
        self._prev = None
        self.odometry.reset(keep_units=keep_pose)
        if self.refiner is not None:
            self.refiner.reset()
        if not keep_pose:
            self._stamp = None

    @property
    def network_size(self) -> tuple[int, int]:
        """The configured (trained) network size: the input of every camera with ``input_fit`` crop or
        stretch; with ``aspect`` the reference pixel count (a camera's own size: :meth:`input_size`)."""
        return self.config.height, self.config.width

    def input_size(self, image_size: tuple[int, int], fit: Optional[str] = None) -> tuple[int, int]:
        """(height, width) of the network input for a camera image of ``image_size`` (``input_fit``,
        or ``fit``); cached per camera size, since a stream keeps its size."""
        fit = fit or self.config.input_fit
        key = (int(image_size[0]), int(image_size[1]), fit)
        size = self._input_sizes.get(key)
        if size is None:
            size = (aspect_input_size(key[:2], self.network_size) if fit == "aspect" else self.network_size)
            self._input_sizes[key] = size
        return size

    def pose_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """(height, width) of the geometry image for a camera image of ``image_size``."""
        h, w = image_size
        p = self.config.pose
        width = float(np.clip(p.image_fraction * w, min(p.min_width, w), p.max_width))
        s = width / w
        return max(int(round(h * s)), 16), max(int(round(w * s)), 16)

    def step(self, image: np.ndarray, K: np.ndarray, stamp: float, stereo_image: Optional[np.ndarray] = None,
             stereo_baseline: Optional[float] = None, distortion: Optional[Distortion] = None) -> Result:
        """Process one frame.

        Args:
            image: HxWx3 uint8 RGB, HxW uint8 gray, HxW uint16 (mono16) or float, any size >= 32x32.
            K: 3x3 intrinsics of ``image``.
            stamp: seconds; see :func:`stamp_policy` for gaps and backward jumps.
            stereo_image, stereo_baseline: right image of a rectified pair and its baseline (m), used
                by the ``stereo`` scale source.
            distortion: lens distortion of ``image`` (None: pinhole); the frame is undistorted first.

        Raises:
            FrameError: the image, K or stamp is unusable; nothing of the estimator's state changed.
        """
        t0 = time.perf_counter()
        img, K, stamp = self._validate(image, K, stamp)
        reset_reason, keep_pose = stamp_policy(self._stamp, stamp, self.config.max_gap_s)
        if reset_reason:
            self.reset(keep_pose=keep_pose)
        self._stamp = stamp
        frame = self._prepare(img, K, distortion)
        if self._prev is not None and self._prev.image_size != frame.image_size:
            # another camera size: other network and geometry sizes, so nothing of the previous frame
            # (recurrent state, features, flow, scale chain) can continue; the trajectory does
            size_reason = (f"image size changed from {self._prev.image_size[1]}x{self._prev.image_size[0]} "
                           f"to {frame.image_size[1]}x{frame.image_size[0]}")
            self.reset(keep_pose=True)
            reset_reason = f"{reset_reason}; {size_reason}" if reset_reason else size_reason
        timings = {"prepare": _ms(t0)}
        if self.config.refinement.enabled:  # GLNet online refinement (updates the weights)
            refine_estimator(self, frame.net_image, frame.K_net)
        t1 = time.perf_counter()
        feats, depth, net_fw, net_bw, posenet_T = self._network(frame)
        timings["network"] = _ms(t1)
        depth_pose = cv2.resize(depth, frame.pose_image.shape[::-1], interpolation=cv2.INTER_LINEAR)
        result = Result(stamp=stamp, index=self._index, image=frame.net_image, K=frame.K_net, depth=depth,
                        T_world_cam=self._origin.copy(), K_pose=frame.K_pose, reset_reason=reset_reason)
        T_world_cam = self._origin.copy()
        if self._prev is None:
            _report(result, self.odometry.first())
        else:
            t2 = time.perf_counter()
            flow_fw, flow_bw = self._flow(frame, net_fw, net_bw)
            timings["flow"] = _ms(t2)
            t3 = time.perf_counter()
            step = self._pose(result, frame, flow_fw, flow_bw, posenet_T)
            _report(result, step)
            timings["geometry"] = _ms(t3)
            t4 = time.perf_counter()
            self._metric_scale(result, frame, step.motion, flow_fw, depth_pose, stereo_image, stereo_baseline)
            timings["scale"] = _ms(t4)
            # Each step enters the trajectory at the metric factor of its time (OdometryPolicy.T_cur_prev).
            T_cur_prev = self.odometry.T_cur_prev(step.motion)
            T_world_cam = self._prev.T_world_cam @ invert_np(T_cur_prev)
            if not np.all(np.isfinite(T_world_cam)):  # never hand out NaN: hold the last pose
                T_world_cam, T_cur_prev = self._prev.T_world_cam.copy(), np.eye(4)
                _report(result, self.odometry.non_finite(step))
            result.T_cur_prev = T_cur_prev
            result.flow, result.flow_backward = flow_fw, flow_bw
            result.dt = stamp - self._prev.stamp
        m, f = self.odometry.metric_factor, self.odometry.depth_factor
        result.depth_factor, result.metres_per_unit = f * m, m
        result.scale_converged = self.odometry.scale_converged
        result.depth = np.minimum(depth * (f * m), self.config.max_depth_m).astype(np.float32)
        result.T_world_cam = T_world_cam
        self._prev = _Previous(stamp, feats, frame.tensor, frame.image_size, frame.pose_image, depth_pose,
                               T_world_cam)
        self._index += 1
        timings["total"] = _ms(t0)
        result.timings_ms = timings
        return result

    def flow_between(self, image1: np.ndarray, image2: np.ndarray) -> np.ndarray:
        """Network forward flow image1 -> image2 (HxWx2 at the network size), from a fresh recurrent
        state; the streaming state is left untouched. For pairwise benchmarks such as KITTI 2015."""
        if self.model.flow_decoder is None:
            raise ValueError("this model has no flow decoder")
        # the whole image, stretched to the network size: callers resize this flow back to the image size
        a, _ = self._network_input(to_rgb_or_gray(image1), fit="stretch")
        b, _ = self._network_input(to_rgb_or_gray(image2), fit="stretch")
        with torch.inference_mode(), self._autocast():
            feats_a, state = self.model.encode(self._to_tensor(a), None)
            feats_b, _ = self.model.encode(self._to_tensor(b), state)
            flow = self.model.predict_flow(feats_a, feats_b, both_directions=False).forward[0]
        return _finite_flow(flow[0].float().permute(1, 2, 0).cpu().numpy())

    # ------------------------------------------------------------------------------------ stages
    def _validate(self, image: np.ndarray, K: np.ndarray, stamp: float) -> tuple[np.ndarray, np.ndarray, float]:
        try:
            img = to_rgb_or_gray(image)
            K = validate_intrinsics(np.asarray(K, dtype=np.float64), "K")
        except ValueError as exc:
            raise FrameError(str(exc)) from None
        if min(img.shape[:2]) < MIN_IMAGE_SIDE:
            raise FrameError(f"image of {img.shape[1]}x{img.shape[0]} is too small: at least "
                             f"{MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels are needed")
        try:
            stamp = float(stamp)
        except (TypeError, ValueError):
            raise FrameError(f"timestamp must be a number, got {stamp!r}") from None
        if not np.isfinite(stamp):
            raise FrameError(f"timestamp must be finite, got {stamp}")
        return img, K, stamp

    def _prepare(self, img: np.ndarray, K: np.ndarray, distortion: Optional[Distortion]) -> _Prepared:
        img = self.undistort(img, K, distortion)
        h, w = img.shape[:2]
        ph, pw = self.pose_size((h, w))
        pose_image = cv2.resize(to_gray_u8(img), (pw, ph), interpolation=cv2.INTER_AREA)
        K_pose = np.asarray(scale_intrinsics(K, pw / w, ph / h), dtype=np.float64)
        net_image, K_net = self._network_input(img, K)
        return _Prepared(net_image, K_net, pose_image, K_pose, self._to_tensor(net_image), pw / w, (h, w))

    def _network(self, frame: _Prepared):
        """Features, depth (network units), network flows (network size) and PoseNet ``T_cur_prev``."""
        cfg, prev, x = self.config, self._prev, frame.tensor
        with torch.inference_mode(), self._autocast():
            feats, self._state = self.model.encode(x, self._state)
            cues = None
            if self.model.idce is not None:
                cues = self.model.stream_features(prev.features if prev else None, feats,
                                                  image_prev=prev.tensor if prev else None, image_cur=x)
            depth_t = self.model.predict_depth(feats, cues)[0]
            flow_fw = flow_bw = posenet_T = None
            if prev is not None and cfg.flow_source == "network":
                if self.uses_posenet:
                    T_prev_cur = self.model.predict_pose(prev.tensor, x).T_prev_cur[0].double().cpu().numpy()
                    posenet_T = invert_np(T_prev_cur)
                else:
                    out = self.model.predict_flow(prev.features, feats, both_directions=cfg.backward_flow)
                    flow_fw = _finite_flow(out.forward[0][0].float().permute(1, 2, 0).cpu().numpy())
                    if out.backward is not None:
                        flow_bw = _finite_flow(out.backward[0][0].float().permute(1, 2, 0).cpu().numpy())
        depth = _finite_depth(depth_t[0, 0].float().cpu().numpy(), self.model.cfg.depth.max_depth)
        return feats, depth, flow_fw, flow_bw, posenet_T

    def _flow(self, frame: _Prepared, net_fw: Optional[np.ndarray], net_bw: Optional[np.ndarray]):
        """Forward / backward flow previous <-> current at the geometry size."""
        cfg, size, prev = self.config, frame.pose_image.shape, self._prev
        assert prev is not None  # step() measures flow only with a previous frame
        if self.uses_posenet:
            return None, None
        if cfg.flow_source == "dis":
            fw = dis_flow(prev.pose_image, frame.pose_image, cfg.pose.dis_preset)
            bw = dis_flow(frame.pose_image, prev.pose_image, cfg.pose.dis_preset) if cfg.backward_flow else None
            return fw, bw
        assert net_fw is not None  # flow_source network without a PoseNet: _network ran the flow decoder
        fw = resize_flow(net_fw, size)
        return fw, None if net_bw is None else resize_flow(net_bw, size)

    def _pose(self, result: Result, frame: _Prepared, flow_fw, flow_bw, posenet_T) -> Step:
        """Measure the step (PoseNet, parallax, two-view geometry); the odometry policy turns the
        measurement into the motion (odometry units) and its status."""
        if posenet_T is not None:  # methods without flow: the PoseNet, translation in network units
            return self.odometry.posenet(posenet_T)
        R_rot, parallax = self._parallax(flow_fw, frame.K_pose)
        pcfg = self.config.pose
        if parallax < pcfg.min_parallax_px:
            return self.odometry.low_parallax(R_rot)
        tv_cfg = self._two_view_at(frame.pose_fraction)
        if parallax >= pcfg.restart_below_parallax_px:  # well-conditioned: one RANSAC start is enough
            tv_cfg = dataclasses.replace(tv_cfg, restarts=1)
        assert self._prev is not None  # step() measures a pose only with a previous frame
        tv = estimate_two_view(flow_fw, frame.K_pose, flow_bw=flow_bw, depth1=self._prev.depth_pose, config=tv_cfg)
        result.two_view = tv
        return self.odometry.two_view(tv, frame.K_pose)

    def _metric_scale(self, result: Result, frame: _Prepared, motion: Motion, flow_fw, depth_pose: np.ndarray,
                      stereo_image, stereo_baseline) -> None:
        """Observe the metric factor (odometry units -> metres) of the configured source."""
        scfg = self.config.scale
        if scfg.source == "camera_height" and result.status == TwoViewStatus.OK.value and motion.length > 0:
            tv = result.two_view  # usable flow, and the rigid test on the road samples only (not dense)
            valid = tv.valid if tv is not None and tv.valid is not None else np.ones(flow_fw.shape[:2], bool)
            pts = ground_points(flow_fw, valid, frame.K_pose, motion.R, motion.t, scfg.ground_region,
                                max_epipolar_px=self._two_view_at(frame.pose_fraction).rigid_threshold_px)
            plane = observe_camera_height(pts * motion.length, scfg) if len(pts) else None
            if plane is not None:
                self._last_plane_inliers = plane.inlier_ratio
                self.odometry.observe_metric(scfg.camera_height_m / plane.height)
        elif scfg.source == "stereo":
            baseline = scfg.stereo_baseline_m or stereo_baseline
            right = None
            if stereo_image is not None:
                right = cv2.resize(to_gray_u8(stereo_image), frame.pose_image.shape[::-1],
                                   interpolation=cv2.INTER_AREA)
            f = self.odometry.depth_factor
            self.odometry.observe_metric(observe_stereo(depth_pose * f, frame.pose_image, right, frame.K_pose[0, 0],
                                                        baseline))
        result.plane_inlier_ratio = self._last_plane_inliers

    # ----------------------------------------------------------------------------------- helpers
    def _parallax(self, flow_fw: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, float]:
        """The pair's best pure rotation and the median flow left after it (px): the parallax that
        translation can be triangulated from."""
        h, w = flow_fw.shape[:2]
        step = max(2, int(np.sqrt(h * w / PARALLAX_SAMPLES)))  # a median needs a few thousand samples
        ys, xs = np.mgrid[2:h - 2:step, 2:w - 2:step]
        fw = flow_fw[ys, xs]
        ok = np.isfinite(fw).all(-1)  # (no fb test: the median residual is robust to bad matches)
        if ok.sum() < 20:
            return np.eye(3), float("inf")
        p1 = np.stack([xs[ok], ys[ok]], axis=1).astype(np.float64)
        return rotation_only_fit(p1, p1 + fw[ok], K)

    def _two_view_at(self, fraction: float) -> TwoViewConfig:
        """The two-view settings with their pixel thresholds, given for the camera image, scaled to the
        geometry image of ``fraction`` x its width (a 1 px epipolar tolerance of the camera is 0.5 px at half
        size)."""
        key = round(fraction, 6)
        if self._two_view_cache is None or self._two_view_cache[0] != key:
            tv = self.config.two_view
            self._two_view_cache = (key, dataclasses.replace(
                tv, **{name: getattr(tv, name) * fraction for name in PIXEL_THRESHOLDS}))
        return self._two_view_cache[1]

    @overload
    def _network_input(self, img: np.ndarray, K: np.ndarray,
                       fit: Optional[str] = None) -> tuple[np.ndarray, np.ndarray]:
        ...

    @overload
    def _network_input(self, img: np.ndarray, K: None = None,
                       fit: Optional[str] = None) -> tuple[np.ndarray, None]:
        ...

    def _network_input(self, img: np.ndarray, K: Optional[np.ndarray] = None,
                       fit: Optional[str] = None) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The network image of a camera image, and its exact intrinsics (when ``K`` is given).

        ``input_fit`` (``config.INPUT_FITS``): ``aspect`` and ``stretch`` resize the whole image (to
        :meth:`input_size`: the camera's aspect ratio, or the configured size), K scaled per axis, so
        the network depth covers every camera pixel; ``crop`` resizes until the image covers the
        configured size and crops the centre (no stretch at all, but the border gets no depth).
        """
        fit = fit or self.config.input_fit
        h, w = img.shape[:2]
        nh, nw = self.input_size((h, w), fit)
        K_net = None
        if fit != "crop" or (h, w) == (nh, nw):
            if (h, w) != (nh, nw):
                img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
            if K is not None:
                K_net = np.asarray(scale_intrinsics(K, nw / w, nh / h), dtype=np.float64)
        else:
            s = max(nw / w, nh / h)
            rw, rh = max(nw, int(round(w * s))), max(nh, int(round(h * s)))
            x0, y0 = (rw - nw) // 2, (rh - nh) // 2
            img = cv2.resize(img, (rw, rh), interpolation=cv2.INTER_AREA)[y0:y0 + nh, x0:x0 + nw]
            if K is not None:
                K_net = np.asarray(crop_intrinsics(scale_intrinsics(K, rw / w, rh / h), x0, y0), dtype=np.float64)
        return np.ascontiguousarray(match_channels(img, self.channels)), K_net

    def _to_tensor(self, img: np.ndarray) -> torch.Tensor:
        x = image_to_tensor(img, self.channels, self.device)[None]
        if self.config.fast_path:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _autocast(self):
        if self._autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self._autocast_dtype)


def _report(result: Result, step: Step) -> None:
    """What the odometry policy decided, written into the step's result."""
    result.status, result.step_length_source = step.status, step.step_length_source
    result.confidence, result.num_inliers, result.inlier_ratio = step.confidence, step.num_inliers, step.inlier_ratio


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


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
