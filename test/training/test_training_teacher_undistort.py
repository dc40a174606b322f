"""The geometry teacher sees distorted recordings as the training clips and the node do: undistorted by the
same Undistorter, K unchanged (real frames of indoor_handheld: a phone camera with plumb_bob distortion)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from depth_pose_ros.data.frame import undistort_frame
from depth_pose_ros.data.source import SequenceSource, open_source
from depth_pose_ros.geometry.two_view import TwoViewConfig
from depth_pose_ros.utils.paths import data_root
from training.geometry_teacher import CACHE_VERSION, TeacherData, compute_teacher


@pytest.fixture(scope="module")
def handheld_spec() -> str:
    if not (data_root() / "indoor_handheld" / "camera_info.yaml").is_file():
        pytest.skip(f"indoor_handheld not found under {data_root()} (set DEPTH_POSE_DATA)")
    return "data:indoor_handheld"


def test_teacher_runs_on_the_undistorted_frames(handheld_spec: str) -> None:
    assert CACHE_VERSION >= 4  # teachers cached before undistortion are not reused
    src = open_source(handheld_spec, frames=slice(30, 33))  # a stretch where every pair triangulates
    assert src[0].distortion is not None
    out_hw = (90, 160)
    got = compute_teacher(src, out_hw, TwoViewConfig(), with_flow=True)
    frames = [src[i] for i in range(len(src))]
    undistorted = SequenceSource([undistort_frame(f) for f in frames], name="undistorted")
    want = compute_teacher(undistorted, out_hw, TwoViewConfig(), with_flow=True)
    for name in TeacherData.ARRAYS:
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.counts == want.counts and got.counts["with_points"] == 3
    # and not what the distorted images alone would give
    raw = SequenceSource([dataclasses.replace(f, distortion=None) for f in frames], name="raw")
    assert not np.array_equal(compute_teacher(raw, out_hw, TwoViewConfig(), with_flow=True).flows_fw,
                              got.flows_fw)
