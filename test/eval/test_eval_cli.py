"""`depth-pose eval {flow,pose,depth}` end to end, in-process, on real data where it exists."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.cli import main
from depth_pose_ros.data.kitti_flow import read_kitti_flow_png
from depth_pose_ros.data.trajectory_io import read_kitti_poses, write_kitti_poses, write_tum_trajectory
from depth_pose_ros.eval.align import Sim3


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


# ---------------------------------------------------------------------------------------------- flow
def test_flow_dis_beats_zero_flow_on_kitti_2015(
    kitti_flow_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = _run(["eval", "flow", "--data", str(kitti_flow_dir), "--method", "dis", "--preset", "medium",
                       "--json", str(tmp_path / "flow.json")], capsys)
    assert rc == 0
    assert "000004_10" in out and "no flow_noc" in out
    res = json.loads((tmp_path / "flow.json").read_text())
    s, z = res["summary"], res["zero_flow"]
    assert res["method"] == "dis-medium" and s["num_images"] == 5 and not res["has_noc"]
    assert s["epe"] < z["epe"] and s["fl_all"] < z["fl_all"]
    assert 0.0 < s["epe"] < 30.0 and 0.0 < s["fl_all"] < 60.0
    assert "fl_noc" not in s  # only flow_occ exists in this data


def test_flow_pred_dir_of_ground_truth_scores_zero(
    kitti_flow_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GT copied as predictions: a KITTI PNG for the first pair, .npy (decoded) for the others."""
    gt_files = sorted((kitti_flow_dir / "training" / "flow_occ").glob("*_10.png"))
    shutil.copy(gt_files[0], tmp_path / gt_files[0].name)
    for f in gt_files[1:]:
        np.save(tmp_path / f"{f.stem}.npy", read_kitti_flow_png(f)[0])
    rc, _, _ = _run(["eval", "flow", "--data", str(kitti_flow_dir), "--pred-dir", str(tmp_path),
                     "--json", str(tmp_path / "r.json")], capsys)
    assert rc == 0
    s = json.loads((tmp_path / "r.json").read_text())["summary"]
    assert s["epe"] == 0.0 and s["fl_all"] == 0.0


def test_flow_noc_metrics_when_flow_noc_exists(
    kitti_flow_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A layout with flow_noc (here: a link to flow_occ) adds the noc columns; zero-flow predictions
    must score exactly the zero-flow baseline."""
    train = tmp_path / "kitti" / "training"
    train.mkdir(parents=True)
    real = kitti_flow_dir / "training"
    (train / "image_2").symlink_to(real / "image_2")
    (train / "flow_occ").symlink_to(real / "flow_occ")
    (train / "flow_noc").symlink_to(real / "flow_occ")
    preds = tmp_path / "pred"
    preds.mkdir()
    for f in sorted((real / "flow_occ").glob("*_10.png")):
        np.save(preds / f"{f.stem}.npy", np.zeros((375, 1242, 2), np.float32))
    rc, out, _ = _run(["eval", "flow", "--data", str(tmp_path / "kitti"), "--pred-dir", str(preds),
                       "--json", str(tmp_path / "r.json")], capsys)
    assert rc == 0 and "no flow_noc" not in out
    res = json.loads((tmp_path / "r.json").read_text())
    s, z = res["summary"], res["zero_flow"]
    assert res["has_noc"]
    assert s["epe_noc"] == pytest.approx(s["epe"]) and s["fl_noc"] == pytest.approx(s["fl_all"])
    assert s["epe"] == pytest.approx(z["epe"]) and s["fl_all"] == pytest.approx(z["fl_all"])


def test_flow_errors_are_clear(
    kitti_flow_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data", str(kitti_flow_dir)]
    rc, _, err = _run(["eval", "flow", *data, "--checkpoint", "x.safetensors"], capsys)
    assert rc == 1 and "checkpoint not found: x.safetensors" in err
    np.save(tmp_path / "000000_10.npy", np.zeros((375, 1242, 2), np.float32))
    rc, _, err = _run(["eval", "flow", "--data", str(kitti_flow_dir), "--pred-dir", str(tmp_path)], capsys)
    assert rc == 1 and "no 000001_10.npy or 000001_10.png (4 of 5 pairs missing)" in err
    rc, _, err = _run(["eval", "flow", "--data", str(tmp_path)], capsys)
    assert rc == 1 and "KITTI 2015 folder not found" in err


# ---------------------------------------------------------------------------------------------- pose
def test_pose_kitti_files_sim3_copy_of_real_gt(
    kitti_odometry_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt_path = kitti_odometry_dir / "poses" / "06.txt"
    gt = read_kitti_poses(gt_path)
    pred = Sim3(0.25, np.eye(3), np.array([1.0, 2.0, 3.0])).apply_to_poses(gt)  # monocular-like
    write_kitti_poses(tmp_path / "pred.txt", pred)
    rc, out, _ = _run(["eval", "pose", "--pred", str(tmp_path / "pred.txt"), "--gt", str(gt_path),
                       "--json", str(tmp_path / "pose.json")], capsys)
    assert rc == 0 and "ate_sim3_m" in out
    s = json.loads((tmp_path / "pose.json").read_text())["summary"]
    assert s["ate_sim3_m"] < 1e-5 and s["t_err_pct"] < 1e-3
    assert s["sim3_scale"] == pytest.approx(4.0, rel=1e-6)
    assert s["kitti_segments_standard"] is False and len(s["kitti_segments_m"]) == 8


def test_pose_tum_association_by_timestamp(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 30
    gt = np.tile(np.eye(4), (n, 1, 1))
    gt[:, 0, 3] = np.sin(np.arange(n) * 0.2)
    gt[:, 2, 3] = 0.1 * np.arange(n)
    stamps = 100.0 + 0.1 * np.arange(n)
    write_tum_trajectory(tmp_path / "gt.txt", stamps, gt)
    # prediction: every other frame, stamps jittered by 3 ms, one stamp far off (unmatched)
    keep = np.arange(0, n, 2)
    pred_stamps = stamps[keep] + 0.003
    pred_stamps[-1] += 1.0
    write_tum_trajectory(tmp_path / "pred.txt", pred_stamps, gt[keep])
    rc, out, _ = _run(["eval", "pose", "--pred", str(tmp_path / "pred.txt"), "--gt", str(tmp_path / "gt.txt"),
                       "--pred-format", "tum", "--gt-format", "tum", "--json", str(tmp_path / "p.json")],
                      capsys)
    assert rc == 0 and "14 of 15 pred poses" in out
    res = json.loads((tmp_path / "p.json").read_text())
    assert res["summary"]["num_frames"] == 14
    assert res["summary"]["ate_sim3_m"] < 1e-6


def test_pose_frame_count_mismatch_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_kitti_poses(tmp_path / "a.txt", np.tile(np.eye(4), (5, 1, 1)))
    write_kitti_poses(tmp_path / "b.txt", np.tile(np.eye(4), (6, 1, 1)))
    files = ["--pred", str(tmp_path / "a.txt"), "--gt", str(tmp_path / "b.txt")]
    rc, _, err = _run(["eval", "pose", *files], capsys)
    assert rc == 1 and "a.txt has 5 poses" in err


# ---------------------------------------------------------------------------------------------- depth
def _nyu_folders(data_dir: Path, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(NYU mini folder, empty pred folder, empty GT folder); skips without the data."""
    nyu = data_dir / "nyu_mini"
    if not (nyu / "depth_0.png").is_file():
        pytest.skip(f"NYU mini not found under {nyu}")
    pred_dir, gt_dir = tmp_path / "pred", tmp_path / "gt"
    pred_dir.mkdir()
    gt_dir.mkdir()
    return nyu, pred_dir, gt_dir


def test_depth_folders_with_real_nyu_gt(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nyu, pred_dir, gt_dir = _nyu_folders(data_dir, tmp_path)
    for i in range(3):
        shutil.copy(nyu / f"depth_{i}.png", gt_dir / f"depth_{i}.png")  # 16-bit millimetres
        gt_m = cv2.imread(str(nyu / f"depth_{i}.png"), cv2.IMREAD_UNCHANGED).astype(np.float32) / 1000.0
        np.save(pred_dir / f"depth_{i}.npy", 2.0 * gt_m[::2, ::2])  # half resolution, twice too far
    rc, out, _ = _run(["eval", "depth", "--pred", str(pred_dir), "--gt", str(gt_dir),
                       "--json", str(tmp_path / "d.json")], capsys)
    assert rc == 0 and "median scaling ratio" in out
    s = json.loads((tmp_path / "d.json").read_text())["summary"]
    assert s["num_images"] == 3
    assert s["abs_rel"] < 0.05 and s["scale_mean"] == pytest.approx(0.5, rel=0.02)
    rc, _, _ = _run(["eval", "depth", "--pred", str(pred_dir), "--gt", str(gt_dir), "--no-median-scale",
                     "--json", str(tmp_path / "d2.json")], capsys)
    assert json.loads((tmp_path / "d2.json").read_text())["summary"]["abs_rel"] > 0.9


def test_depth_skips_and_reports_a_corrupt_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One corrupt GT PNG costs that image only; the run names it at the end and in the JSON."""
    nyu, pred_dir, gt_dir = _nyu_folders(data_dir, tmp_path)
    for i in range(3):
        shutil.copy(nyu / f"depth_{i}.png", gt_dir / f"depth_{i}.png")
        shutil.copy(nyu / f"depth_{i}.png", pred_dir / f"depth_{i}.png")
    (gt_dir / "depth_1.png").write_bytes(b"garbage" * 50)
    rc, out, _ = _run(["eval", "depth", "--pred", str(pred_dir), "--gt", str(gt_dir),
                       "--json", str(tmp_path / "d.json")], capsys)
    assert rc == 0 and "skipped 1 unreadable frame: depth_1 (" in out
    res = json.loads((tmp_path / "d.json").read_text())
    assert res["summary"]["num_images"] == 2
    assert [s["index"] for s in res["skipped_frames"]] == ["depth_1"]
    assert "depth_1.png" in res["skipped_frames"][0]["reason"]


def test_depth_errors_are_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["eval", "depth", "--pred", str(tmp_path / "nope"), "--gt", str(tmp_path)], capsys)
    assert rc == 1 and "--pred directory not found" in err
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    np.save(tmp_path / "p" / "a.npy", np.ones((4, 4)))
    np.save(tmp_path / "g" / "b.npy", np.ones((4, 4)))
    rc, _, err = _run(["eval", "depth", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "g")], capsys)
    assert rc == 1 and "no file stem is shared" in err
    np.save(tmp_path / "g" / "a.npy", np.zeros((4, 4)))
    rc, _, err = _run(["eval", "depth", "--pred", str(tmp_path / "p"), "--gt", str(tmp_path / "g")], capsys)
    assert rc == 1 and "a (" in err and "no valid depth" in err


def test_flow_of_a_checkpoint(kitti_flow_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Learned flow through ``--checkpoint``: a (small, untrained) saved model runs on every pair."""
    import json

    import torch

    from depth_pose_ros.nets.checkpoint import save_model
    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model

    torch.manual_seed(0)
    ckpt = tmp_path / "m.safetensors"
    save_model(ckpt, build_model(NetConfig.from_dict({"encoder": {"width": 0.25}})))
    out = tmp_path / "flow.json"
    rc, _, err = _run(["eval", "flow", "--data", str(kitti_flow_dir), "--checkpoint", str(ckpt),
                       "--json", str(out)], capsys)
    assert rc == 0, err
    res = json.loads(out.read_text())
    assert len(res["per_image"]) == 5 and np.isfinite(res["summary"]["epe"])
