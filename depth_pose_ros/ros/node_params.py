"""Parameters of ``depth_pose_node``: one table (name, default, description), parsed into typed settings.

Why a table outside the node: the same list declares the ROS parameters (with descriptions, for
``ros2 param describe``), documents ``config/default.yaml``, and lets tests and the offline comparison
build *exactly* the configuration the node runs with (:func:`settings_from_params_file` +
:func:`make_estimator`) without starting ROS. Parsing is strict like the rest of the project: a wrong
type or value raises ``ValueError`` naming the parameter, and the node rejects parameters it does not
know (a typo in a YAML file must not silently fall back to a default).

Estimator settings go through :mod:`depth_pose_ros.utils.config` into :class:`EstimatorConfig`
(optionally on top of an ``estimator_config`` YAML holding the less common knobs such as ``two_view``).
This module imports no ROS package and no torch (:func:`make_estimator` imports torch when called).
"""
from __future__ import annotations

import array
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros.pipeline.config import INPUT_FITS, EstimatorConfig
from depth_pose_ros.pipeline.result import OUTPUT_SIZES as PIPELINE_OUTPUT_SIZES
from depth_pose_ros.ros.odometry_math import OPTICAL_IN_BODY_RPY, make_transform
from depth_pose_ros.ros.param_table import ParamSpec
from depth_pose_ros.utils import config as config_utils

NODE_NAME = "depth_pose_node"
#: Parameters every rclpy node has; never reported as unknown.
BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})
#: Image encodings the node takes as a camera image (sensor_msgs/Image): the one list every message and
#: description names. 32FC1 decodes too, but it is a depth image, not a camera image.
CAMERA_ENCODINGS: tuple[str, ...] = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3", "8UC4",
                                     "16UC1")
#: Choices of ``output.size`` and ``scale.warmup``.
OUTPUT_SIZES: tuple[str, ...] = PIPELINE_OUTPUT_SIZES
SCALE_WARMUP: tuple[str, ...] = ("publish", "hold")
#: camera_link -> optical frame (REP 103): optical z (forward) = body x, optical x (right) = body -y.
T_LINK_OPTICAL: np.ndarray = make_transform([0.0, 0.0, 0.0], OPTICAL_IN_BODY_RPY)


#: Node parameter -> EstimatorConfig field (dotted). Their defaults are the dataclass's; a value given
#: to the node overrides the model folder's estimator.yaml only when it was set (docs/architecture.md).
ESTIMATOR_PARAMS: dict[str, str] = {
    "device": "device", "precision": "precision", "fast_path": "fast_path", "num_threads": "num_threads",
    "input.height": "height", "input.width": "width", "input_fit": "input_fit", "flow_source": "flow_source",
    "max_gap_s": "max_gap_s",
    "max_depth_m": "max_depth_m", "pose.image_fraction": "pose.image_fraction", "pose.max_width": "pose.max_width",
    "scale.source": "scale.source", "scale.camera_height_m": "scale.camera_height_m",
    "scale.stereo_baseline_m": "scale.stereo_baseline_m",
}


_ESTIMATOR_DEFAULTS = EstimatorConfig()


def _estimator_default(field_path: str) -> Any:
    value: Any = _ESTIMATOR_DEFAULTS
    for part in field_path.split("."):
        value = getattr(value, part)
    return value


def _estimator_param(name: str, description: str) -> ParamSpec:
    return ParamSpec(name, _estimator_default(ESTIMATOR_PARAMS[name]), description)

PARAMETERS: tuple[ParamSpec, ...] = (
    # -- model
    ParamSpec("checkpoint", "", "Model weights (.safetensors). Empty: models/default/model.safetensors; if that "
                                "is missing too, untrained weights (a loud warning is logged)."),
    ParamSpec("model_config", "", "NetConfig YAML of the untrained network used without a checkpoint "
                                  "(empty: the default light network). Ignored when a checkpoint is loaded."),
    ParamSpec("seed", 0, "torch seed of untrained weights (reproducible runs without a checkpoint)."),
    ParamSpec("estimator_config", "", "Optional EstimatorConfig YAML (e.g. two_view settings): overrides the model "
                                      "folder's estimator.yaml; the estimator parameters below override it when set."),
    _estimator_param("device", "torch device: cpu, cuda, cuda:1, ..."),
    _estimator_param("precision", "auto (bf16/fp16 on the fast path, else fp32), fp32, bf16 (CPU) or fp16 (CUDA)."),
    _estimator_param("fast_path", "Fold BatchNorm, channels_last and reduced-precision autocast (faster inference)."),
    _estimator_param("num_threads", "torch intra-op threads (0: torch's default)."),
    _estimator_param("input.height", "Network input height (multiple of 32); images are resized, K scaled. Unset: "
                                     "the model's own size (its estimator.yaml or training size)."),
    _estimator_param("input.width", "Network input width (multiple of 32). Unset: the model's own."),
    _estimator_param("input_fit", f"How the camera image becomes the network input, one of {', '.join(INPUT_FITS)}: "
                                  "aspect (the whole image at a network size chosen per camera size: its aspect "
                                  "ratio, about input.height x input.width pixels; depth covers every camera "
                                  "pixel), crop (resize to cover input.height x input.width, centre crop: the "
                                  "border has no depth) or stretch (the whole image resized to input.height x "
                                  "input.width, each axis alone)."),
    _estimator_param("flow_source", "Optical flow for the pose: network (the model's own; its PoseNet for models "
                                    "without a flow decoder) or dis (classical OpenCV DIS). Unset: the model's."),
    _estimator_param("max_gap_s", "A larger gap between image stamps restarts tracking (odometry continues)."),
    _estimator_param("max_depth_m", "Published depth is clamped to this range (m)."),
    _estimator_param("pose.image_fraction", "Two-view geometry image size as a fraction of the camera image "
                                            "(independent of the network size)."),
    _estimator_param("pose.max_width", "Cap of the geometry image width (pixels)."),
    # -- absolute scale
    _estimator_param("scale.source", "Metric scale: none (monocular units), camera_height (road plane of the "
                                     "triangulated points at scale.camera_height_m below the camera) or stereo."),
    _estimator_param("scale.camera_height_m", "Height of the camera above the ground (camera_height source)."),
    _estimator_param("scale.stereo_baseline_m", "Stereo baseline (m) for the stereo source; must be > 0 then."),
    # -- topics
    ParamSpec("topics.image", "image", f"Image topic (sensor_msgs/Image: {', '.join(CAMERA_ENCODINGS)}); remap "
                                       "it or set it here."),
    ParamSpec("topics.use_compressed", False, "Subscribe <topics.image>/compressed (CompressedImage, jpeg/png) "
                                              "instead of the raw image."),
    ParamSpec("topics.camera_info", "camera_info", "CameraInfo topic paired with the image by stamp."),
    ParamSpec("topics.stereo_image", "stereo/image", "Right image of a rectified pair (scale.source: stereo)."),
    ParamSpec("camera_info.tolerance_s", 0.01, "Nearest camera_info within this stamp distance is used when "
                                               "none has exactly the image's stamp."),
    ParamSpec("camera_info.wait_s", 0.1, "Longest wait for the camera_info of an image that arrived first."),
    ParamSpec("intrinsics.fx", 0.0, "Fallback intrinsics (pixels of the incoming image) used while no "
                                    "camera_info has been received; all four must be > 0 to be used."),
    ParamSpec("intrinsics.fy", 0.0, "See intrinsics.fx."),
    ParamSpec("intrinsics.cx", 0.0, "See intrinsics.fx."),
    ParamSpec("intrinsics.cy", 0.0, "See intrinsics.fx."),
    # -- frames
    ParamSpec("frames.odom", "odom", "Odometry frame (REP 105): base_link's pose at the first frame."),
    ParamSpec("frames.base", "base_link", "Robot body frame (x forward, y left, z up)."),
    ParamSpec("frames.camera_link", "camera_link", "Camera body frame (x forward, y left, z up, REP 103), placed "
                                                   "in base_link by camera_to_base; the optical frame hangs below "
                                                   "it with the REP 103 optical rotation. Empty: no camera_link "
                                                   "(base_link -> optical frame directly, same pose)."),
    ParamSpec("frames.camera", "", "Camera optical frame (z forward, x right, y down) of depth, depth/camera_info, "
                                   "depth/colored and points; empty: the image's header.frame_id (else "
                                   "camera_optical_frame)."),
    ParamSpec("camera_to_base.xyz", [0.0, 0.0, 1.65], "camera_link position in base_link (m), published on "
                                                      "/tf_static as base_link -> camera_link."),
    ParamSpec("camera_to_base.rpy", [0.0, 0.0, 0.0],
              "camera_link orientation in base_link, fixed-axis roll pitch yaw (rad), body convention (x "
              "forward): [0, 0, 0] is a forward-looking camera. The optical rotation (-pi/2, 0, -pi/2) is "
              "added by the node (camera_link -> optical frame)."),
    # -- outputs
    ParamSpec("output.size", "camera", "Size of depth, depth/colored and points: camera (the input image's size, "
                                       "depth registered to it with its K, upsampled edge-aware: never "
                                       "interpolated across depth jumps) or network (the network's size and its K: "
                                       "cheaper, coarser)."),
    ParamSpec("scale.warmup", "publish", "Until the metric scale source has converged (scale.source camera_height "
                                         "or stereo): publish (outputs in monocular units, flagged in /diagnostics) "
                                         "or hold (depth, cloud, odometry, tf and path held back)."),
    ParamSpec("publish.depth", True, "Publish depth (32FC1, m) and depth/camera_info."),
    ParamSpec("publish.colored_depth", True, "Publish depth/colored (rgb8, inverse-depth colour map)."),
    ParamSpec("publish.cloud", True, "Publish points (PointCloud2 xyz + rgb in the camera optical frame)."),
    ParamSpec("publish.triangulated_points", True, "Publish points/triangulated (PointCloud2 xyz + rgb, camera "
                                                   "optical frame): the points the two-view geometry measured "
                                                   "this frame, sparse but not predicted; built only while "
                                                   "subscribed, empty when the pose was not measured."),
    ParamSpec("publish.odom", True, "Publish odom (nav_msgs/Odometry)."),
    ParamSpec("publish.tf", True, "Broadcast odom -> base_link on /tf and base_link -> camera_link -> optical "
                                  "frame on /tf_static."),
    ParamSpec("publish.path", True, "Publish path (nav_msgs/Path of the base_link poses)."),
    ParamSpec("publish.diagnostics", True, "Publish /diagnostics (rate, latency, drops, inliers, status)."),
    ParamSpec("cloud.stride", 8, "Use every stride-th pixel in x and y of the published depth for the cloud "
                                 "(camera pixels with output.size camera)."),
    ParamSpec("cloud.max_range_m", 40.0, "Leave out cloud points farther than this (m)."),
    ParamSpec("path.max_length", 1000, "Poses kept in the published path (oldest dropped)."),
    ParamSpec("path.period_s", 1.0, "Publish the path at most this often (node clock, from a timer, not per frame: "
                                    "its cost grows with its length); 0: with every frame."),
    ParamSpec("qos.image", "auto", "Image subscription QoS: auto, sensor_data, reliable, latched, system_default. "
                                   "auto: reliable when every publisher of the topic is reliable, else best effort "
                                   "(re-checked every second). Large frames (about 1 MB, e.g. 640x480 colour) lose "
                                   "fragments and so whole frames under best effort; reliable re-sends them."),
    ParamSpec("qos.camera_info", "auto", "camera_info / stereo image subscription QoS (as qos.image)."),
    ParamSpec("qos.output", "reliable", "QoS of depth, cloud, odom and path publishers (reliable matches "
                                        "both reliable and best-effort subscribers, e.g. rviz)."),
    ParamSpec("diagnostics.period_s", 1.0, "Diagnostics period (node clock, so sim time under use_sim_time)."),
)

PARAMETER_NAMES: frozenset[str] = frozenset(p.name for p in PARAMETERS)


@dataclass
class NodeSettings:
    """Everything ``depth_pose_node`` reads from its parameters, validated (defaults: :data:`PARAMETERS`)."""

    estimator: EstimatorConfig  # parameters + estimator_config only (validation); the model folder comes later
    estimator_layers: list[dict[str, Any]]  # estimator_config YAML, then the estimator parameters that were set
    checkpoint: str
    model_config: str
    seed: int
    image_topic: str
    use_compressed: bool
    camera_info_topic: str
    stereo_image_topic: str
    camera_info_tolerance_s: float
    camera_info_wait_s: float
    fallback_K: Optional[np.ndarray]  # 3x3 from intrinsics.* when all four are > 0
    odom_frame: str
    base_frame: str
    camera_link_frame: str  # "" = no camera_link frame
    camera_frame: str  # optical; "" = the image's header.frame_id
    T_base_link: np.ndarray  # camera_link in base_link (camera_to_base.*)
    T_base_cam: np.ndarray  # the optical frame in base_link: T_base_link @ T_LINK_OPTICAL (odometry uses it)
    output_size: str
    scale_warmup: str
    publish: dict[str, bool]
    cloud_stride: int
    cloud_max_range_m: float
    path_max_length: int
    path_period_s: float
    qos_image: str
    qos_camera_info: str
    qos_output: str
    diagnostics_period_s: float
    warnings: list[str] = field(default_factory=list)  # valid but suspicious values, for the node to log

    def publishes(self, what: str) -> bool:
        return bool(self.publish.get(what, False))


def defaults() -> dict[str, Any]:
    """Name -> default value of every parameter."""
    return {p.name: p.default for p in PARAMETERS}


def unknown_parameters(names: Any) -> list[str]:
    """The names that are neither parameters of the node nor rclpy's own (sorted).

    ``qos_overrides.*`` entries (the standard ROS 2 QoS-override parameters) are rclpy's business too.
    """
    return sorted(n for n in set(names) - PARAMETER_NAMES - BUILTIN_PARAMETERS if not n.startswith("qos_overrides."))


def unknown_parameters_error(unknown: Iterable[str], label: str = "unknown parameter(s)", hint: str = "") -> str:
    """The error for ``unknown`` parameter names: ``<label> a, b<hint>``, a renamed one
    (``utils.config.RENAMED``) as ``<old> was renamed <new>`` instead."""
    unknown = list(unknown)
    problems = [m for m in map(config_utils.renamed_message, unknown) if m is not None]
    rest = [n for n in unknown if config_utils.renamed_key(n) is None]
    if rest:
        problems.append(f"{label} {', '.join(rest)}{hint}")
    return "; ".join(problems)


def parse_settings(values: Mapping[str, Any], explicit: Optional[Iterable[str]] = None) -> NodeSettings:
    """Validate parameter values (name -> value; missing names take their defaults) into settings.

    ``explicit``: the names that were actually set (parameters file, command line); by default the names
    in ``values``. Only those estimator parameters override the model folder's ``estimator.yaml`` and
    the ``estimator_config`` file: a parameter left at its declared default changes nothing.

    Raises:
        ValueError: naming the parameter (unknown names included).
    """
    unknown = unknown_parameters(values)
    if unknown:
        raise ValueError(unknown_parameters_error(unknown, hint=f" (valid: {', '.join(sorted(PARAMETER_NAMES))})"))
    explicit = set(values) if explicit is None else set(explicit)
    declared = defaults()
    v = {**declared, **dict(values)}

    def get(name: str, kind: type) -> Any:
        return _coerce(name, v[name], kind)

    layers: list[dict[str, Any]] = []
    if get("estimator_config", str):
        layers.append(config_utils.load_yaml(Path(get("estimator_config", str)).expanduser()))
    given: dict[str, Any] = {}
    for name, field_path in ESTIMATOR_PARAMS.items():
        value = get(name, type(declared[name]))  # the type of the dataclass default
        if name not in explicit:
            continue
        node = given
        *parents, leaf = field_path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    layers.append(given)
    # Node-side checks first, so a wrong value is reported under the parameter's own name.
    for name in ("input.height", "input.width"):
        value = get(name, int)
        if value <= 0 or value % 32:  # 0 included: "not set" is leaving the parameter out
            raise ValueError(f"{name}: must be a positive multiple of 32, got {value}")
    for name in ("max_gap_s", "max_depth_m", "scale.camera_height_m", "diagnostics.period_s",
                 "cloud.max_range_m"):
        if not get(name, float) > 0:
            raise ValueError(f"{name}: must be > 0, got {v[name]}")
    for name in ("camera_info.tolerance_s", "camera_info.wait_s", "num_threads", "seed", "path.period_s"):
        if get(name, float) < 0:
            raise ValueError(f"{name}: must be >= 0, got {v[name]}")
    for name in ("cloud.stride", "path.max_length"):
        if get(name, int) < 1:
            raise ValueError(f"{name}: must be >= 1, got {v[name]}")
    for name, choices in (("output.size", OUTPUT_SIZES), ("scale.warmup", SCALE_WARMUP)):
        if get(name, str) not in choices:
            raise ValueError(f"{name}: {v[name]!r} is not one of {', '.join(choices)}")
    merged: dict[str, Any] = {}
    for layer in layers:
        merged = config_utils.deep_merge(merged, layer)
    try:  # validated now (a wrong value fails at start-up); the model folder is merged in make_estimator
        est = config_utils.from_dict(EstimatorConfig, merged)
    except ValueError as exc:
        raise ValueError(f"estimator parameters: {exc}") from None
    if est.scale.source == "stereo" and not est.scale.stereo_baseline_m > 0:
        raise ValueError("scale.stereo_baseline_m: must be > 0 when scale.source is stereo")
    from depth_pose_ros.ros.qos import qos_from_name

    for name in ("qos.image", "qos.camera_info", "qos.output"):
        qos_from_name(get(name, str), what=name, allow_auto=name != "qos.output")  # ValueError naming the key
    for name in ("topics.image", "topics.camera_info", "frames.odom", "frames.base"):
        if not get(name, str).strip():
            raise ValueError(f"{name}: must not be empty")
    frames = {name: get(name, str) for name in ("frames.odom", "frames.base", "frames.camera_link", "frames.camera")}
    named = [(k, f) for k, f in frames.items() if f]
    for i, (key, frame) in enumerate(named):
        for other_key, other in named[i + 1:]:
            if frame == other:
                raise ValueError(f"{key} and {other_key} must differ, both are {frame!r}")

    fx, fy, cx, cy = (get(f"intrinsics.{k}", float) for k in ("fx", "fy", "cx", "cy"))
    fallback_K = None
    if fx > 0 and fy > 0 and cx > 0 and cy > 0:
        fallback_K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    elif any(x > 0 for x in (fx, fy, cx, cy)):
        raise ValueError(f"intrinsics.fx/fy/cx/cy: set all four (> 0) or none, got {fx}, {fy}, {cx}, {cy}")
    try:
        T_base_link = make_transform(get("camera_to_base.xyz", list), get("camera_to_base.rpy", list))
    except ValueError as exc:
        raise ValueError(f"camera_to_base: {exc}") from None
    warnings = []
    if np.allclose(get("camera_to_base.rpy", list), OPTICAL_IN_BODY_RPY, atol=1e-3):
        warnings.append("camera_to_base.rpy is the optical rotation [-pi/2, 0, -pi/2]; it now describes "
                        "camera_link (x forward) and the node adds the optical rotation itself, so this camera "
                        "looks to the right (base_link -y). A forward-looking camera is [0, 0, 0].")

    return NodeSettings(
        estimator=est,
        estimator_layers=layers,
        checkpoint=get("checkpoint", str),
        model_config=get("model_config", str),
        seed=get("seed", int),
        image_topic=get("topics.image", str),
        use_compressed=get("topics.use_compressed", bool),
        camera_info_topic=get("topics.camera_info", str),
        stereo_image_topic=get("topics.stereo_image", str),
        camera_info_tolerance_s=get("camera_info.tolerance_s", float),
        camera_info_wait_s=get("camera_info.wait_s", float),
        fallback_K=fallback_K,
        odom_frame=frames["frames.odom"],
        base_frame=frames["frames.base"],
        camera_link_frame=frames["frames.camera_link"],
        camera_frame=frames["frames.camera"],
        T_base_link=T_base_link,
        T_base_cam=T_base_link @ T_LINK_OPTICAL,
        output_size=get("output.size", str),
        scale_warmup=get("scale.warmup", str),
        publish={k.split(".", 1)[1]: get(k, bool) for k in PARAMETER_NAMES if k.startswith("publish.")},
        cloud_stride=get("cloud.stride", int),
        cloud_max_range_m=get("cloud.max_range_m", float),
        path_max_length=get("path.max_length", int),
        path_period_s=get("path.period_s", float),
        qos_image=get("qos.image", str),
        qos_camera_info=get("qos.camera_info", str),
        qos_output=get("qos.output", str),
        diagnostics_period_s=get("diagnostics.period_s", float),
        warnings=warnings,
    )


def params_from_yaml(path: str | Path, node_name: str = NODE_NAME) -> dict[str, Any]:
    """Parameter values of ``node_name`` in a ROS 2 params file, nested keys flattened with dots.

    Reads the ``/**`` and ``<node_name>`` (with or without a leading ``/``) sections, in that order,
    the way rcl applies them.
    """
    data = config_utils.load_yaml(path)
    out: dict[str, Any] = {}
    for key in ("/**", node_name, f"/{node_name}"):
        section = data.get(key)
        if section is None:
            continue
        if not isinstance(section, dict) or not isinstance(section.get("ros__parameters"), dict):
            raise ValueError(f"{path}: section {key!r} needs a 'ros__parameters' mapping")
        out.update(_flatten(section["ros__parameters"]))
    return out


def settings_from_params_file(path: str | Path | None = None, overrides: Optional[Mapping[str, Any]] = None,
                              node_name: str = NODE_NAME) -> NodeSettings:
    """Settings of the node started with ``--params-file path`` and ``-p name:=value`` ``overrides``."""
    values = params_from_yaml(path, node_name) if path else {}
    values.update(overrides or {})
    return parse_settings(values)


def make_estimator(settings: NodeSettings, warn: Callable[[str], None] = print):
    """The :class:`~depth_pose_ros.pipeline.estimator.Estimator` of these settings; returns (estimator, source
    text). The same factory as the command line (:func:`depth_pose_ros.pipeline.factory.build_estimator`):
    ``checkpoint`` empty means the shipped default model, else untrained weights (announced by ``warn``).
    """
    if settings.checkpoint:  # checked before the (slow) torch import: a wrong path fails at once
        path = Path(settings.checkpoint).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"checkpoint: file not found: {path}")
    # The device is checked before any weights are loaded: loading onto a missing CUDA device fails deep
    # inside the checkpoint reader with an error that does not name the parameter.
    from depth_pose_ros.nets.device import resolve_device
    from depth_pose_ros.nets.zoo import resolve_checkpoint
    from depth_pose_ros.pipeline.factory import build_estimator, estimator_config

    resolve_device(estimator_config(resolve_checkpoint(settings.checkpoint or None), settings.estimator_layers).device)
    return build_estimator(settings.checkpoint or None, layers=settings.estimator_layers,
                           model_config=settings.model_config, seed=settings.seed, warn=warn)


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _coerce(name: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind`` (ints accepted for floats, as YAML writes ``1`` for ``1.0``); else ValueError."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(float(value)):
            raise ValueError(f"{name}: must be finite, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return value
    if kind is list:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, np.ndarray, array.array)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        return list(value)
    raise TypeError(kind)
