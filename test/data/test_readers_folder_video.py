"""Image folder (+ intrinsics YAML in both forms) and video file sources."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from depth_pose_ros.data.image_folder import ImageFolder, read_intrinsics_yaml
from depth_pose_ros.data.source import open_source
from depth_pose_ros.data.video import VideoSource


def _folder(root: Path, names: tuple[str, ...] = ("img1.png", "img10.png", "img2.jpg")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        tag = int("".join(ch for ch in name if ch.isdigit()))
        img = np.zeros((12, 16, 3), np.uint8)
        img[..., 0] = 10 * tag  # blue in BGR
        img[..., 2] = 250  # red
        cv2.imwrite(str(root / name), img)
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_plain_yaml_natural_order(tmp_path: Path) -> None:
    root = _folder(tmp_path / "seq")
    (root / "intrinsics.yaml").write_text("fx: 20.5\nfy: 21\ncx: 7.5\ncy: 5.5\nfps: 4\n")
    src = open_source(root)
    assert isinstance(src, ImageFolder)
    assert [p.name for p in src.files] == ["img1.png", "img2.jpg", "img10.png"]
    np.testing.assert_allclose(src.K, [[20.5, 0, 7.5], [0, 21, 5.5], [0, 0, 1]])
    assert src.fps == 4.0 and not src.K_guessed
    np.testing.assert_allclose(src.stamps(), [0.0, 0.25, 0.5])
    f = src[2]
    assert f.image.shape == (12, 16, 3) and f.index == 2 and f.stamp == 0.5
    assert tuple(f.image[3, 3]) == (250, 0, 100)  # RGB order
    assert abs(int(src[1].image[3, 3, 2]) - 20) <= 2  # jpeg: blue about 20
    gray = ImageFolder(root, gray=True, frames=slice(1, None))
    assert len(gray) == 2 and gray[0].image.shape == (12, 16)


def test_folder_ros_camera_info_yaml(tmp_path: Path) -> None:
    root = _folder(tmp_path / "seq")
    (root / "camera_info.yaml").write_text(
        "image_width: 16\nimage_height: 12\ncamera_name: cam\n"
        "camera_matrix:\n  rows: 3\n  cols: 3\n  data: [30.0, 0.0, 8.0, 0.0, 31.0, 6.0, 0.0, 0.0, 1.0]\n"
        "distortion_model: plumb_bob\n"
        "distortion_coefficients: {rows: 1, cols: 5, data: [0, 0, 0, 0, 0]}\n")
    src = ImageFolder(root)
    np.testing.assert_allclose(src.K, [[30, 0, 8], [0, 31, 6], [0, 0, 1]])
    assert src.fps is None
    np.testing.assert_allclose(src.stamps(), [0, 1, 2])
    info = read_intrinsics_yaml(root / "camera_info.yaml")
    assert (info.width, info.height) == (16, 12)


def test_folder_size_mismatch_guess_and_override(tmp_path: Path) -> None:
    root = _folder(tmp_path / "seq")
    (root / "intrinsics.yaml").write_text(
        "image_width: 640\nimage_height: 480\ncamera_matrix: {rows: 3, cols: 3, data: [1, 0, 1, 0, 1, 1, 0, 0, 1]}\n")
    with pytest.raises(ValueError, match=r"intrinsics.yaml.*640x480.*16x12"):
        ImageFolder(root)
    src = ImageFolder(root, K=[[9, 0, 1], [0, 9, 2], [0, 0, 1]])  # override skips the YAML
    assert src.K[0, 0] == 9
    (root / "intrinsics.yaml").unlink()
    with pytest.warns(UserWarning, match="guessing fx = fy = 19.2"):
        guessed = ImageFolder(root)
    np.testing.assert_allclose(guessed.K, [[19.2, 0, 7.5], [0, 19.2, 5.5], [0, 0, 1]])  # 1.2 * 16
    assert guessed.K_guessed


def test_folder_errors_name_the_file(tmp_path: Path) -> None:
    root = _folder(tmp_path / "seq")
    (root / "intrinsics.yaml").write_text("fx: [1\n")
    with pytest.raises(ValueError, match="intrinsics.yaml"):
        ImageFolder(root)
    (root / "intrinsics.yaml").write_text("fx: 1\nfy: 1\n")
    with pytest.raises(ValueError, match="intrinsics.yaml"):
        ImageFolder(root)
    (root / "intrinsics.yaml").write_text("fx: 1\nfy: 1\ncx: 0\ncy: 0\n")
    (root / "img10.png").write_bytes(b"broken")
    src = ImageFolder(root)
    with pytest.raises(ValueError, match="img10.png"):
        src[2]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        ImageFolder(empty)


def _video(path: Path, fourcc: str, n: int = 30, fps: float = 15.0) -> Path:
    """Frame i shows i in binary as five 12-px black/white blocks on top (robust to lossy codecs)
    and a red-dominant colour below (to check the channel order)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (64, 48))
    assert writer.isOpened(), f"this OpenCV build cannot write {fourcc}"
    for i in range(n):
        img = np.zeros((48, 64, 3), np.uint8)
        for bit in range(5):
            if i >> bit & 1:
                img[:24, 12 * bit: 12 * bit + 12] = 255
        img[24:] = (30, 60, 200)  # BGR
        writer.write(img)
    writer.release()
    return path


def _frame_number(image: np.ndarray) -> int:
    gray = image.mean(axis=2) if image.ndim == 3 else image
    return sum(1 << bit for bit in range(5) if gray[4:20, 12 * bit + 3: 12 * bit + 9].mean() > 128)


@pytest.mark.parametrize(("suffix", "fourcc"), [(".avi", "MJPG"), (".mp4", "mp4v")])
def test_video_random_access(tmp_path: Path, suffix: str, fourcc: str) -> None:
    path = _video(tmp_path / f"clip{suffix}", fourcc)
    with pytest.warns(UserWarning, match="no camera intrinsics"):
        src = open_source(path)
    assert isinstance(src, VideoSource)
    assert len(src) == 30 and src.fps == pytest.approx(15.0)
    np.testing.assert_allclose(src.K, [[76.8, 0, 31.5], [0, 76.8, 23.5], [0, 0, 1]])
    for i in [25, 2, 3, 17, 29, 0, 28, 12, 13, 14]:  # backward jumps, short and long forward jumps
        f = src[i]
        assert f.index == i and f.stamp == pytest.approx(i / 15.0)
        assert f.image.shape == (48, 64, 3)
        assert _frame_number(f.image) == i
        r, g, b = f.image[30:, 8:56].reshape(-1, 3).mean(axis=0)
        assert r > 170 and g < 90 and b < 60  # RGB order
    assert [_frame_number(f.image) for f in src] == list(range(30))
    clone = pickle.loads(pickle.dumps(src))  # DataLoader workers
    assert _frame_number(clone[5].image) == 5


def test_video_options_and_errors(tmp_path: Path) -> None:
    path = _video(tmp_path / "clip.avi", "MJPG", n=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # K given: no guess warning
        src = VideoSource(path, K=(50, 50, 32, 24), fps=30, frames=slice(2, 5), gray=True)
    assert len(src) == 3 and src.fps == 30.0
    f = src[0]
    assert f.index == 2 and f.stamp == pytest.approx(2 / 30) and f.image.shape == (48, 64)
    bad = tmp_path / "junk.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(ValueError, match="junk.mp4"):
        VideoSource(bad, K=(1, 1, 0, 0))
    with pytest.raises(FileNotFoundError, match="nothing.mp4"):
        VideoSource(tmp_path / "nothing.mp4")
