"""Tiny versions of the shipped method configs (few-second CPU runs), shared by the training and
pipeline tests (``test/`` is on ``sys.path`` through its conftest)."""
from __future__ import annotations

from training.config import TrainConfig, load_train_config

TINY_SPEC = "synthetic:seed=3,length=8,height=64,width=96"

# Overrides shrinking any shipped method config to a few-second CPU run (64x96 clips, thin layers).
TINY_OVERRIDES = [
    f"data.train=[{{spec: '{TINY_SPEC}'}}]",
    "data.height=64",
    "data.width=96",
    "data.batch_size=2",
    "data.clip_len=3",
    "model.encoder.width=0.25",
    "model.depth.channels=[8, 8, 16, 16, 32]",
    "model.flow.feature_channels=[8, 8, 8, 8]",
    "model.flow.estimator_channels=[[16, 8], [16, 8], [16, 8], [16, 8]]",
    "model.pose_net.width=0.25",
    "model.pose_net.decoder_channels=16",
    "num_threads=1",
    "log.progress=false",
    "log.tensorboard=false",
    "log.image_every=0",
    "eval.every=0",
    "checkpoint.every=0",
    "losses.occlusion_warmup_steps=0",
    "steps=2",
    "max_minutes=0",
    "data.teacher.cache_dir=''",  # a teacher (data.teacher.size_factor > 0) of the tiny clips is not cached
    "init_from=''",  # fine-tune configs start from a run's output; the tiny net could not load it anyway
]


def tiny_config(name: str, *extra: str) -> TrainConfig:
    """Method config ``name`` (file in training/configs) at test size, plus ``extra`` overrides."""
    cfg = load_train_config(name, TINY_OVERRIDES + list(extra))
    if cfg.model.recurrent.levels:
        cfg = load_train_config(name, TINY_OVERRIDES + ["model.recurrent.hidden_channels=[16]"] + list(extra))
    return cfg
