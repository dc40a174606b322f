"""open_source detection and options, frame selection, intrinsics helpers, the synthetic spec."""
from __future__ import annotations

import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.image_folder import ImageFolder
from depth_pose_ros.data.source import (
    SequenceSource,
    as_K,
    guess_intrinsics,
    open_source,
    parse_frames,
    parse_synthetic_spec,
    resolve_selection,
)


def test_resolve_selection() -> None:
    assert resolve_selection(None, 4).tolist() == [0, 1, 2, 3]
    assert resolve_selection(slice(1, 100), 4).tolist() == [1, 2, 3]  # slices clip like Python
    assert resolve_selection(slice(None, None, -2), 5).tolist() == [4, 2, 0]
    assert resolve_selection(range(0, 4, 3), 4).tolist() == [0, 3]
    assert resolve_selection([2, -1], 4).tolist() == [2, 3]
    assert resolve_selection("1:3", 4).tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"\[4\] out of range"):
        resolve_selection([0, 4], 4, "my source")
    assert parse_frames("::2") == slice(None, None, 2)
    with pytest.raises(ValueError, match="START:STOP"):
        parse_frames("5")
    with pytest.raises(ValueError, match="integers"):
        parse_frames("a:b")


def test_intrinsics_helpers(tmp_path: Path) -> None:
    np.testing.assert_allclose(as_K((1, 2, 3, 4)), [[1, 0, 3], [0, 2, 4], [0, 0, 1]])
    np.testing.assert_allclose(as_K(np.diag([2.0, 3.0, 1.0])), np.diag([2.0, 3.0, 1.0]))
    with pytest.raises(ValueError, match="pinhole"):
        as_K([[1, 0, 0], [0, 1, 0], [0, 1, 1]])
    with pytest.raises(ValueError, match="shape"):
        as_K([1, 2, 3])
    yml = tmp_path / "k.yaml"
    yml.write_text("fx: 5\nfy: 6\ncx: 1\ncy: 2\n")
    np.testing.assert_allclose(as_K(str(yml)), [[5, 0, 1], [0, 6, 2], [0, 0, 1]])
    np.testing.assert_allclose(guess_intrinsics(640, 480), [[768, 0, 319.5], [0, 768, 239.5], [0, 0, 1]])


def _images(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = np.zeros((6, 8, 3), np.uint8)
        img[..., 2] = 40 * i  # red in BGR
        cv2.imwrite(str(root / f"{i:04d}.png"), img)
    (root / "intrinsics.yaml").write_text("fx: 10\nfy: 10\ncx: 3.5\ncy: 2.5\n")
    return root


def test_open_source_options(tmp_path: Path) -> None:
    root = _images(tmp_path / "imgs", n=5)
    src = open_source(root, frames="1:4", gray=True, image_topic=None)  # None = not given
    assert isinstance(src, ImageFolder) and len(src) == 3
    f = src[0]
    assert f.index == 1 and f.image.shape == (6, 8) and f.source == "image_folder:imgs"
    assert src[-1].index == 3
    with pytest.warns(UserWarning, match=r"\['camera'\] do not apply"):
        open_source(root, camera="left")
    with pytest.raises(TypeError, match="unknown option"):
        open_source(root, colour=True)
    with pytest.raises(TypeError, match="must be an int"):
        src[0:2]


def test_open_source_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        open_source(tmp_path / "nothing_here")
    txt = tmp_path / "notes.txt"
    txt.write_text("x")
    with pytest.raises(ValueError, match="notes.txt"):
        open_source(txt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        open_source(empty)


def test_sequence_source_wraps_frames_without_mutating() -> None:
    frames = [Frame(image=np.full((2, 3, 3), 10 * i, np.uint8), K=np.eye(3), stamp=0.5 * i, index=i)
              for i in range(4)]
    src = SequenceSource(frames, name="mem", gray=True, frames=slice(1, None))
    assert len(src) == 3
    np.testing.assert_allclose(src.stamps(), [0.5, 1.0, 1.5])
    f = src[0]
    assert f.image.shape == (2, 3) and f.image[0, 0] == 10 and f.source == "mem"
    assert frames[1].image.shape == (2, 3, 3) and frames[1].source == ""  # caller's frames untouched
    assert [g.index for g in src] == [1, 2, 3]


def test_parse_synthetic_spec() -> None:
    assert parse_synthetic_spec("synthetic") == {}
    assert parse_synthetic_spec("synthetic:seed=3,length=20, height=96,width=320,fps=5,gray=1") == {
        "seed": 3, "length": 20, "height": 96, "width": 320, "fps": 5.0, "gray": True}
    with pytest.raises(ValueError, match="unknown key 'colour'"):
        parse_synthetic_spec("synthetic:colour=1")
    with pytest.raises(ValueError, match="key=value"):
        parse_synthetic_spec("synthetic:seed")
    with pytest.raises(ValueError, match="synthetic:seed=x"):
        parse_synthetic_spec("synthetic:seed=x")


def test_open_synthetic() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = open_source("synthetic:seed=1,length=4,height=48,width=64", frames=slice(1, 3))
    assert len(src) == 2 and src.has_gt_pose and src.has_gt_depth
    f = src[0]
    assert f.index == 1 and f.image.shape[:2] == (48, 64) and f.depth.shape == (48, 64)
    assert f.T_world_cam.shape == (4, 4) and f.K.shape == (3, 3)
    np.testing.assert_allclose(src.stamps(), [0.1, 0.2])
    gray = open_source("synthetic:seed=1,length=2,height=48,width=64", gray=True)
    assert gray[0].image.shape == (48, 64)


def test_data_prefix_resolves_under_the_real_data_root(kitti_odometry_dir, monkeypatch, tmp_path) -> None:
    """``data:kitti_odometry`` follows $DEPTH_POSE_DATA, so configs carry no machine-specific paths."""
    monkeypatch.setenv("DEPTH_POSE_DATA", str(kitti_odometry_dir.parent))
    src = open_source("data:kitti_odometry", sequence="06", frames="0:3")
    assert len(src) == 3
    monkeypatch.setenv("DEPTH_POSE_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        open_source("data:kitti_odometry", sequence="06")
