"""Parameters of ``depth_pose_node``: one table (name, default, description), parsed into typed settings.

Why a table outside the node: the same list declares the ROS parameters (with descriptions, for
``ros2 param describe``), documents ``config/default.yaml``, and lets tests and the offline comparison
build *exactly* the configuration the node runs with (:func:`settings_from_params_file` +
:func:`make_estimator`) without starting ROS. Parsing is strict like the rest of the project: a wrong
type or value raises ``ValueError`` naming the parameter, and the node rejects parameters it does not
know (a typo in a YAML file must not silently fall back to a default).

Estimator settings go through :mod:`depth_pose_ros.config_utils` into :class:`EstimatorConfig`
(optionally on top of an ``estimator_config`` YAML holding the less common knobs such as ``two_view``).
This module imports no ROS package and no torch (:func:`make_estimator` imports torch when called).
"""
from __future__ import annotations

import array
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from depth_pose_ros import config_utils
from depth_pose_ros.estimator_types import EstimatorConfig
from depth_pose_ros.ros.odometry_math import make_transform

NODE_NAME = "depth_pose_node"
#: Relative path (below ``paths.models_dir()``) of the shipped model used when ``checkpoint`` is empty.
DEFAULT_CHECKPOINT = Path("default") / "model.safetensors"
#: Parameters every rclpy node has; never reported as unknown.
BUILTIN_PARAMETERS = frozenset({"use_sim_time", "start_type_description_service"})


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: its name, default (which also fixes its type) and description."""

    name: str
    default: Any
    description: str


_HALF_PI = round(math.pi / 2, 10)

PARAMETERS: tuple[ParamSpec, ...] = (
    # -- model
    ParamSpec("checkpoint", "", "Model weights (.safetensors). Empty: models/default/model.safetensors; if that "
                                "is missing too, untrained weights (a loud warning is logged)."),
    ParamSpec("model_config", "", "NetConfig YAML of the untrained network used without a checkpoint "
                                  "(empty: the default light network). Ignored when a checkpoint is loaded."),
    ParamSpec("seed", 0, "torch seed of untrained weights (reproducible runs without a checkpoint)."),
    ParamSpec("estimator_config", "", "Optional EstimatorConfig YAML (e.g. two_view settings); the parameters "
                                      "below override its values."),
    ParamSpec("device", "cpu", "torch device: cpu, cuda, cuda:1, ..."),
    ParamSpec("precision", "auto", "auto (bf16/fp16 on the fast path, else fp32), fp32, bf16 (CPU) or fp16 (CUDA)."),
    ParamSpec("fast_path", False, "Fold BatchNorm, channels_last and reduced-precision autocast (faster inference)."),
    ParamSpec("num_threads", 0, "torch intra-op threads (0: torch's default)."),
    ParamSpec("input.height", 0, "Network input height (multiple of 32); images are resized, K scaled. 0: the "
                                 "model's own size (its estimator.yaml or training size; 192 untrained)."),
    ParamSpec("input.width", 0, "Network input width (multiple of 32); 0: the model's own (640 untrained)."),
    ParamSpec("flow_source", "model", "Optical flow for the pose: network, dis (classical OpenCV DIS) or model "
                                      "(what the model's estimator.yaml says; network when it says nothing)."),
    ParamSpec("max_gap_s", 0.5, "A larger gap between image stamps restarts tracking (odometry continues)."),
    ParamSpec("max_depth_m", 80.0, "Published depth is clamped to this range (m)."),
    # -- absolute scale
    ParamSpec("scale.source", "none", "Metric scale: none (network scale), camera_height (road plane at "
                                      "scale.camera_height_m below the camera) or stereo (right image)."),
    ParamSpec("scale.camera_height_m", 1.65, "Height of the camera above the ground (camera_height source)."),
    ParamSpec("scale.stereo_baseline_m", 0.0, "Stereo baseline (m) for the stereo source; must be > 0 then."),
    # -- topics
    ParamSpec("topics.image", "image", "Image topic (sensor_msgs/Image: rgb8, bgr8, rgba8, bgra8, mono8, "
                                       "mono16); remap it or set it here."),
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
    ParamSpec("frames.camera", "", "Camera optical frame (z forward, x right, y down) of the outputs; empty: "
                                   "the image's header.frame_id."),
    ParamSpec("camera_to_base.xyz", [0.0, 0.0, 1.65], "Camera position in base_link (m), published on "
                                                      "/tf_static as base_link -> camera frame."),
    ParamSpec("camera_to_base.rpy", [-_HALF_PI, 0.0, -_HALF_PI],
              "Camera optical frame orientation in base_link, fixed-axis roll pitch yaw (rad). The default "
              "is a forward-looking camera: optical z -> base x."),
    # -- outputs
    ParamSpec("publish.depth", True, "Publish depth (32FC1, m) and depth/camera_info."),
    ParamSpec("publish.colored_depth", True, "Publish depth/colored (rgb8, inverse-depth colour map)."),
    ParamSpec("publish.cloud", True, "Publish points (PointCloud2 xyz + rgb in the camera frame)."),
    ParamSpec("publish.odom", True, "Publish odom (nav_msgs/Odometry)."),
    ParamSpec("publish.tf", True, "Broadcast odom -> base_link on /tf and base_link -> camera on /tf_static."),
    ParamSpec("publish.path", True, "Publish path (nav_msgs/Path of the base_link poses)."),
    ParamSpec("publish.diagnostics", True, "Publish /diagnostics (rate, latency, drops, inliers, status)."),
    ParamSpec("cloud.stride", 4, "Use every stride-th pixel in x and y for the cloud."),
    ParamSpec("cloud.max_range_m", 40.0, "Leave out cloud points farther than this (m)."),
    ParamSpec("path.max_length", 1000, "Poses kept in the published path (oldest dropped)."),
    ParamSpec("qos.image", "sensor_data", "Image subscription QoS: sensor_data, reliable, latched, system_default."),
    ParamSpec("qos.camera_info", "sensor_data", "camera_info / stereo subscription QoS."),
    ParamSpec("qos.output", "reliable", "QoS of depth, cloud, odom and path publishers (reliable matches "
                                        "both reliable and best-effort subscribers, e.g. rviz)."),
    ParamSpec("diagnostics.period_s", 1.0, "Diagnostics period (node clock, so sim time under use_sim_time)."),
)

PARAMETER_NAMES: frozenset[str] = frozenset(p.name for p in PARAMETERS)


@dataclass
class NodeSettings:
    """Everything ``depth_pose_node`` reads from its parameters, validated (defaults: :data:`PARAMETERS`)."""

    estimator: EstimatorConfig
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
    camera_frame: str
    T_base_cam: np.ndarray
    publish: dict[str, bool]
    cloud_stride: int
    cloud_max_range_m: float
    path_max_length: int
    qos_image: str
    qos_camera_info: str
    qos_output: str
    diagnostics_period_s: float
    flow_source_from_model: bool = False  # flow_source: model -> taken from the model folder in make_estimator

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


def parse_settings(values: Mapping[str, Any]) -> NodeSettings:
    """Validate parameter values (name -> value; missing names take their defaults) into settings.

    Raises:
        ValueError: naming the parameter (unknown names included).
    """
    unknown = unknown_parameters(values)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} (valid: {', '.join(sorted(PARAMETER_NAMES))})")
    v = {**defaults(), **dict(values)}

    def get(name: str, kind: type) -> Any:
        return _coerce(name, v[name], kind)

    estimator_data: dict[str, Any] = {}
    if get("estimator_config", str):
        estimator_data = config_utils.load_yaml(Path(get("estimator_config", str)).expanduser())
    scale = dict(estimator_data.get("scale") or {})
    scale.update(source=get("scale.source", str), camera_height_m=get("scale.camera_height_m", float),
                 stereo_baseline_m=get("scale.stereo_baseline_m", float))
    flow_source = get("flow_source", str)
    if flow_source not in ("model", "network", "dis"):
        raise ValueError(f"flow_source: {flow_source!r} is not one of ['model', 'network', 'dis']")
    estimator_data.update(
        height=get("input.height", int), width=get("input.width", int), device=get("device", str),
        precision=get("precision", str), fast_path=get("fast_path", bool), num_threads=get("num_threads", int),
        flow_source="network" if flow_source == "model" else flow_source, max_gap_s=get("max_gap_s", float),
        max_depth_m=get("max_depth_m", float), scale=scale,
    )
    try:
        est = config_utils.from_dict(EstimatorConfig, estimator_data)
    except ValueError as exc:
        raise ValueError(f"estimator parameters: {exc}") from None
    for name, value in (("input.height", est.height), ("input.width", est.width)):
        if value < 0 or value % 32:
            raise ValueError(f"{name}: must be 0 (the model's size) or a positive multiple of 32, got {value}")
    for name in ("max_gap_s", "max_depth_m", "scale.camera_height_m", "diagnostics.period_s",
                 "cloud.max_range_m"):
        if not get(name, float) > 0:
            raise ValueError(f"{name}: must be > 0, got {v[name]}")
    if est.scale.source == "stereo" and not est.scale.stereo_baseline_m > 0:
        raise ValueError("scale.stereo_baseline_m: must be > 0 when scale.source is stereo")
    for name in ("camera_info.tolerance_s", "camera_info.wait_s", "num_threads", "seed"):
        if get(name, float) < 0:
            raise ValueError(f"{name}: must be >= 0, got {v[name]}")
    for name in ("cloud.stride", "path.max_length"):
        if get(name, int) < 1:
            raise ValueError(f"{name}: must be >= 1, got {v[name]}")
    from depth_pose_ros.ros.qos import QOS_NAMES

    for name in ("qos.image", "qos.camera_info", "qos.output"):
        if get(name, str).strip().lower() not in QOS_NAMES:
            raise ValueError(f"{name}: unknown QoS profile {v[name]!r}; expected one of {', '.join(QOS_NAMES)}")
    for name in ("topics.image", "topics.camera_info", "frames.odom", "frames.base"):
        if not get(name, str).strip():
            raise ValueError(f"{name}: must not be empty")
    if get("frames.odom", str) == get("frames.base", str):
        raise ValueError(f"frames.odom and frames.base must differ, both are {v['frames.odom']!r}")

    fx, fy, cx, cy = (get(f"intrinsics.{k}", float) for k in ("fx", "fy", "cx", "cy"))
    fallback_K = None
    if fx > 0 and fy > 0 and cx > 0 and cy > 0:
        fallback_K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    elif any(x > 0 for x in (fx, fy, cx, cy)):
        raise ValueError(f"intrinsics.fx/fy/cx/cy: set all four (> 0) or none, got {fx}, {fy}, {cx}, {cy}")
    try:
        T_base_cam = make_transform(get("camera_to_base.xyz", list), get("camera_to_base.rpy", list))
    except ValueError as exc:
        raise ValueError(f"camera_to_base: {exc}") from None

    return NodeSettings(
        flow_source_from_model=flow_source == "model",
        estimator=est,
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
        odom_frame=get("frames.odom", str),
        base_frame=get("frames.base", str),
        camera_frame=get("frames.camera", str),
        T_base_cam=T_base_cam,
        publish={k.split(".", 1)[1]: get(k, bool) for k in PARAMETER_NAMES if k.startswith("publish.")},
        cloud_stride=get("cloud.stride", int),
        cloud_max_range_m=get("cloud.max_range_m", float),
        path_max_length=get("path.max_length", int),
        qos_image=get("qos.image", str),
        qos_camera_info=get("qos.camera_info", str),
        qos_output=get("qos.output", str),
        diagnostics_period_s=get("diagnostics.period_s", float),
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
    """The :class:`~depth_pose_ros.estimator.Estimator` of these settings; returns (estimator, source text).

    ``checkpoint`` set: that file (missing -> ``FileNotFoundError``). Empty: the shipped default model,
    else untrained weights of ``model_config`` seeded with ``seed``, announced through ``warn``.
    """
    cfg = settings.estimator
    if settings.checkpoint:  # checked before the (slow) torch import: a wrong path fails at once
        path = Path(settings.checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint: file not found: {path}")
    import torch

    from depth_pose_ros.estimator import Estimator
    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.paths import models_dir

    if settings.checkpoint:
        cfg = _with_model_defaults(cfg, path, settings.flow_source_from_model)
        return Estimator.from_checkpoint(path, cfg, map_location=cfg.device), f"checkpoint {path}"
    shipped = models_dir() / DEFAULT_CHECKPOINT
    if shipped.is_file():
        cfg = _with_model_defaults(cfg, shipped, settings.flow_source_from_model)
        return Estimator.from_checkpoint(shipped, cfg, map_location=cfg.device), f"shipped model {shipped}"
    cfg = _with_model_defaults(cfg, None, settings.flow_source_from_model)
    net_cfg = NetConfig.from_yaml(Path(settings.model_config).expanduser()) if settings.model_config else NetConfig()
    torch.manual_seed(settings.seed)
    model = build_model(net_cfg)
    source = f"UNTRAINED weights (seed {settings.seed}, {settings.model_config or 'default NetConfig'})"
    warn(f"no checkpoint given and no shipped model at {shipped}: running {source}. Depth and poses will be "
         "meaningless; set the 'checkpoint' parameter to a trained model.")
    return Estimator(model, cfg), source


def _with_model_defaults(cfg: Any, checkpoint: Optional[Path], flow_from_model: bool) -> Any:
    """Fill what the parameters leave to the model: ``input.height/width`` of 0 take the model's own size
    (a network trained at 64x192 must see 64x192: the model folder's estimator.yaml, else the training
    size stored with the weights) and ``flow_source: model`` the folder's flow source, so that the node
    runs a shipped model exactly as ``depth-pose demo`` / ``run`` do. Untrained weights get
    EstimatorConfig's defaults."""
    if cfg.height > 0 and cfg.width > 0 and not flow_from_model:
        return cfg
    from depth_pose_ros.model_zoo import estimator_config

    model_cfg = estimator_config(checkpoint) if checkpoint is not None else EstimatorConfig()
    return dataclasses.replace(cfg, height=cfg.height or model_cfg.height, width=cfg.width or model_cfg.width,
                               flow_source=model_cfg.flow_source if flow_from_model else cfg.flow_source)


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
