"""`depth-pose demo` and `depth-pose run` end to end (real networks, real geometry, real files)."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from depth_pose_ros.cli import main
from depth_pose_ros.pipeline.runner import read_ply_vertex_count

SMALL = ["--set", "height=64", "--set", "width=192"]


def test_demo_writes_every_output(tmp_path):
    out = tmp_path / "demo"
    rc = main(["demo", "-q", "--source", "synthetic:seed=3,length=6,height=64,width=192", "--out", str(out), *SMALL])
    assert rc == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_frames"] == 6
    assert {"pose", "depth", "flow", "ms_per_frame"} <= set(metrics)
    assert np.isfinite(metrics["pose"]["rot_err_deg_per_frame"])
    summary = cv2.imread(str(out / "summary.png"))
    assert summary.shape == (384, 1152, 3)  # 2x2 panels of the 64x192 network size, enlarged x3 to be readable
    assert read_ply_vertex_count(out / "scene.ply") > 100
    tum = np.loadtxt(out / "trajectory_tum.txt")
    assert tum.shape == (6, 8) and np.all(np.isfinite(tum))


@pytest.mark.data
def test_run_on_kitti_folder(tmp_path, kitti_odometry_dir):
    out = tmp_path / "run"
    seq = kitti_odometry_dir / "sequences" / "06"
    rc = main(["run", "-q", str(seq), "--frames", "0:4", "--out", str(out), "--depth-format", "png,npy",
               "--cloud-every", "2", "--video", *SMALL])
    assert rc == 0
    depth_png = cv2.imread(str(out / "depth" / "000003.png"), cv2.IMREAD_UNCHANGED)
    depth_npy = np.load(out / "depth" / "000003.npy")
    # what the node publishes (output.size camera): depth registered to the 1226x370 camera image, all of it
    assert depth_png.dtype == np.uint16 and depth_png.shape == depth_npy.shape == (370, 1226)
    assert (depth_npy > 0).mean() > 0.98
    np.testing.assert_allclose(depth_png / 1000.0, depth_npy, atol=6e-4)
    assert cv2.imread(str(out / "depth_color" / "000003.png")).shape == (370, 1226, 3)
    assert sorted(p.name for p in (out / "clouds").glob("*.ply")) == ["000000.ply", "000002.ply"]
    assert len(list((out / "flow_color").glob("*.png"))) == 3  # no flow on the first frame
    assert (out / "panels.mp4").stat().st_size > 0
    kitti = np.loadtxt(out / "trajectory_kitti.txt")
    assert kitti.shape == (4, 12)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pose"]["num_frames"] == 4


@pytest.mark.data
def test_run_writes_network_size_depth_on_request(tmp_path, kitti_odometry_dir):
    out = tmp_path / "run"
    seq = kitti_odometry_dir / "sequences" / "06"
    rc = main(["run", "-q", str(seq), "--frames", "0:2", "--out", str(out), "--depth-format", "npy",
               "--output-size", "network", "--cloud-every", "0", *SMALL])
    assert rc == 0
    assert np.load(out / "depth" / "000001.npy").shape == (64, 192)


def test_run_rejects_bad_arguments(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"), *SMALL]) == 1
    assert "nowhere" in capsys.readouterr().err


@pytest.mark.slow
def test_export_writes_onnx_with_parity(tmp_path):
    out = tmp_path / "step.onnx"
    assert main(["export", "--out", str(out), "--height", "64", "--width", "192", "--check"]) == 0
    info = json.loads(out.with_suffix(".json").read_text())
    assert info["inputs"][0] == "image" and "depth" in info["outputs"]
    assert info["max_abs_diff_vs_torch"] < 1e-3
