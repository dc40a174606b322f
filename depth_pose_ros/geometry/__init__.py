"""geometry layer of depth_pose_ros: camera models, SE(3), warping, masks and two-view pose.

Modules (imported explicitly by their users; nothing is re-exported here, so importing one light
module does not pull in torch or OpenCV through this package):

* ``camera``: pixel grid, backproject / project (torch), intrinsics scaling / cropping / inversion.
* ``se3``: rigid transforms, axis-angle / quaternion conversions in torch (and ``se3_np``: the same in
  numpy via scipy, importable without torch; re-exported by ``se3``).
* ``warp``: rigid flow from depth + pose, inverse warping by flow (``grid_sample``, pixel centres).
* ``masks``: forward-backward consistency and range-map occlusion (Fang et al. eq. 1).
* ``epipolar``: essential / fundamental matrices, Sampson and symmetric epipolar distances.
* ``triangulation``, ``scale_align``: triangulated depth and its robust scale link to a depth map.
* ``two_view``: relative pose from dense flow (E-RANSAC + LM refinement, PnP fallback; a pair without
  a usable pose is reported ``failed``), the pose source of the estimator and of the classical VO
  (``depth_pose_ros.pipeline.vo``).
* ``pose_error``: the per-frame rotation / translation-direction error definitions used everywhere.
* ``dis_flow``: OpenCV DIS optical flow, the classical flow baseline.

Conventions: poses are 4x4 ``T_target_source``; pixel centres at integer coordinates.
"""
