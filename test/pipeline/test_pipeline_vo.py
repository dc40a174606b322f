"""VO runner and `depth-pose vo`: synthetic world (exact GT) and real KITTI odometry 06 frames 0-50.

The KITTI test is the accuracy target of the two-view module on real data (DIS-MEDIUM flow at full
resolution): mean rotation error <= 0.10 deg/frame and median translation-direction error <= 1.0 deg.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from depth_pose_ros.cli import main as cli_main
from depth_pose_ros.data.frame import Frame
from depth_pose_ros.geometry.pose_error import trajectory_relative_errors
from depth_pose_ros.pipeline.vo import VoConfig, run_vo

SYNTH_SPEC = "synthetic:seed=0,length=12,height=192,width=640"


@pytest.fixture(scope="module")
def synthetic_frames():
    from depth_pose_ros.data.synthetic import SyntheticSequence

    seq = SyntheticSequence(seed=0, length=12, height=192, width=640)
    return [seq[i] for i in range(len(seq))]


@pytest.mark.parametrize("flow", ["gt", "dis"])
def test_vo_on_the_synthetic_world_meets_the_targets(synthetic_frames, flow):
    r = run_vo(synthetic_frames, VoConfig(flow=flow, scale="gt"))
    assert r.num_frames == 12 and r.T_rel.shape == (11, 4, 4)
    assert r.status_counts() == {"ok": 11, "pnp_fallback": 0, "constant_velocity": 0, "first": 1,
                                   "low_parallax": 0, "posenet": 0}
    rot, tdir = trajectory_relative_errors(r.T_world_cam, r.gt_T_world_cam)
    assert np.median(rot) < 0.05 and np.nanmedian(tdir) < 0.5
    if flow == "gt":  # exact flow (with moving cars in it): far inside the targets
        assert np.median(rot) < 0.005 and np.nanmedian(tdir) < 0.05
    m = r.metrics()
    assert m["rot_err_deg_per_frame"] == pytest.approx(float(np.mean(rot)))
    assert m["ate_gt_scale_m"] < 0.05 and m["num_frames"] == 12


def test_vo_depth_scale_uses_the_two_view_scale_alignment(synthetic_frames):
    """With the world's depth maps, each step length comes from aligning depth to triangulation."""
    r = run_vo(synthetic_frames, VoConfig(flow="gt", scale="depth"))
    gt_steps = np.linalg.norm(np.diff(r.gt_T_world_cam[:, :3, 3], axis=0), axis=1)
    assert r.scale_mode == "depth"
    assert r.step_lengths == pytest.approx(gt_steps, rel=0.01)


def test_vo_without_ground_truth_uses_unit_steps(synthetic_frames):
    frames = [Frame(image=f.image, K=f.K, stamp=f.stamp, index=f.index) for f in synthetic_frames[:4]]
    r = run_vo(frames, VoConfig(backward_flow=False))
    assert r.scale_mode == "unit" and r.gt_T_world_cam is None
    assert r.step_lengths == pytest.approx(np.ones(3))
    assert np.array_equal(r.T_world_cam[0], np.eye(4))
    assert "rot_err_deg_per_frame" not in r.metrics() and r.metrics()["num_frames"] == 4
    with pytest.raises(ValueError, match="no ground-truth pose"):
        run_vo(frames, VoConfig(scale="gt"))
    with pytest.raises(ValueError, match="no depth map"):
        run_vo(frames, VoConfig(scale="depth"))
    with pytest.raises(ValueError, match="no ground-truth flow"):
        run_vo(frames, VoConfig(flow="gt"))
    with pytest.raises(ValueError, match="no frames"):
        run_vo([])
    with pytest.raises(ValueError, match="VoConfig.flow"):
        VoConfig(flow="raft")
    with pytest.raises(ValueError, match=r"VoConfig.flow='model'; choose one of \('dis', 'gt', 'network'\)"):
        VoConfig(flow="model")  # the vocabulary before FLOW_SOURCES: named in the error, not mapped
    with pytest.raises(SystemExit):  # argparse: "invalid choice: 'model' (choose from ...)"
        cli_main(["vo", "synthetic:seed=1,length=3", "--flow", "model"])


def test_cli_vo_synthetic_writes_tum_trajectory_and_json(tmp_path):
    out, js = tmp_path / "traj.tum", tmp_path / "m.json"
    rc = cli_main(["vo", "synthetic:seed=1,length=5,height=96,width=320", "--flow", "gt", "--format", "tum",
                   "--out", str(out), "--json", str(js)])
    assert rc == 0
    lines = [ln for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(lines) == 5 and len(lines[0].split()) == 8
    m = json.loads(js.read_text())
    for key in ("rot_err_deg_per_frame", "tdir_err_deg_median", "ate_gt_scale_m", "ate_sim3_m", "path_length_m",
                "ms_per_frame", "num_frames", "status_counts"):
        assert key in m
    assert m["num_frames"] == 5 and m["status_counts"]["ok"] == 4


def test_cli_vo_reports_bad_input(tmp_path, capsys):
    rc = cli_main(["vo", str(tmp_path / "missing"), "--out", str(tmp_path / "t.txt")])
    assert rc == 1
    assert "source not found" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ KITTI


@pytest.fixture(scope="module")
def kitti_vo(kitti_odometry_dir):
    """DIS-MEDIUM flow at full resolution (1226x370), frames 0-50, run once for the module."""
    from depth_pose_ros.data.kitti_odometry import KittiOdometry

    source = KittiOdometry(kitti_odometry_dir, sequence="06", frames=slice(0, 51))
    return run_vo(source, VoConfig(flow="dis", dis_preset="medium"))


@pytest.mark.slow
@pytest.mark.data
def test_kitti_06_two_view_accuracy_targets(kitti_vo):
    r = kitti_vo
    assert r.num_frames == 51
    assert r.status_counts()["ok"] == 50
    rot, tdir = trajectory_relative_errors(r.T_world_cam, r.gt_T_world_cam)
    # brief targets (a plain findEssentialMat on the same flow gives about 0.09 deg and 0.76 deg)
    assert rot.mean() <= 0.10
    assert np.nanmedian(tdir) <= 1.0
    # what this implementation reaches (measured 0.041 deg and 0.32 deg): guard against regressions
    assert rot.mean() <= 0.06 and np.nanmedian(tdir) <= 0.45
    m = r.metrics()
    assert m["rot_err_deg_per_frame"] == pytest.approx(rot.mean())
    assert m["tdir_err_deg_median"] == pytest.approx(np.nanmedian(tdir))
    assert m["path_length_m"] == pytest.approx(59.86, abs=0.05)
    assert m["ate_gt_scale_m"] < 0.1  # ~60 m path with GT step lengths


@pytest.mark.slow
@pytest.mark.data
def test_cli_vo_kitti_short_run(kitti_odometry_dir, tmp_path):
    out, js = tmp_path / "traj.txt", tmp_path / "m.json"
    rc = cli_main(["vo", str(kitti_odometry_dir), "--sequence", "06", "--frames", "0:4", "--out", str(out),
                   "--json", str(js)])
    assert rc == 0
    rows = np.loadtxt(out)
    assert rows.shape == (4, 12)
    assert rows[0] == pytest.approx([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0], abs=1e-6)  # GT frame 0
    m = json.loads(js.read_text())
    assert m["scale_mode"] == "gt" and m["num_frames"] == 4 and m["rot_err_deg_per_frame"] < 0.2


def test_vo_with_a_flow_function_matches_the_built_in_flow(synthetic_frames):
    """flow="network" runs any flow function (a trained network's in practice); fed DIS it must equal 'dis'."""
    from depth_pose_ros.geometry.dis_flow import dis_flow, to_gray_u8

    frames = synthetic_frames[:4]
    calls = []

    def fn(a, b):
        calls.append(a.shape)
        return dis_flow(to_gray_u8(a), to_gray_u8(b), "medium")

    ref = run_vo(frames, VoConfig(flow="dis", scale="gt"))
    got = run_vo(frames, VoConfig(flow="network", flow_fn=fn, scale="gt"))
    assert len(calls) == 6  # forward + backward for 3 pairs
    np.testing.assert_allclose(got.T_world_cam, ref.T_world_cam, atol=1e-9)
    with pytest.raises(ValueError, match="flow_fn"):
        VoConfig(flow="network")


def test_cli_vo_with_a_trained_model_file_runs_at_its_training_size(tmp_path):
    """`vo --flow network --checkpoint runs/x/model.safetensors`: the input size comes from the file."""
    import torch

    from depth_pose_ros.nets.checkpoint import save_model
    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.pipeline.factory import build_estimator

    torch.manual_seed(0)
    model = build_model(NetConfig.from_dict({"encoder": {"width": 0.25}, "flow": {"enabled": True}}))
    path = tmp_path / "model.safetensors"
    save_model(path, model, extra={"step": 1, "height": 64, "width": 192})
    est, _ = build_estimator(str(path), allow_untrained=False)
    assert (est.config.height, est.config.width) == (64, 192)
    js = tmp_path / "m.json"
    rc = cli_main(["vo", "synthetic:seed=1,length=4,height=96,width=320", "--flow", "network", "--checkpoint",
                   str(path), "--out", str(tmp_path / "t.txt"), "--json", str(js)])
    assert rc == 0
    m = json.loads(js.read_text())
    assert m["flow"] == "network" and m["checkpoint"] == str(path) and m["num_frames"] == 4
    assert cli_main(["vo", "synthetic:seed=1,length=3", "--checkpoint", str(path)]) != 0  # only with --flow network


def test_vo_scale_geometry_keeps_one_scale_without_ground_truth(synthetic_frames):
    """`vo --scale geometry`: no GT anywhere, yet the trajectory is the true one up to a single factor."""
    from depth_pose_ros.eval.pose_metrics import pose_summary

    r = run_vo(synthetic_frames, VoConfig(flow="gt", scale="geometry"))
    assert r.scale_mode == "geometry" and r.step_lengths[0] == 1.0
    m = pose_summary(r.T_world_cam, r.gt_T_world_cam)
    assert m["ate_sim3_m"] < 0.02 * m["path_length_m"]
    # the lengths follow the true step lengths up to one factor
    gt_steps = np.linalg.norm(np.diff(r.gt_T_world_cam[:, :3, 3], axis=0), axis=1)
    ratio = r.step_lengths / gt_steps
    assert np.std(np.log(ratio)) < 0.02


def test_vo_repeats_the_last_measured_step_where_the_geometry_fails(synthetic_frames):
    """A pair the two-view module fails on (``failed``: no flow at all) gets the last measured rotation and
    direction from the odometry policy's memory, reported ``constant_velocity``; with GT scale, its GT length."""
    import dataclasses

    flows = [dataclasses.replace(f, flow_next=np.zeros_like(f.flow_next)) if i == 4 else f
             for i, f in enumerate(synthetic_frames[:7])]
    r = run_vo(flows, VoConfig(flow="gt", scale="gt", backward_flow=False))
    assert r.statuses == ["ok"] * 4 + ["constant_velocity"] + ["ok"]
    assert r.status_counts()["constant_velocity"] == 1 and "failed" not in r.status_counts()
    assert np.array_equal(r.T_rel[4], r.T_rel[3]) and r.confidences[4] == 0.0
    gt_step = np.linalg.norm((np.linalg.inv(r.gt_T_world_cam[5]) @ r.gt_T_world_cam[4])[:3, 3])
    assert r.step_lengths[4] == pytest.approx(gt_step)
