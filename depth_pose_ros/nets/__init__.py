"""nets layer of depth_pose_ros: the networks, and nothing of losses, datasets, RANSAC or ROS.

Modules (import them directly; this package imports nothing so that ``nets.config`` stays torch-free):
``config`` (NetConfig dataclasses, strict YAML loading, architecture signature), ``model``
(DepthFlowNet streaming/clip API, build_model), ``resnet`` (encoder), ``recurrent`` (ConvGRU/ConvLSTM and
RecurrentState), ``depth_decoder``, ``flow_decoder`` (+ ``correlation``, ``feature_warp``), ``idce``,
``pose`` and ``ham`` (PoseNet with HAM), ``reference`` (Monodepth2 yardstick), ``fast`` (inference fast
path and ONNX export).
"""
