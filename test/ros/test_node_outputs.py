"""depth_pose_node's outputs on a real DDS graph: loop-safe pairing, registered depth, the frames tree, the
bounded path, and the metric-scale warm-up.

* A bag (rosbag2 mcap, written here with rosbags) of 51 frames at 10 Hz with camera_info is played by a
  ``bag_player`` child with ``loop``: the stamps jump back 5 s at each restart. The node runs with
  ``intrinsics.*`` parameters that differ from the camera_info, so a frame paired with the parameters
  instead of its camera_info shows in ``depth/camera_info``. Checked: every frame after the jump gets
  output (nothing skipped, never the parameters' K -- before the fix the camera_info cache threw each new
  entry away and the next seconds of frames had none), the first frame too; depth at the camera size
  with the camera_info's K; the cloud sampled every ``cloud.stride`` camera pixels; TF ``odom ->
  base_link -> camera_link -> optical`` composing to the configured camera pose; the path from its timer,
  restarted at the jump.
* ``scale.warmup: hold`` with a metric source that has not converged: nothing but diagnostics, which say
  why and count the held frames.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from rclpy.node import Node
from ros_harness import NodeOutputs, node_follows, spin_until, start_child
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CameraInfo, Image

from depth_pose_ros.nets.checkpoint import save_model
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.ros.convert import (
    camera_info_to_K,
    cloud_msg_to_numpy,
    image_msg_to_numpy,
    make_camera_info,
    numpy_to_image_msg,
    stamp_to_ns,
    transform_msg_to_matrix,
)
from depth_pose_ros.ros.node_params import parse_settings
from depth_pose_ros.ros.odometry_math import OPTICAL_IN_BODY_RPY, rpy_to_matrix
from depth_pose_ros.ros.qos import reliable_qos
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = pytest.mark.ros

H, W = 96, 320
K = np.array([[300.0, 0.0, 160.0], [0.0, 300.0, 48.0], [0.0, 0.0, 1.0]])
N_FRAMES = 51
STAMP0_NS = 500 * 10**9
PERIOD_NS = 100_000_000  # 10 Hz: the bag spans 5 s, a loop jumps back 5 s
SCENE = (np.random.default_rng(0).random((H, W + 2 * N_FRAMES, 3)) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "seeded.safetensors"
    save_model(path, build_model(NetConfig.from_dict({"encoder": {"width": 0.25}})))
    return path


def _frame(i: int) -> np.ndarray:
    """Frame i of a camera panning right over a random texture (2 px per frame)."""
    return np.ascontiguousarray(SCENE[:, 2 * i: 2 * i + W])


def _node(env: dict, tmp_path: Path, checkpoint: Path, *params: str):
    args = ["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
            str(REPO_ROOT / "config" / "default.yaml"), "-p", f"checkpoint:={checkpoint}",
            "-p", "input.height:=64", "-p", "input.width:=192", "-p", "num_threads:=1", "-p", "flow_source:=dis",
            "-p", "diagnostics.period_s:=0.25"]
    for p in params:
        args += ["-p", p]
    return start_child(args, env, tmp_path / "node.log")


def _write_bag(path: Path) -> None:
    store = get_typestore(Stores.ROS2_JAZZY)
    T = store.types
    with Writer2(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        image_conn = writer.add_connection("/image", "sensor_msgs/msg/Image", typestore=store)
        info_conn = writer.add_connection("/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        for i in range(N_FRAMES):
            stamp_ns = STAMP0_NS + i * PERIOD_NS
            header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](
                sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id="cam_optical")
            image = T["sensor_msgs/msg/Image"](header=header, height=H, width=W, encoding="rgb8", is_bigendian=0,
                                               step=3 * W, data=_frame(i).reshape(-1))
            info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=H, width=W, distortion_model="plumb_bob", d=np.zeros(5),
                k=K.reshape(-1), r=np.eye(3).reshape(-1), p=np.hstack([K, np.zeros((3, 1))]).reshape(-1),
                binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0,
                                                          do_rectify=False))
            t = 1_700_000_000 * 10**9 + i * PERIOD_NS
            writer.write(image_conn, t, store.serialize_cdr(image, "sensor_msgs/msg/Image"))
            writer.write(info_conn, t + 1, store.serialize_cdr(info, "sensor_msgs/msg/CameraInfo"))


def _jumps(stamps: list[int]) -> list[int]:
    """Indices i where stamps[i] < stamps[i - 1]."""
    return [i for i in range(1, len(stamps)) if stamps[i] < stamps[i - 1]]


def test_bag_loop_pairs_every_frame_after_the_jump_camera_size_depth_and_frames(
        ros_env, executor, tmp_path, checkpoint):
    bag = tmp_path / "loop_bag"
    _write_bag(bag)
    out = NodeOutputs(executor, depth=200, colored=False)
    # intrinsics.* differ from the camera_info: the outputs show which one each frame used
    node = _node(ros_env, tmp_path, checkpoint, "intrinsics.fx:=200.0", "intrinsics.fy:=200.0",
                 "intrinsics.cx:=150.0", "intrinsics.cy:=40.0", "cloud.max_range_m:=1000.0", "path.period_s:=0.5")
    player = None
    try:
        ready = spin_until(executor, lambda: all(s.get_publisher_count() > 0 for t, s in out.subs.items()
                                                 if t not in ("/diagnostics", "/tf_static")), 90.0, children=[node])
        assert ready, f"node outputs never appeared; node output:\n{node.output()}"
        player = start_child(["-m", "depth_pose_ros.ros.bag_player", "--ros-args", "-p", f"bag:={bag}",
                              "-p", "rate:=0.75", "-p", "loop:=true", "-p", "publish_clock:=false",
                              "-p", "wait_for_subscribers:=true", "-p", "wait_timeout:=30.0"],
                             ros_env, tmp_path / "player.log")
        # two jumps back: the whole second pass has been played
        done = spin_until(executor, lambda: len(_jumps(out.stamps("/odom"))) >= 2, 90.0, children=[node, player])
        assert done, f"odom stamps {out.stamps('/odom')}\nnode:\n{node.output()}\nplayer:\n{player.output()}"
        spin_until(executor, lambda: False, 1.0)  # the path timer and the diagnostics of the last frames
    finally:
        if player is not None:
            player.stop()
        rc = node.stop()
    log = node.output()
    assert rc == 0, log

    stamps = out.stamps("/odom")
    first_jump, second_jump = _jumps(stamps)[:2]
    second_pass = stamps[first_jump:second_jump]
    all_stamps = [STAMP0_NS + i * PERIOD_NS for i in range(N_FRAMES)]
    assert second_pass[0] == STAMP0_NS, "the first frame after the jump got no output"
    assert len(second_pass) >= 0.9 * N_FRAMES and set(second_pass) <= set(all_stamps), second_pass
    assert "no camera_info" not in log and "using the intrinsics" not in log, log
    assert log.count("jumped back by") >= 2, log
    values = out.diag()
    assert int(values["total_skipped"]) == 0, values
    assert int(values["total_resets"]) >= 2, values

    # depth at the camera size, with the camera_info's K (never the parameters'), in the image's frame
    assert out.stamps("/depth/camera_info") == stamps[:len(out.msgs["/depth/camera_info"])]
    for info in out.msgs["/depth/camera_info"]:
        np.testing.assert_array_equal(camera_info_to_K(info), K)
        assert (info.width, info.height, info.header.frame_id) == (W, H, "cam_optical")
        assert not any(info.d)
    for msg in out.msgs["/depth"][:5] + out.msgs["/depth"][-5:]:
        depth, encoding = image_msg_to_numpy(msg)
        assert encoding == "32FC1" and depth.shape == (H, W) and np.isfinite(depth).all() and (depth >= 0).all()
        # input_fit aspect (the default): the network sees the whole 320x96 camera image, so every camera
        # pixel has a depth (0 would be unknown, REP 118 in this project)
        assert (depth > 0).all()
    # the cloud samples the camera-size depth every 8 camera pixels (12 x 40; points beyond the range left out)
    xyz, rgb = cloud_msg_to_numpy(out.msgs["/points"][-1])
    assert 0.85 * (H // 8) * (W // 8) <= len(xyz) <= (H // 8) * (W // 8) and rgb is not None
    assert np.all(xyz[:, 2] > 0)

    # TF: odom -> base_link on /tf; base_link -> camera_link -> cam_optical on /tf_static
    dynamic = {(t.header.frame_id, t.child_frame_id) for m in out.msgs["/tf"] for t in m.transforms}
    assert dynamic == {("odom", "base_link")}
    static = {(t.header.frame_id, t.child_frame_id): transform_msg_to_matrix(t)
              for m in out.msgs["/tf_static"] for t in m.transforms}
    assert set(static) == {("base_link", "camera_link"), ("camera_link", "cam_optical")}
    np.testing.assert_allclose(static["camera_link", "cam_optical"][:3, :3], rpy_to_matrix(OPTICAL_IN_BODY_RPY),
                               atol=1e-9)  # REP 103: optical z = camera_link x
    np.testing.assert_allclose(static["base_link", "camera_link"], parse_settings({}).T_base_link, atol=1e-9)
    np.testing.assert_allclose(static["base_link", "camera_link"] @ static["camera_link", "cam_optical"],
                               parse_settings({}).T_base_cam, atol=1e-9)

    # the path comes from its timer (fewer messages than frames), bounded, and restarted at the jump
    paths = out.msgs["/path"]
    assert 0 < len(paths) < len(stamps)
    lengths = [len(p.poses) for p in paths]
    assert max(lengths) <= N_FRAMES and any(b < a for a, b in zip(lengths, lengths[1:])), lengths
    assert all(p.header.frame_id == "odom" and stamp_to_ns(p.header.stamp) in stamps for p in paths)


def test_scale_warmup_hold_publishes_only_diagnostics(ros_env, executor, tmp_path, checkpoint):
    out = NodeOutputs(executor, depth=200, colored=False)
    node = _node(ros_env, tmp_path, checkpoint, "scale.source:=camera_height", "scale.warmup:=hold")
    camera = Node("warmup_camera", context=executor.context)
    executor.add_node(camera)
    image_pub = camera.create_publisher(Image, "/image", reliable_qos())
    info_pub = camera.create_publisher(CameraInfo, "/camera_info", reliable_qos())
    try:
        ready = spin_until(executor, lambda: out.msgs["/diagnostics"] and node_follows(camera, image_pub)
                           and node_follows(camera, info_pub), 90.0, children=[node])
        assert ready, node.output()
        time.sleep(0.5)
        for i in range(8):  # a fronto-parallel texture: no road plane, the metric scale cannot converge
            stamp = 100.0 + 0.1 * i
            info_pub.publish(make_camera_info(K, W, H, stamp, "cam_optical"))
            image_pub.publish(numpy_to_image_msg(_frame(i), "rgb8", stamp, "cam_optical"))
            spin_until(executor, lambda: False, 0.3)
        held = spin_until(executor, lambda: int(out.diag().get("total_held", 0)) >= 4, 30.0, children=[node])
        assert held, f"{out.diag()}\n{node.output()}"
        spin_until(executor, lambda: False, 0.5)
    finally:
        rc = node.stop()
    assert rc == 0, node.output()
    values = out.diag()
    assert values["scale_status"] == "warming_up" and values["total_held"] == values["total_processed"], values
    assert int(values["total_skipped"]) == 0, values
    held_messages = [d.status[0].message for d in out.msgs["/diagnostics"] if "held back" in d.status[0].message]
    assert held_messages and "metric scale not converged yet" in held_messages[-1]
    for topic in ("/depth", "/depth/camera_info", "/points", "/odom", "/path", "/tf"):
        assert out.msgs[topic] == [], f"{topic} published while the scale was warming up"
