"""Typed training configuration: one dataclass tree declares every default; YAML files only change it.

A method (``st_depth_pose``, ``monodepth2``, ...) is a YAML file in ``training/configs/`` naming the
network modules (``model``), where the camera pose for view synthesis comes from (``pose_source``) and
the weight of every loss term (``losses.<term>.weight``; 0 switches the term off). The training code
chooses its paths from these keys only, never from the method's name, so a new method is a new YAML
file and an ablation is a ``key=value`` override.

YAML files may start with ``base: other.yaml`` (a path relative to the file) or a list of them: the
bases are loaded first (recursively, later ones over earlier ones) and this file's keys are merged over
them, mappings key by key, everything else (lists included) replaced. Files starting with ``_`` are
fragments (e.g. ``_cpu_tiny.yaml``, sizes only) meant to be combined through ``base:``. Unknown keys
are errors naming the dotted path (``config_utils``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from depth_pose_ros.geometry.two_view_config import TwoViewConfig, loss_two_view
from depth_pose_ros.losses.occlusion_aware import FANG_LAMBDA_ED, FANG_LAMBDA_EO, FANG_THRESHOLD
from depth_pose_ros.losses.photometric import DEFAULT_ALPHA
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.utils.config import ConfigError, apply_overrides, deep_merge, from_dict, load_yaml, to_dict

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

# Parameter groups a schedule stage can train or freeze (attribute names of DepthFlowNet).
MODULE_GROUPS: dict[str, str] = {
    "encoder": "encoder",
    "recurrent": "recurrent",
    "depth": "depth_decoder",
    "flow": "flow_decoder",
    "pose": "pose_net",
    "idce": "idce",
}


@dataclass
class SourceConfig:
    """One data source: an ``open_source`` spec plus its keyword options."""

    spec: str = "synthetic:seed=0,length=120,height=96,width=320"
    options: dict[str, Any] = field(default_factory=dict)  # frames, gray, camera, sequence, stereo, K, fps...
    # the source's clips enter the training set this many times: a small real recording can weigh as much
    # as a large synthetic world in every shuffled epoch without copying frames
    repeat: int = 1
    # > 0: recorded frames shrunk to this width once, in memory (aspect and exact K kept); the geometry teacher
    # still runs at the recorded size, its maps kept at this one (a 1242x375 recording's teacher flows would
    # otherwise cost 8 bytes per recorded pixel and frame)
    width: int = 0


@dataclass
class TeacherConfig:
    """The geometry teacher of ``losses.depth_teacher`` (training.geometry_teacher): two-view triangulation on
    DIS flow of each source at ``size_factor`` x its size (rendered sources are rendered larger; recorded frames
    are read at their own size), cached in ``cache_dir``. 0 = no teacher."""

    size_factor: float = 0.0  # the teacher's image size / the training source's size (0: no teacher)
    cache_dir: str = "runs/teacher_cache"  # relative: to the repository; "": no disk cache
    # keep each pair's DIS flows too (losses.flow_distillation.source: teacher); 8 bytes per pixel and frame
    # at the training source's size, so off unless a config uses them
    flow: bool = False


@dataclass
class DataConfig:
    """Training clips: which sources, network input size, clip length and batch."""

    train: list[SourceConfig] = field(default_factory=lambda: [SourceConfig()])
    height: int = 96  # network input size; every clip is resized (and cropped) to it, K follows
    width: int = 320
    # more [height, width] input sizes; each batch is drawn at one of these or height x width (uniformly, a
    # pure function of seed, epoch and batch), so a network that the node runs at its camera's aspect
    # (EstimatorConfig.input_fit: aspect) has seen that shape in training
    extra_sizes: list[list[int]] = field(default_factory=list)
    clip_len: int = 3  # T frames per clip; targets are frames 1..T-2 (each with t-1 and t+1 as sources)
    stride: int = 1  # step between the first frames of successive clips
    stereo: bool = False  # add the stereo partner as an extra source (the source must have one)
    batch_size: int = 4  # per process
    num_workers: int = 0
    max_gap_periods: float = 2.5  # larger stamp gaps end a clip (see data.clips)
    teacher: TeacherConfig = field(default_factory=lambda: TeacherConfig())


@dataclass
class AugmentConfig:
    """Training augmentation; every geometric change updates K (and the stereo baseline on flips)."""

    enabled: bool = True
    hflip_prob: float = 0.5
    resize_crop_prob: float = 0.5  # else a plain resize to the network size
    max_scale: float = 1.2  # resize-crop zooms by s in [1, max_scale], then crops a random window
    color_jitter_prob: float = 0.8  # applied to the network input only; losses see the clean images
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.05  # fraction of a full hue turn


@dataclass
class PhotometricConfig:
    """View synthesis by depth + pose (Monodepth2): SSIM+L1, per-pixel min over sources, auto-mask."""

    weight: float = 1.0
    ssim_alpha: float = DEFAULT_ALPHA
    min_reprojection: bool = True  # per-pixel minimum over sources (else their average)
    automask: bool = True
    scales: int = 4  # depth scales used, each upsampled to full resolution before warping


@dataclass
class DepthSmoothnessConfig:
    weight: float = 1e-3
    edge_weight: float = 1.0


@dataclass
class FlowPhotometricConfig:
    """Photometric loss of the optical-flow warp, with occlusion masking."""

    weight: float = 0.0
    ssim_alpha: float = DEFAULT_ALPHA
    occlusion: Literal["fb", "range", "both", "learned", "none"] = "fb"
    scales: int = 1  # flow outputs used: full resolution, then the decoder levels (upsampled)
    fb_alpha1: float = 0.01
    fb_alpha2: float = 0.5
    range_threshold: float = 0.5


@dataclass
class FlowOcclusionAwareConfig:
    """Fang et al. eq. 1-3: range-map occlusion + bidirectional softmax weights over t-1 and t+1."""

    weight: float = 0.0
    ssim_alpha: float = DEFAULT_ALPHA


@dataclass
class FlowSmoothnessConfig:
    weight: float = 0.0
    order: int = 1
    edge_weight: float = 10.0


@dataclass
class FbConsistencyConfig:
    weight: float = 0.0
    occlusion: Literal["fb", "range", "both", "learned", "none"] = "fb"


@dataclass
class FlowDistillationConfig:
    """Distil classical DIS flow into the network flow on the pixels where DIS passes its own forward-backward
    check (confidence-weighted; still label-free). Geometry-as-teacher of issue 13: the photometric /
    occlusion terms handle where DIS fails. ``source``: "dis" runs DIS on the training images each step;
    "teacher" takes the geometry teacher's flows (DIS at ``data.teacher.size_factor`` x the source size, shrunk;
    needs ``data.teacher.flow: true``), far more accurate than DIS on small training images."""

    weight: float = 0.0
    source: Literal["dis", "teacher"] = "dis"
    q: float = 0.4  # generalised Charbonnier exponent
    fb_alpha1: float = 0.01
    fb_alpha2: float = 0.5


@dataclass
class DepthTriangulationConfig:
    """Depth vs two-view triangulated inliers after scale alignment (han2021 / TrianFlow)."""

    weight: float = 0.0
    kind: Literal["log", "relative"] = "log"


@dataclass
class DepthSupervisedConfig:
    """Depth vs the exact depth of sources that render it (the synthetic world): dense scale-invariant log
    loss, so the shape of the scene (close cars, walls, furniture) is taught where it is known exactly, while
    the units stay with the self-supervised terms (real video has none). Items without depth are left out,
    so synthetic and real clips can share a batch."""

    weight: float = 0.0
    min_points: int = 100  # items with fewer known pixels are left out
    # lambda of the scale-invariant log loss: below 1 the rendered metric depth also anchors the network's
    # units (every other depth term of the teacher recipe is scale-free, so the units could drift freely)
    variance_focus: float = 1.0


@dataclass
class DepthTeacherConfig:
    """Depth vs the geometry teacher's triangulated points (``data.teacher.size_factor`` > 0 computes them):
    scale-invariant log loss, the teacher's scale being unknown per frame (training.geometry_teacher)."""

    weight: float = 0.0
    min_points: int = 20  # frames with fewer teacher points are left out


@dataclass
class DepthReprojectionConfig:
    """SC-SfMLearner depth reprojection consistency between target and source depth."""

    weight: float = 0.0


@dataclass
class RigidFlowConsistencyConfig:
    """Rigid flow (depth + pose) vs optical flow on the rigid (static-scene) mask."""

    weight: float = 0.0
    mask: Literal["two_view", "fb", "none"] = "two_view"  # two_view needs the geometry module
    teacher: Literal["none", "rigid", "optical"] = "none"  # detach this side (it teaches the other)


@dataclass
class EpipolarConfig:
    """GLNet epipolar (Sampson) loss of the optical flow under the pose."""

    weight: float = 0.0
    robust: Literal["charbonnier", "cauchy", "l2"] = "charbonnier"
    eps: float = 0.1
    occlusion: Literal["fb", "range", "both", "learned", "none"] = "fb"


@dataclass
class AdaptivePhotometricConfig:
    """GLNet: per-pixel min of the rigid-warp and flow-warp photometric errors."""

    weight: float = 0.0
    ssim_alpha: float = DEFAULT_ALPHA


@dataclass
class CrossWeightedConfig:
    """Fang et al. eq. 5-7 adaptive cross-weighted depth-pose / flow loss."""

    weight: float = 0.0
    ssim_alpha: float = DEFAULT_ALPHA
    lambda_ed: float = FANG_LAMBDA_ED  # the paper's values, declared once beside the loss
    lambda_eo: float = FANG_LAMBDA_EO
    threshold: float = FANG_THRESHOLD
    temperature: float = 1.0


@dataclass
class IcpConfig:
    """vid2depth 3D point-cloud alignment loss."""

    weight: float = 0.0
    association: Literal["projective", "nearest"] = "projective"
    iterations: int = 3
    num_points: int = 1024
    transform_weight: float = 1.0
    residual_weight: float = 1.0


@dataclass
class MultiviewConfig:
    """GLNet multi-view 3D structure consistency."""

    weight: float = 0.0
    relative: bool = True
    occlusion: Literal["fb", "range", "both", "learned", "none"] = "fb"


@dataclass
class LossesConfig:
    """Every loss term; a term runs when its weight is > 0."""

    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    depth_smoothness: DepthSmoothnessConfig = field(default_factory=DepthSmoothnessConfig)
    flow_photometric: FlowPhotometricConfig = field(default_factory=FlowPhotometricConfig)
    flow_occlusion_aware: FlowOcclusionAwareConfig = field(default_factory=FlowOcclusionAwareConfig)
    flow_smoothness: FlowSmoothnessConfig = field(default_factory=FlowSmoothnessConfig)
    fb_consistency: FbConsistencyConfig = field(default_factory=FbConsistencyConfig)
    flow_distillation: FlowDistillationConfig = field(default_factory=FlowDistillationConfig)
    depth_triangulation: DepthTriangulationConfig = field(default_factory=DepthTriangulationConfig)
    depth_teacher: DepthTeacherConfig = field(default_factory=DepthTeacherConfig)
    depth_supervised: DepthSupervisedConfig = field(default_factory=DepthSupervisedConfig)
    depth_reprojection: DepthReprojectionConfig = field(default_factory=DepthReprojectionConfig)
    rigid_flow_consistency: RigidFlowConsistencyConfig = field(default_factory=RigidFlowConsistencyConfig)
    epipolar: EpipolarConfig = field(default_factory=EpipolarConfig)
    adaptive_photometric: AdaptivePhotometricConfig = field(default_factory=AdaptivePhotometricConfig)
    cross_weighted: CrossWeightedConfig = field(default_factory=CrossWeightedConfig)
    icp: IcpConfig = field(default_factory=IcpConfig)
    multiview_3d: MultiviewConfig = field(default_factory=MultiviewConfig)
    # Steps during which flow terms use no occlusion mask: the fb test rejects every pixel of an
    # untrained (random) flow, which would mask the whole loss and keep the flow from ever learning
    # (UnFlow / ARFlow also switch occlusion handling on only after a warm-up).
    occlusion_warmup_steps: int = 0

    def term_names(self) -> list[str]:
        return [name for name in type(self).__dataclass_fields__ if hasattr(getattr(self, name), "weight")]

    def weights(self) -> dict[str, float]:
        return {name: float(getattr(self, name).weight) for name in self.term_names()}


@dataclass
class StageConfig:
    """One stage of a staged schedule.

    ``train`` lists the module groups updated in this stage (empty: all), ``freeze`` groups held
    fixed (no gradient, BatchNorm statistics frozen); groups are the keys of ``MODULE_GROUPS``.
    ``losses`` overrides term weights for this stage (``{photometric: 0}``). ``steps`` is the
    stage length; 0 means until the end of training (only the last stage may say so).
    """

    name: str = "joint"
    steps: int = 0
    train: list[str] = field(default_factory=list)
    freeze: list[str] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)


@dataclass
class ScheduleConfig:
    stages: list[StageConfig] = field(default_factory=list)  # empty: one stage training everything


@dataclass
class OptimConfig:
    name: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 10.0  # max gradient norm (0: off); the norm is also the NaN guard's probe
    lr_schedule: Literal["constant", "step", "cosine"] = "constant"
    lr_step: int = 0  # "step": multiply by lr_gamma every lr_step steps
    lr_gamma: float = 0.1
    warmup_steps: int = 0  # linear warm-up from 0


@dataclass
class CheckpointConfig:
    every: int = 500  # steps between training checkpoints (0: only at the end)
    keep_last: int = 3


@dataclass
class LogConfig:
    every: int = 10  # scalars to TensorBoard / losses.jsonl every N steps
    image_every: int = 200  # image panels (0: never)
    tensorboard: bool = True
    progress: bool = True  # tqdm bar with ETA (rank 0)


@dataclass
class EvalConfig:
    """Periodic evaluation on a held-out sequence with ground truth (synthetic world by default)."""

    every: int = 0  # steps between evaluations (0: off)
    source: SourceConfig = field(default_factory=lambda: SourceConfig(
        spec="synthetic:seed=1000,length=24,height=96,width=320"))
    max_frames: int = 24
    two_view: TwoViewConfig = field(default_factory=TwoViewConfig)


@dataclass
class NanGuardConfig:
    max_consecutive: int = 5  # stop after this many non-finite steps in a row


@dataclass
class CollapseGuardConfig:
    """Noticing a run whose depth collapsed (one constant map, or no better than a constant on the held-out
    frames) or diverged, instead of training on in silence (training.collapse_guard).

    Checked on the depth spread of every logged step and on every periodic evaluation. On a collapse the run
    goes back to the weights of the last healthy evaluation with a fresh optimiser and ``lr_factor`` x the
    learning rate, at most ``max_recoveries`` times; then it stops with a message."""

    enabled: bool = True
    min_log_std: float = 0.02  # std of log depth over an image below this = a constant map
    patience: int = 3  # consecutive logged steps with a constant map before acting
    worse_than_constant: float = 1.0  # eval AbsRel >= this x the constant baseline's = collapsed
    lr_factor: float = 0.5
    max_recoveries: int = 3


@dataclass
class TrainConfig:
    """Everything a training run needs; saved with every checkpoint."""

    method: str = "custom"  # a label for logs only; never selects code
    seed: int = 0
    steps: int = 1000
    max_minutes: float = 0.0  # wall-clock training budget summed over resumes (0: none); stops early, saves
    pose_source: Literal["geometry", "posenet"] = "geometry"
    # flow the training two-view module gets the camera pose from (pose_source: geometry): "network" (the
    # method: its own predicted flow) or "dis" (classical OpenCV DIS on the training images; label-free
    # bootstrap for from-scratch training, when the network's flow is still too poor for the geometry) or
    # "teacher" (the motions the geometry teacher of data.teacher computed once per pair at its higher
    # resolution, scaled by aligning the network depth to the teacher's points: no two-view fit per step)
    two_view_flow: Literal["network", "dis", "teacher"] = "network"
    truncate_every: int = 0  # truncated BPTT inside a clip (0: never)
    # false: the flow decoder reads detached encoder features, so only the depth (and pose) losses train the
    # shared encoder and recurrent cell -- the shared-encoder ablation without building a second encoder
    flow_trains_encoder: bool = True
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: fp16 AMP on CUDA, fp32 on CPU
    deterministic: bool = False  # torch.use_deterministic_algorithms (bit-exact resume on GPU too)
    num_threads: int = 0  # torch intra-op threads (0: leave the default)
    init_from: str = ""  # model checkpoint (.safetensors) to start from (fine-tuning)
    model: NetConfig = field(default_factory=NetConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    losses: LossesConfig = field(default_factory=LossesConfig)
    two_view: TwoViewConfig = field(default_factory=loss_two_view)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    log: LogConfig = field(default_factory=LogConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    nan_guard: NanGuardConfig = field(default_factory=NanGuardConfig)
    collapse_guard: CollapseGuardConfig = field(default_factory=CollapseGuardConfig)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Cross-field checks; every message names the offending key."""
        d = self.data
        if d.height % 32 or d.width % 32 or d.height <= 0 or d.width <= 0:
            raise ConfigError(f"data.height/data.width must be positive multiples of 32, got {d.height}x{d.width}")
        if d.clip_len < 3:
            raise ConfigError(f"data.clip_len must be >= 3 (a target needs frames t-1 and t+1), got {d.clip_len}")
        if d.batch_size < 1:
            raise ConfigError(f"data.batch_size must be >= 1, got {d.batch_size}")
        if not d.train:
            raise ConfigError("data.train must name at least one source")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.augment.max_scale < 1.0:
            raise ConfigError(f"augment.max_scale must be >= 1, got {self.augment.max_scale}")
        if self.checkpoint.keep_last < 1:
            raise ConfigError(f"checkpoint.keep_last must be >= 1, got {self.checkpoint.keep_last}")
        for hw in d.extra_sizes:
            if len(hw) != 2 or any(int(v) <= 0 or int(v) % 32 for v in hw):
                raise ConfigError(f"data.extra_sizes: each entry must be [height, width], positive multiples of 32, "
                                  f"got {hw}")
        for i, src in enumerate(d.train):
            if int(src.repeat) < 1:
                raise ConfigError(f"data.train[{i}].repeat must be >= 1, got {src.repeat}")
            if int(src.width) < 0:
                raise ConfigError(f"data.train[{i}].width must be >= 0 (0: as recorded), got {src.width}")
        c = self.collapse_guard
        if c.patience < 1 or c.max_recoveries < 0 or not 0.0 < c.lr_factor <= 1.0 or c.min_log_std < 0:
            raise ConfigError("collapse_guard: patience >= 1, max_recoveries >= 0, 0 < lr_factor <= 1 and "
                              f"min_log_std >= 0 needed, got {c}")
        if self.nan_guard.max_consecutive < 1:
            raise ConfigError(f"nan_guard.max_consecutive must be >= 1, got {self.nan_guard.max_consecutive}")
        if self.losses.flow_smoothness.order not in (1, 2):
            raise ConfigError(f"losses.flow_smoothness.order must be 1 or 2, got {self.losses.flow_smoothness.order}")
        if self.losses.flow_distillation.weight > 0 and self.losses.flow_distillation.source == "teacher" \
                and not (d.teacher.size_factor > 0 and d.teacher.flow):
            raise ConfigError("losses.flow_distillation.source: teacher needs the geometry teacher's flows "
                              "(data.teacher.size_factor > 0 and data.teacher.flow: true)")
        if self.two_view_flow == "teacher":
            if d.teacher.size_factor <= 0:
                raise ConfigError("two_view_flow: teacher needs the geometry teacher (data.teacher.size_factor > 0)")
            if self.losses.rigid_flow_consistency.weight > 0 and self.losses.rigid_flow_consistency.mask == "two_view":
                raise ConfigError("two_view_flow: teacher runs no two-view fit per step: set "
                                  "losses.rigid_flow_consistency.mask to fb, range, learned or none")
        terms = set(self.losses.term_names())
        stages = self.schedule.stages
        for i, st in enumerate(stages):
            where = f"schedule.stages[{i}] ({st.name})"
            for key in ("train", "freeze"):
                bad = sorted(set(getattr(st, key)) - set(MODULE_GROUPS))
                if bad:
                    raise ConfigError(f"{where}.{key}: unknown module group(s) {bad}; valid: {sorted(MODULE_GROUPS)}")
            bad = sorted(set(st.losses) - terms)
            if bad:
                raise ConfigError(f"{where}.losses: unknown loss term(s) {bad}; valid: {sorted(terms)}")
            if st.steps < 0 or (st.steps == 0 and i != len(stages) - 1):
                raise ConfigError(f"{where}.steps must be > 0 (only the last stage may use 0 = until the end)")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


# ---------------------------------------------------------------------------------------------- loading


def resolve_config_path(path: str | Path) -> Path:
    """A config path as given, or a bare name looked up in ``training/configs`` (``monodepth2``)."""
    p = Path(path)
    if p.is_file():
        return p
    for candidate in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.yaml"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"training config not found: {path} (also looked in {CONFIG_DIR})")


def load_config_dict(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML mapping of ``path`` with its ``base:`` chain merged in (``base`` key removed)."""
    path = resolve_config_path(path).resolve()
    if path in _chain:
        raise ConfigError(f"{path}: circular base: chain {' -> '.join(str(p) for p in _chain + (path,))}")
    data = load_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    bases = [base] if isinstance(base, str) else base
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: base must be a file name or a list of file names, got {base!r}")
    merged: dict[str, Any] = {}
    for b in bases:  # later bases override earlier ones; this file overrides them all
        base_path = Path(b) if Path(b).is_absolute() else path.parent / b
        merged = deep_merge(merged, load_config_dict(base_path, _chain + (path,)))
    return deep_merge(merged, data)


def load_train_config(path: Optional[str | Path] = None, overrides: Optional[list[str]] = None) -> TrainConfig:
    """Defaults <- YAML file (with its ``base:`` chain) <- ``key=value`` overrides.

    Errors name the file (or override) and the dotted key.
    """
    data = load_config_dict(path) if path else {}
    try:
        data = apply_overrides(data, overrides or [])
    except ConfigError as exc:
        raise ConfigError(f"command-line override: {exc}") from None
    where = str(path) if path else "defaults"
    try:
        return from_dict(TrainConfig, data)
    except (ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """A TrainConfig from a plain mapping (e.g. the copy stored in a checkpoint)."""
    try:
        return from_dict(TrainConfig, data)
    except (ConfigError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def method_configs(include_fragments: bool = False) -> list[Path]:
    """The shipped configs in ``training/configs`` (fragments ``_*.yaml`` only when asked)."""
    return sorted(p for p in CONFIG_DIR.glob("*.yaml") if include_fragments or not p.name.startswith("_"))
