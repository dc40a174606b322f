"""Image folders read like the node reads a camera: camera_info.yaml gives K *and* distortion, times.txt or
nanosecond file names give the stamps; distorted frames enter training clips undistorted by the node's
Undistorter (same K)."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from depth_pose_ros.data.clips import ClipDataset, frames_to_clip
from depth_pose_ros.data.frame import Frame, undistort_frame
from depth_pose_ros.data.image_folder import ImageFolder, read_intrinsics_yaml
from depth_pose_ros.data.source import open_source
from depth_pose_ros.geometry.distortion import Distortion, Undistorter
from depth_pose_ros.utils.image import image_to_tensor
from depth_pose_ros.utils.paths import data_root

NS_NAMES = ("01764757961901789696.jpg", "01764757961967988224.jpg", "01764757962031977216.jpg")


@pytest.fixture(scope="module")
def handheld() -> Path:
    path = data_root() / "indoor_handheld"
    if not (path / "camera_info.yaml").is_file():
        pytest.skip(f"indoor_handheld not found under {data_root()} (set DEPTH_POSE_DATA)")
    return path


def _ns_folder(root: Path) -> Path:
    """Three images named by nanosecond stamps (the first three of indoor_handheld when present, else
    encoded here), a plain intrinsics.yaml (no distortion), no times.txt."""
    root.mkdir(parents=True)
    real = data_root() / "indoor_handheld"
    for i, name in enumerate(NS_NAMES):
        if (real / name).is_file():
            shutil.copyfile(real / name, root / name)
        else:
            img = np.random.default_rng(i).integers(0, 255, (24, 32, 3), dtype=np.uint8)
            cv2.imwrite(str(root / name), img)
    (root / "intrinsics.yaml").write_text("fx: 400\nfy: 400\ncx: 15.5\ncy: 11.5\n")
    return root


def test_indoor_handheld_has_the_yaml_distortion_and_the_times_txt_stamps(handheld: Path) -> None:
    info = yaml.safe_load((handheld / "camera_info.yaml").read_text())
    times = np.loadtxt(handheld / "times.txt", dtype=np.float64)
    src = open_source("data:indoor_handheld")
    assert isinstance(src, ImageFolder) and src.stamps_from == "times.txt"
    expected = Distortion("plumb_bob", tuple(float(v) for v in info["distortion_coefficients"]["data"]))
    assert src.distortion == expected
    np.testing.assert_array_equal(src.K.ravel(), info["camera_matrix"]["data"])
    assert len(src) == len(times)
    np.testing.assert_array_equal(src.stamps(), times)
    assert src.fps == pytest.approx(info["fps"])
    for i in (0, 500, len(src) - 1):
        f = src[i]
        assert f.distortion == expected and f.stamp == times[i] and f.image.shape[:2] == (540, 960)
    # the file names are the same stamps in nanoseconds (times.txt rounds them to float64 seconds)
    np.testing.assert_allclose(src.stamps(), [int(p.stem) * 1e-9 for p in src.files], atol=1e-6, rtol=0)


def test_nanosecond_file_names_give_the_stamps_without_times_txt(tmp_path: Path) -> None:
    root = _ns_folder(tmp_path / "ns")
    src = ImageFolder(root)
    assert src.stamps_from == "file names (ns)"
    expected = [1764757961 + 0.901789696, 1764757961 + 0.967988224, 1764757962 + 0.031977216]
    np.testing.assert_allclose(src.stamps(), expected, atol=1e-6, rtol=0)
    assert src[1].stamp == src.stamps()[1]
    assert src.fps == pytest.approx(1.0 / np.median(np.diff(expected)))
    assert src.distortion is None and src[0].distortion is None  # plain yaml: a pinhole camera


@pytest.mark.parametrize("names", [("000000.png", "000001.png", "000002.png"),  # frame numbers
                                   ("1000.png", "1033.png", "1066.png"),  # milliseconds
                                   ("5.png", "3.png", "9.png")])  # not increasing in name order
def test_names_that_are_not_nanosecond_stamps_keep_index_over_fps(tmp_path: Path, names: tuple[str, ...]) -> None:
    root = tmp_path / "f"
    root.mkdir()
    for name in names:
        cv2.imwrite(str(root / name), np.full((8, 8), 100, np.uint8))
    (root / "intrinsics.yaml").write_text("fx: 10\nfy: 10\ncx: 3.5\ncy: 3.5\nfps: 4\n")
    src = ImageFolder(root)
    assert src.stamps_from == "index / fps"
    np.testing.assert_allclose(src.stamps(), [0.0, 0.25, 0.5])


def test_times_txt_wins_and_a_wrong_count_is_an_error(tmp_path: Path) -> None:
    root = _ns_folder(tmp_path / "t")
    (root / "times.txt").write_text("# seconds\n0.0\n0.1\n\n0.2\n")
    src = ImageFolder(root)
    np.testing.assert_array_equal(src.stamps(), [0.0, 0.1, 0.2])
    assert src.fps == pytest.approx(10.0)
    (root / "times.txt").write_text("0.0\n0.1\n")
    with pytest.raises(ValueError, match=r"times\.txt: 2 stamps for 3 images"):
        ImageFolder(root)
    (root / "times.txt").write_text("0.0\nabc\n0.2\n")
    with pytest.raises(ValueError, match=r"times\.txt:2"):
        ImageFolder(root)


def test_camera_info_yaml_distortion_models(tmp_path: Path) -> None:
    path = tmp_path / "camera_info.yaml"
    head = "camera_matrix: {rows: 3, cols: 3, data: [30, 0, 8, 0, 31, 6, 0, 0, 1]}\n"
    path.write_text(head + "distortion_model: equidistant\n"
                    "distortion_coefficients: {rows: 1, cols: 4, data: [0.1, -0.02, 0.003, 0]}\n")
    assert read_intrinsics_yaml(path).distortion == Distortion("equidistant", (0.1, -0.02, 0.003, 0.0))
    path.write_text(head + "distortion_model: rational_polynomial\n"
                    "distortion_coefficients: {rows: 1, cols: 8, data: [0.1, 0, 0, 0, 0, 0.2, 0, 0]}\n")
    assert read_intrinsics_yaml(path).distortion.model == "rational_polynomial"
    path.write_text(head + "distortion_model: plumb_bob\ndistortion_coefficients: {data: [0, 0, 0, 0, 0]}\n")
    assert read_intrinsics_yaml(path).distortion is None  # all zero: rectified
    path.write_text(head + "distortion_model: mystery\ndistortion_coefficients: {data: [0.1, 0, 0, 0]}\n")
    with pytest.warns(UserWarning, match="mystery.*not supported"):
        assert read_intrinsics_yaml(path).distortion is None  # used as is, like the node
    path.write_text(head + "distortion_model: plumb_bob\ndistortion_coefficients: {data: [.nan, 0, 0, 0, 0]}\n")
    with pytest.raises(ValueError, match="camera_info.yaml.*finite"):
        read_intrinsics_yaml(path)


def test_a_yaml_path_as_K_brings_its_distortion(tmp_path: Path) -> None:
    root = _ns_folder(tmp_path / "k")
    (tmp_path / "cam.yaml").write_text("camera_matrix: {rows: 3, cols: 3, data: [30, 0, 8, 0, 31, 6, 0, 0, 1]}\n"
                                       "distortion_coefficients: {data: [0.1, 0, 0, 0, 0]}\n")
    src = ImageFolder(root, K=tmp_path / "cam.yaml")
    assert src.distortion == Distortion("plumb_bob", (0.1, 0.0, 0.0, 0.0, 0.0))
    assert ImageFolder(root, K=(30, 31, 8, 6)).distortion is None


def test_distorted_frames_enter_training_clips_as_the_node_undistorts_them(handheld: Path) -> None:
    from depth_pose_ros.pipeline import estimator

    assert estimator.Undistorter is Undistorter  # the node's Estimator undistorts with this very class
    src = open_source("data:indoor_handheld", frames=slice(0, 3))
    clip = ClipDataset(src, clip_len=3)[0]
    for t in range(3):
        f = src[t]
        node_view = Undistorter()(f.image, f.K, f.distortion)
        assert torch.equal(clip.images[t], image_to_tensor(node_view))
        assert not np.array_equal(node_view, f.image)  # the lens really is distorted
    torch.testing.assert_close(clip.K, torch.from_numpy(src[0].K).float(), rtol=0, atol=0)  # K unchanged
    raw = ClipDataset(src, clip_len=3, undistort=False)[0]
    assert torch.equal(raw.images[0], image_to_tensor(src[0].image))
    # periodic evaluation builds its clips through the same function
    assert torch.equal(frames_to_clip([src[0], src[1]]).images, clip.images[:2])


def test_undistort_frame_keeps_K_and_moves_depth_with_the_image() -> None:
    h, w = 60, 80
    K = np.array([[70.0, 0, 39.5], [0, 70.0, 29.5], [0, 0, 1]])
    dist = Distortion.create("plumb_bob", [-0.3, 0.1, 0, 0, 0])
    ys, xs = np.mgrid[0:h, 0:w]
    image = ((xs * 3 + ys * 5) % 256).astype(np.uint8)
    depth = (1.0 + xs + 100.0 * ys).astype(np.float32)  # encodes its own pixel
    frame = Frame(image=image, K=K, stamp=0.0, depth=depth, moving_mask=xs > 40, distortion=dist)
    out = undistort_frame(frame)
    assert out.distortion is None and out.K is frame.K and frame.distortion is dist  # the input is untouched
    np.testing.assert_array_equal(out.image, Undistorter()(image, K, dist))
    # every depth value came from the source pixel nearest to where the node's maps sample the image
    mx, my = cv2.initUndistortRectifyMap(K, dist.array, np.eye(3), K, (w, h), cv2.CV_32FC1)
    known = out.depth > 0
    src_x = (out.depth[known] - 1.0) % 100.0
    src_y = (out.depth[known] - 1.0 - src_x) / 100.0
    assert np.all(np.abs(src_x - mx[known]) <= 0.5 + 1 / 32) and np.all(np.abs(src_y - my[known]) <= 0.5 + 1 / 32)
    assert known.mean() > 0.8 and out.moving_mask.dtype == bool
    assert undistort_frame(Frame(image=image, K=K, stamp=0.0)).image is image  # pinhole: as is
