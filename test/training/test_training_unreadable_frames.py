"""A corrupt frame in a training or held-out source costs that frame's clips, not the training run.

Real KITTI frames in a temporary folder with one file overwritten by garbage: the training data set
still fills every batch, the skipped frame travels with the batch to the loop (DataLoader workers are
other processes), the loop reports it once, and the held-out set reads around it.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from torch.utils.data import DataLoader

from depth_pose_ros.data.kitti_odometry import read_kitti_calib
from training.augment import collate_samples
from training.config import SourceConfig, load_train_config
from training.dataset import ResumableSampler, build_dataset
from training.periodic_eval import load_heldout
from training.train import Trainer

REPO = Path(__file__).resolve().parents[2]
BAD = 2


@pytest.fixture()
def broken_folder(kitti_odometry_dir: Path, tmp_path: Path) -> Path:
    seq = kitti_odometry_dir / "sequences" / "06"
    root = tmp_path / "frames"
    root.mkdir()
    for i in range(6):
        shutil.copy(seq / "image_0" / f"{i:06d}.png", root / f"{i:06d}.png")
    P0 = read_kitti_calib(seq / "calib.txt")["P0"]
    (root / "intrinsics.yaml").write_text(f"fx: {P0[0, 0]}\nfy: {P0[1, 1]}\ncx: {P0[0, 2]}\ncy: {P0[1, 2]}\nfps: 10\n")
    (root / f"{BAD:06d}.png").write_bytes(b"garbage" * 100)
    return root


@pytest.mark.data
def test_training_batches_fill_up_and_carry_the_skipped_frame(broken_folder: Path, capsys) -> None:
    cfg = load_train_config(REPO / "training/configs/cpu_smoke.yaml",
                            [f"data.train=[{{spec: '{broken_folder}'}}]", "data.height=64", "data.width=96",
                             "data.batch_size=2", "data.clip_len=3"])
    dataset = build_dataset(cfg, channels=1)
    assert len(dataset) == 4
    loader = DataLoader(dataset, batch_size=2, sampler=ResumableSampler(dataset, shuffle=False),
                        collate_fn=collate_samples, drop_last=True)
    batches = list(loader)
    assert [b.batch_size for b in batches] == [2, 2]  # the clips holding frame 2 were replaced, not dropped
    skipped = [entry for b in batches for entry in b.skipped]
    assert len(skipped) == 1
    source, index, reason = skipped[0]
    assert index == BAD and f"{BAD:06d}.png" in reason and source == "image_folder:frames"

    loop = SimpleNamespace(skipped_frames={}, dist=SimpleNamespace(rank=0))
    for batch in batches * 2:  # the same frame met again is not reported again
        Trainer._note_skipped(loop, batch, None)
    assert list(loop.skipped_frames) == [(source, BAD)]
    assert capsys.readouterr().out.count("skipped unreadable frame 2 of image_folder:frames") == 1


@pytest.mark.data
def test_heldout_reads_consecutive_frames_around_a_corrupt_one(broken_folder: Path) -> None:
    held = load_heldout(SourceConfig(spec=str(broken_folder)), 64, 96, 1, max_frames=5)
    assert held.images.shape[0] == 2  # frames 0 and 1: the run of consecutive frames ends at the bad one
    (broken_folder / "000001.png").write_bytes(b"garbage")
    held = load_heldout(SourceConfig(spec=str(broken_folder)), 64, 96, 1, max_frames=5)
    assert held.images.shape[0] == 3  # fewer than two before the bad frames: frames 3, 4, 5
