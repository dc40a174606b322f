"""Self-supervised training of ``depth_pose_ros`` networks (top-level package, beside the core).

Entry point: ``depth-pose train --config training/configs/NAME.yaml [key=value ...]`` or
:func:`training.train.train`. Modules: ``config`` (typed YAML config with ``base:`` inheritance),
``dataset`` (the training sources as augmented clips, the resumable per-rank sampler),
``augment`` (clips -> augmented samples with exact intrinsics), ``losses_from_config`` (assembles the
configured loss terms of ``depth_pose_ros.losses``), ``state`` (atomic training checkpoints, resume),
``distributed`` (torchrun / DDP helpers), ``periodic_eval`` (held-out metrics during training),
``schedule`` (learning rate and stages as pure functions of the step),
``train`` (the trainer: steps, logging, checkpoints, resume). Online refinement lives in
``depth_pose_ros.pipeline.refinement`` (the Estimator uses it); both build their source views with
``depth_pose_ros.losses.views``.
"""
