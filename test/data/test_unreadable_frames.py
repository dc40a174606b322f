"""One bad file costs one frame, not the run: readers skip, count and report unreadable frames.

Real KITTI odometry frames are copied into a temporary image folder and one of them is replaced by
garbage bytes (or by an image of another size); the readers, the clip dataset and the offline commands
must finish on the others and name the bad frame at the end. A source that does not exist, or of which
no frame can be read, is still an error.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.cli import main
from depth_pose_ros.data.clips import ClipDataset
from depth_pose_ros.data.image_folder import ImageFolder
from depth_pose_ros.data.kitti_odometry import KittiOdometry, read_kitti_calib
from depth_pose_ros.data.source import FrameReadError, open_source, skipped_summary

BAD = 2  # the frame whose file is broken
SMALL = ["--set", "height=64", "--set", "width=192"]


def _kitti_folder(kitti_odometry_dir: Path, dest: Path, n: int = 6) -> Path:
    """The first ``n`` gray frames of KITTI 06 as an image folder with its intrinsics.yaml."""
    seq = kitti_odometry_dir / "sequences" / "06"
    dest.mkdir(parents=True)
    for i in range(n):
        shutil.copy(seq / "image_0" / f"{i:06d}.png", dest / f"{i:06d}.png")
    P0 = read_kitti_calib(seq / "calib.txt")["P0"]
    (dest / "intrinsics.yaml").write_text(f"fx: {P0[0, 0]}\nfy: {P0[1, 1]}\ncx: {P0[0, 2]}\ncy: {P0[1, 2]}\nfps: 10\n")
    return dest


def _kitti_sequence(kitti_odometry_dir: Path, dest: Path, n: int = 6) -> Path:
    """The first ``n`` frames of KITTI 06 in the odometry layout (calib, image_0, GT poses)."""
    src = kitti_odometry_dir / "sequences" / "06"
    seq = dest / "sequences" / "06"
    (seq / "image_0").mkdir(parents=True)
    shutil.copy(src / "calib.txt", seq / "calib.txt")
    for i in range(n):
        shutil.copy(src / "image_0" / f"{i:06d}.png", seq / "image_0" / f"{i:06d}.png")
    (dest / "poses").mkdir()
    lines = (kitti_odometry_dir / "poses" / "06.txt").read_text().splitlines()[:n]
    (dest / "poses" / "06.txt").write_text("\n".join(lines) + "\n")
    return seq


@pytest.fixture()
def broken_folder(kitti_odometry_dir: Path, tmp_path: Path) -> Path:
    root = _kitti_folder(kitti_odometry_dir, tmp_path / "frames")
    (root / f"{BAD:06d}.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)  # PNG magic, then junk
    return root


@pytest.mark.data
def test_iteration_skips_a_corrupt_file_and_keeps_the_reason(broken_folder: Path, caplog) -> None:
    src = ImageFolder(broken_folder)
    with caplog.at_level("WARNING", logger="depth_pose_ros.data.source"):
        frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3, 4, 5]
    assert len(src.skipped) == 1
    index, reason = src.skipped[0]
    assert index == BAD and f"{BAD:06d}.png" in reason
    assert sum(f"{BAD:06d}.png" in r.getMessage() for r in caplog.records) == 1  # one warning per frame
    list(src)  # a second pass neither warns again nor counts twice
    assert len(src.skipped) == 1
    with pytest.raises(FrameReadError, match=f"{BAD:06d}.png") as err:  # random access raises, naming the file
        src[BAD]
    assert (err.value.position, err.value.index) == (BAD, BAD)
    assert skipped_summary(src.skipped).startswith("skipped 1 unreadable frame: 2 (")


@pytest.mark.data
def test_a_frame_of_another_size_mid_sequence_is_skipped(kitti_odometry_dir: Path, tmp_path: Path) -> None:
    seq = _kitti_sequence(kitti_odometry_dir, tmp_path)
    small = cv2.imread(str(seq / "image_0" / "000003.png"), cv2.IMREAD_UNCHANGED)[::2, ::2]
    cv2.imwrite(str(seq / "image_0" / "000003.png"), small)
    src = KittiOdometry(seq)
    assert [f.index for f in src] == [0, 1, 2, 4, 5]
    assert src.skipped[0][0] == 3 and "613x185" in src.skipped[0][1]


@pytest.mark.data
def test_a_corrupt_first_file_does_not_refuse_the_folder(broken_folder: Path) -> None:
    (broken_folder / "000000.png").write_bytes(b"not an image")
    src = ImageFolder(broken_folder)  # intrinsics checked against the first image that decodes
    assert [f.index for f in src] == [1, 3, 4, 5]
    assert [i for i, _ in src.skipped] == [0, BAD]


def test_missing_or_wholly_unreadable_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        open_source(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolder(tmp_path / "nowhere")
    junk = tmp_path / "junk"
    junk.mkdir()
    for i in range(3):
        (junk / f"{i}.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"none of the 3 images .*0\.png"):
        ImageFolder(junk)


def test_iterating_a_source_without_one_readable_frame_raises(tmp_path: Path) -> None:
    root = tmp_path / "seq"
    root.mkdir()
    cv2.imwrite(str(root / "0.png"), np.zeros((8, 10), np.uint8))
    (root / "1.png").write_bytes(b"garbage")
    src = ImageFolder(root, K=(10.0, 10.0, 4.5, 3.5), frames=[1])
    with pytest.raises(ValueError, match=r"none of its 1 frames could be read.*1\.png"):
        list(src)


@pytest.mark.data
def test_clip_dataset_serves_the_next_readable_clip(broken_folder: Path) -> None:
    ds = ClipDataset(ImageFolder(broken_folder), clip_len=3)
    assert len(ds) == 4  # starts 0..3; every clip but the last holds frame 2
    clips = [ds[i] for i in range(len(ds))]
    assert [c.indices.tolist() for c in clips] == [[3, 4, 5]] * 4
    assert clips[0].skipped == ((BAD, clips[0].skipped[0][1]),) and f"{BAD:06d}.png" in clips[0].skipped[0][1]
    assert [len(c.skipped) for c in clips] == [1, 0, 0, 0]  # the bad frame is read (and reported) once
    assert ds.skipped == [clips[0].skipped[0]]
    assert clips[0].source == "image_folder:frames"  # the training batch names it with the frame


@pytest.mark.data
def test_run_finishes_and_reports_the_skipped_frame(broken_folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", "-q", str(broken_folder), "--out", str(out), "--cloud-every", "0", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "skipped 1 unreadable frame: 2 (" in printed
    assert sorted(p.stem for p in (out / "depth").glob("*.png")) == ["000000", "000001", "000003", "000004",
                                                                      "000005"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_frames"] == 5
    assert [s["index"] for s in metrics["skipped_frames"]] == [BAD]
    assert f"{BAD:06d}.png" in metrics["skipped_frames"][0]["reason"]
    assert np.loadtxt(out / "trajectory_tum.txt").shape == (5, 8)


@pytest.mark.data
def test_vo_finishes_and_reports_the_skipped_frame(kitti_odometry_dir: Path, tmp_path: Path, capsys) -> None:
    seq = _kitti_sequence(kitti_odometry_dir, tmp_path / "kitti")
    (seq / "image_0" / f"{BAD:06d}.png").write_bytes(b"garbage")
    traj, report = tmp_path / "traj.txt", tmp_path / "vo.json"
    assert main(["vo", str(seq), "--out", str(traj), "--json", str(report), "--dis-preset", "ultrafast",
                 "--num-samples", "2000"]) == 0
    assert "skipped 1 unreadable frame: 2 (" in capsys.readouterr().out
    assert np.loadtxt(traj).shape == (5, 12)
    metrics = json.loads(report.read_text())
    assert metrics["num_frames"] == 5
    assert [s["index"] for s in metrics["skipped_frames"]] == [BAD]
