"""The pipeline layer: what ties geometry, networks and losses into a streaming estimator and offline runs.

Modules: ``config`` (every pipeline setting, the one source of defaults), ``result`` (what a step
returns), ``estimator`` (the streaming :class:`~depth_pose_ros.pipeline.estimator.Estimator`),
``odometry_policy`` (status -> motion, step lengths, constant velocity, unit factors: no torch),
``scale_sources`` (metric scale: camera height, stereo), ``refinement`` (GLNet online refinement),
``factory`` (the one way to build an Estimator from a model folder and settings), ``runner`` (offline
``depth-pose run`` / ``demo``), ``vo`` (classical dense-flow VO, the network-free reference).
Nothing here imports ROS. Import the modules directly (this package re-exports nothing, so importing
the light ``config`` does not pull in torch).
"""
