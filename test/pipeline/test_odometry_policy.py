"""OdometryPolicy: status -> motion, step length, constant-velocity memory and unit factors, without a network.

Every input is hand-built (a two-view result is a small dataclass with the fields the policy reads), so each
decision is checked with exact numbers.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pytest

from depth_pose_ros.geometry.two_view_config import TwoViewStatus
from depth_pose_ros.pipeline.odometry_policy import STEP_STATUSES, Motion, OdometryPolicy, Step

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


@dataclass
class FakeTwoView:
    """The fields of ``geometry.two_view.TwoViewResult`` the policy reads."""

    R: np.ndarray
    t: np.ndarray
    status: TwoViewStatus
    confidence: float = 0.8
    num_inliers: int = 300
    baseline_in_depth_units: Optional[float] = None
    inliers: np.ndarray = field(default_factory=lambda: np.array([True, True, True, False]))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    points_pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def _grid_points(depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Points of a fronto-parallel wall at ``depth`` (frame 1, unit baseline) and their pixels."""
    u, v = np.meshgrid(np.arange(10.0, 90.0, 8.0), np.arange(10.0, 70.0, 8.0))
    pix = np.stack([u.ravel(), v.ravel()], axis=1)
    pts = np.c_[(pix - K[:2, 2]) / K[0, 0], np.ones(len(pix))] * depth
    return pts, pix


def _ok(baseline: Optional[float] = None, depth: float = 0.0, R: Optional[np.ndarray] = None) -> FakeTwoView:
    """An ``ok`` pose moving forward (``t`` = +z), with a triangulated wall at ``depth`` (none when 0)."""
    pts, pix = _grid_points(depth) if depth > 0 else (np.zeros((0, 3)), np.zeros((0, 2)))
    return FakeTwoView(R=np.eye(3) if R is None else R, t=np.array([0.0, 0.0, 1.0]), status=TwoViewStatus.OK,
                       baseline_in_depth_units=baseline, points=pts, points_pixels=pix)


def test_first_frame_reports_first_and_no_motion() -> None:
    step = OdometryPolicy().first()
    assert step.status == "first" and step.step_length_source == ""
    assert (step.confidence, step.num_inliers, step.inlier_ratio) == (0.0, 0, 0.0)
    assert np.array_equal(step.motion.T_cur_prev, np.eye(4))


def test_ok_with_depth_length_defines_the_units_once() -> None:
    policy = OdometryPolicy(scale_propagation="depth")
    step = policy.two_view(_ok(baseline=2.0), K)
    assert step == Step(step.motion, "ok", "depth", confidence=0.8, num_inliers=300, inlier_ratio=0.75)
    assert step.motion.length == 2.0 and np.array_equal(step.motion.t, [0.0, 0.0, 1.0])
    assert policy.depth_factor == 1.0 and policy.depth_units.count == 1  # the first pair defines the units
    assert policy.two_view(_ok(baseline=3.0), K).motion.length == 3.0
    assert policy.depth_units.count == 1  # later depth lengths do not observe the units again
    assert policy.velocity is not None and policy.velocity.length == 3.0


def test_ok_with_geometry_length_carries_the_chain_and_the_depth_units() -> None:
    policy = OdometryPolicy(scale_propagation="geometry")
    wall, pixels = _grid_points(6.0)  # the first pair's points, seen from its second camera: a wall 6 units away
    first = _ok(baseline=2.0)
    first.points, first.points_pixels = wall - first.t, pixels  # in the first camera (X_2 = X_1 + t)
    step = policy.two_view(first, K)  # no chain yet: the depth gives the length
    assert (step.step_length_source, step.motion.length) == ("depth", 2.0)
    # the chain keeps the wall at 6 * 2 = 12 odometry units; the next pair triangulates it at 4 (unit baseline)
    second = _ok(baseline=6.0)
    second.points, second.points_pixels = _grid_points(4.0)
    step = policy.two_view(second, K)
    assert step.step_length_source == "geometry" and step.motion.length == pytest.approx(3.0)
    # the depth is kept in the odometry's units: the first pair observed 1, this one 3 / 6
    assert policy.depth_units.count == 2 and policy.depth_factor == pytest.approx(np.sqrt(0.5))
    # a length more than max_scale_jump away from the last one is not carried: the depth gives it
    third = _ok(baseline=1.0)
    third.points, third.points_pixels = _grid_points(0.25)  # wall at 4 * 3 = 12 units -> length 48 (16x)
    step = policy.two_view(third, K)
    assert step.step_length_source == "depth" and step.motion.length == pytest.approx(np.sqrt(0.5))


def test_ok_without_any_length_repeats_the_last_length() -> None:
    policy = OdometryPolicy(scale_propagation="depth")
    step = policy.two_view(_ok(baseline=None), K)  # nothing at all yet: zero length
    assert (step.status, step.step_length_source, step.motion.length) == ("ok", "constant_velocity", 0.0)
    policy.two_view(_ok(baseline=1.5), K)
    step = policy.two_view(_ok(baseline=float("nan"), R=_rot_z(2.0)), K)
    assert (step.step_length_source, step.motion.length) == ("constant_velocity", 1.5)
    assert np.array_equal(step.motion.R, _rot_z(2.0))  # the rotation is measured, only the length repeats


def test_pnp_fallback_takes_its_translation_in_network_units() -> None:
    policy = OdometryPolicy()
    policy.depth_units.push(2.0)  # network depth -> odometry units
    tv = FakeTwoView(R=_rot_z(1.0), t=np.array([1.0, 0.0, 0.0]), status=TwoViewStatus.PNP_FALLBACK,
                     confidence=0.3, num_inliers=120, baseline_in_depth_units=0.25)
    step = policy.two_view(tv, K)
    assert (step.status, step.step_length_source, step.confidence, step.num_inliers) == (
        "pnp_fallback", "pnp", 0.3, 120)
    assert step.motion.length == 0.5 and np.array_equal(step.motion.R, _rot_z(1.0))
    assert policy.velocity is step.motion and policy.chain.structure is None


def test_low_parallax_keeps_the_rotation_only_and_breaks_the_chain() -> None:
    policy = OdometryPolicy()
    policy.two_view(_ok(baseline=2.0, depth=5.0), K)
    assert policy.chain.structure is not None
    step = policy.low_parallax(_rot_z(0.5))
    assert (step.status, step.step_length_source, step.confidence) == ("low_parallax", "none", 0.0)
    assert step.motion.length == 0.0 and np.array_equal(step.motion.R, _rot_z(0.5))
    assert policy.chain.structure is None and policy.velocity is step.motion


def test_posenet_translation_is_scaled_to_the_odometry_units() -> None:
    policy = OdometryPolicy()
    policy.depth_units.push(4.0)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = _rot_z(3.0), [0.0, 0.6, 0.8]
    step = policy.posenet(T)
    assert (step.status, step.step_length_source, step.confidence) == ("posenet", "posenet", 1.0)
    assert step.motion.length == pytest.approx(4.0) and np.allclose(step.motion.t, [0.0, 0.6, 0.8])
    still = policy.posenet(np.eye(4))
    assert still.motion.length == 0.0 and np.array_equal(still.motion.t, np.zeros(3))


def test_failed_geometry_repeats_the_last_step_as_constant_velocity() -> None:
    policy = OdometryPolicy(scale_propagation="depth")
    failed = FakeTwoView(R=np.eye(3), t=np.zeros(3), status=TwoViewStatus.FAILED, confidence=0.0, num_inliers=0,
                         inliers=np.zeros(0, bool))
    step = policy.two_view(failed, K)  # no velocity yet: the identity, nothing remembered
    assert (step.status, step.step_length_source, step.confidence, step.num_inliers) == (
        "constant_velocity", "constant_velocity", 0.0, 0)
    assert step.inlier_ratio == 0.0
    assert np.array_equal(step.motion.T_cur_prev, np.eye(4)) and policy.velocity is None
    good = policy.two_view(_ok(baseline=2.0, R=_rot_z(1.0)), K)
    step = policy.two_view(failed, K)
    assert step.motion is good.motion and step.status == "constant_velocity"
    assert policy.velocity is good.motion  # the memory is not changed by a guess
    assert "failed" not in STEP_STATUSES and "constant_velocity" in STEP_STATUSES


def test_a_caller_choosing_its_own_lengths_shares_the_memory() -> None:
    policy = OdometryPolicy()
    kept = policy.remember(Motion(_rot_z(1.0), np.array([1.0, 0.0, 0.0]), 0.7))
    assert policy.constant_velocity() is kept
    policy.reset()
    assert np.array_equal(policy.constant_velocity().T_cur_prev, np.eye(4))


def test_non_finite_step_holds_the_pose_but_keeps_the_memory() -> None:
    policy = OdometryPolicy(scale_propagation="depth")
    step = policy.two_view(_ok(baseline=2.0), K)
    held = policy.non_finite(step)
    assert held.status == "constant_velocity" and held.step_length_source == "depth" and held.num_inliers == 300
    assert np.array_equal(held.motion.T_cur_prev, np.eye(4)) and policy.velocity is step.motion


def test_metric_factor_scales_each_step_at_its_time() -> None:
    policy = OdometryPolicy(metric_window=3, metric_warmup=2, metric_source="camera_height")
    motion = Motion(np.eye(3), np.array([0.0, 0.0, 1.0]), 2.0)
    assert policy.metric_factor == 1.0 and not policy.scale_converged
    assert np.array_equal(policy.T_cur_prev(motion)[:3, 3], [0.0, 0.0, 2.0])
    policy.observe_metric(None)  # no observation this step
    policy.observe_metric(0.5)
    assert policy.metric_factor == pytest.approx(0.5) and not policy.scale_converged
    policy.observe_metric(0.5)
    assert policy.scale_converged and np.allclose(policy.T_cur_prev(motion)[:3, 3], [0.0, 0.0, 1.0])
    assert OdometryPolicy().scale_converged  # without a metric source the units are final


def test_reset_forgets_the_memory_and_the_units_unless_kept() -> None:
    policy = OdometryPolicy(scale_propagation="depth")
    policy.two_view(_ok(baseline=2.0, depth=5.0), K)
    policy.observe_metric(3.0)
    policy.reset(keep_units=True)  # a time gap: the trajectory continues in its units
    assert policy.velocity is None and policy.chain.structure is None
    assert policy.depth_units.count == 1 and policy.metric_factor == pytest.approx(3.0)
    policy.reset()  # a restart of the data: fresh units too
    assert policy.depth_units.value is None and policy.metric.value is None


def test_the_policy_imports_neither_torch_nor_opencv() -> None:
    code = ("import sys; import depth_pose_ros.pipeline.odometry_policy; "
            "print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
