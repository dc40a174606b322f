"""depth_pose_node on a real DDS graph: KITTI 06 frames 0-50 -> bag_recorder -> bag -> bag_player -> node.

Four processes on a private domain: this process publishes the frames (+ camera_info) at 20 Hz, the
``bag_recorder`` child records them; then a ``bag_player`` child plays the bag (slowed down, with
``/clock``) into a ``depth_pose_node`` child running with ``use_sim_time``, and this process
subscribes to every output. Checks: every processed frame yields depth, depth/camera_info, cloud,
odometry and TF with the image's stamp and the right frame ids; the odometry (and the depth) equal an
offline :class:`Estimator` run on the same frames with the same checkpoint and the same parameters
files; the car moves forward along base_link x; diagnostics run on bag time.
"""
from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from rclpy.duration import Duration
from rclpy.node import Node
from ros_harness import NodeOutputs, spin_until, start_child
from sensor_msgs.msg import CameraInfo, Image

from depth_pose_ros.data.rosbag_io import BagReader
from depth_pose_ros.geometry.registration import register_depth
from depth_pose_ros.nets.checkpoint import save_model
from depth_pose_ros.nets.config import NetConfig
from depth_pose_ros.nets.model import build_model
from depth_pose_ros.pipeline.result import triangulated_points
from depth_pose_ros.ros.convert import (
    camera_info_to_K,
    cloud_msg_to_numpy,
    image_msg_to_numpy,
    make_camera_info,
    numpy_to_image_msg,
    pose_msg_to_matrix,
    stamp_to_ns,
    transform_msg_to_matrix,
)
from depth_pose_ros.ros.node_params import make_estimator, params_from_yaml, settings_from_params_file
from depth_pose_ros.ros.odometry_math import base_pose
from depth_pose_ros.ros.qos import reliable_qos
from depth_pose_ros.utils.paths import REPO_ROOT

pytestmark = [pytest.mark.ros, pytest.mark.data, pytest.mark.slow]

N_FRAMES = 51
STAMP0_NS = 1000 * 10**9
PERIOD_NS = 100_000_000  # KITTI odometry: 10 Hz
DEFAULT_PARAMS = REPO_ROOT / "config" / "default.yaml"
#: Test overrides on top of config/default.yaml (a second --params-file): a small, fast configuration.
OVERRIDES = {
    "use_sim_time": True,
    "input": {"height": 96, "width": 320},
    "flow_source": "dis",  # real motion from classical flow (the seeded network is untrained)
    "num_threads": 1,  # same torch threads in the node and offline: bitwise equal network outputs
    "topics": {"image": "/kitti/image", "camera_info": "/kitti/camera_info"},
    "cloud": {"stride": 8},  # camera pixels (output.size: camera): ~7k points of the 1226x370 image
    "diagnostics": {"period_s": 0.5},
    "path": {"period_s": 0.0},  # with every frame (the timer runs on bag time, which stops with the bag)
}
PLAY_RATE = 0.25  # the bag is recorded at 20 Hz: 5 frames per second reach the node


def _kitti(kitti_odometry_dir: Path) -> tuple[list[np.ndarray], np.ndarray]:
    seq = kitti_odometry_dir / "sequences" / "06"
    frames = [cv2.imread(str(seq / "image_0" / f"{i:06d}.png"), cv2.IMREAD_GRAYSCALE) for i in range(N_FRAMES)]
    assert all(f is not None for f in frames)
    p0 = next(line for line in (seq / "calib.txt").read_text().splitlines() if line.startswith("P0:"))
    return frames, np.array(p0.split()[1:], dtype=np.float64).reshape(3, 4)[:, :3]


def _record_bag(executor, env: dict, tmp_path: Path, frames: list[np.ndarray], K: np.ndarray) -> Path:
    """Publish the frames at 20 Hz; the bag_recorder child writes them (reliable, nothing lost)."""
    recorder = start_child(
        ["-m", "depth_pose_ros.ros.bag_recorder", "--ros-args", "-p", f"output_dir:={tmp_path / 'bags'}",
         "-p", "bag_name:=kitti06", "-p", "qos:=reliable", "-p", "qos_depth:=100",
         "-p", "topics:=['/kitti/image:sensor_msgs/msg/Image', '/kitti/camera_info:sensor_msgs/msg/CameraInfo']"],
        env, tmp_path / "recorder.log")
    node = Node("kitti_camera", context=executor.context)
    executor.add_node(node)
    image_pub = node.create_publisher(Image, "/kitti/image", reliable_qos(N_FRAMES))
    info_pub = node.create_publisher(CameraInfo, "/kitti/camera_info", reliable_qos(N_FRAMES))
    try:
        assert spin_until(executor, lambda: image_pub.get_subscription_count() > 0
                          and info_pub.get_subscription_count() > 0, 60.0, children=[recorder]), recorder.output()
        time.sleep(0.3)
        h, w = frames[0].shape
        for i, frame in enumerate(frames):
            stamp_ns = STAMP0_NS + i * PERIOD_NS
            image_pub.publish(numpy_to_image_msg(frame, "mono8", stamp_ns * 1e-9, "camera_0"))
            info_pub.publish(make_camera_info(K, w, h, stamp_ns * 1e-9, "camera_0"))
            time.sleep(0.05)
        for pub in (image_pub, info_pub):
            assert pub.wait_for_all_acked(Duration(seconds=10)), recorder.output()
    finally:
        assert recorder.stop() == 0, recorder.output()
        executor.remove_node(node)
        node.destroy_node()
    return tmp_path / "bags" / "kitti06"


def test_kitti_bag_through_node_matches_offline_estimator(ros_env, executor, tmp_path, kitti_odometry_dir):
    frames, K = _kitti(kitti_odometry_dir)
    bag = _record_bag(executor, ros_env, tmp_path, frames, K)
    with BagReader(bag) as reader:
        assert reader.message_count == 2 * N_FRAMES
        bag_start_ns, bag_end_ns = reader.start_ns, reader.end_ns

    torch.manual_seed(0)
    checkpoint = tmp_path / "seeded.safetensors"
    save_model(checkpoint, build_model(NetConfig.from_dict({"encoder": {"width": 0.25}})))
    overrides_file = tmp_path / "test_params.yaml"
    overrides = {**OVERRIDES, "checkpoint": str(checkpoint)}
    overrides_file.write_text(yaml.safe_dump({"depth_pose_node": {"ros__parameters": overrides}}))

    out = NodeOutputs(executor, depth=100, colored=True)
    node = start_child(["-m", "depth_pose_ros.ros.depth_pose_node", "--ros-args", "--params-file",
                        str(DEFAULT_PARAMS), "--params-file", str(overrides_file)], ros_env, tmp_path / "node.log")
    player = None
    try:
        ready = spin_until(executor, lambda: all(s.get_publisher_count() > 0 for t, s in out.subs.items()
                                                 if t != "/diagnostics"), 90.0, children=[node])
        assert ready, f"node outputs never appeared; node output:\n{node.output()}"
        player = start_child(["-m", "depth_pose_ros.ros.bag_player", "--ros-args", "-p", f"bag:={bag}",
                              "-p", f"rate:={PLAY_RATE}", "-p", "wait_for_subscribers:=true",
                              "-p", "wait_timeout:=30.0"], ros_env, tmp_path / "player.log")
        finished = spin_until(executor, lambda: not player.running(), 90.0, children=[node, player])
        assert finished, f"player did not finish; player:\n{player.output()}\nnode:\n{node.output()}"
        # Let the last frame's outputs arrive: wait until nothing new comes for 2 s and every per-frame
        # topic has as many messages as the others. A reliable sample lost on the way (a full shared-memory
        # port on a busy machine) is only resent after the writer's next heartbeat (Fast DDS: 3 s), so
        # unequal counts wait longer, up to 12 s of quiet.
        per_frame = ("/odom", "/depth", "/depth/camera_info", "/depth/colored", "/points", "/points/triangulated",
                     "/path")
        last_total, quiet_since = -1, time.monotonic()
        while True:
            spin_until(executor, lambda: False, 0.2)
            if out.total() != last_total:
                last_total, quiet_since = out.total(), time.monotonic()
            quiet = time.monotonic() - quiet_since
            balanced = len({len(out.msgs[t]) for t in per_frame}) == 1
            if (quiet >= 2.0 and balanced) or quiet >= 12.0:
                break
    finally:
        if player is not None:
            player.stop()
        rc = node.stop()
    log = node.output()
    assert rc == 0, log
    assert "UNTRAINED" not in log and str(checkpoint) in log

    # --- every processed frame: all outputs, same stamps, right frames
    input_stamps = [STAMP0_NS + i * PERIOD_NS for i in range(N_FRAMES)]
    processed = out.stamps("/odom")
    assert processed == sorted(processed) and set(processed) <= set(input_stamps)
    assert len(processed) >= 0.8 * N_FRAMES, f"only {len(processed)} of {N_FRAMES} frames processed:\n{log}"
    for topic in ("/depth", "/depth/camera_info", "/depth/colored", "/points", "/points/triangulated", "/path"):
        assert out.stamps(topic) == processed, topic
    tf_stamps = [stamp_to_ns(t.header.stamp) for m in out.msgs["/tf"] for t in m.transforms]
    assert tf_stamps == processed
    assert {(t.header.frame_id, t.child_frame_id) for m in out.msgs["/tf"] for t in m.transforms} == \
        {("odom", "base_link")}
    for topic in ("/depth", "/depth/camera_info", "/depth/colored", "/points", "/points/triangulated"):
        assert {m.header.frame_id for m in out.msgs[topic]} == {"camera_0"}, topic
    assert {(m.header.frame_id, m.child_frame_id) for m in out.msgs["/odom"]} == {("odom", "base_link")}
    static = {(t.header.frame_id, t.child_frame_id): transform_msg_to_matrix(t)
              for m in out.msgs["/tf_static"] for t in m.transforms}
    assert set(static) == {("base_link", "camera_link"), ("camera_link", "camera_0")}
    settings = settings_from_params_file(DEFAULT_PARAMS, params_from_yaml(overrides_file))
    np.testing.assert_allclose(static["base_link", "camera_link"] @ static["camera_link", "camera_0"],
                               settings.T_base_cam, atol=1e-9)

    # --- the offline estimator on the processed frames (same checkpoint, same parameter files)
    threads = torch.get_num_threads()
    try:
        estimator, _ = make_estimator(settings)
        offline = {}
        for stamp in processed:
            i = input_stamps.index(stamp)
            offline[stamp] = estimator.step(frames[i], K, stamp * 1e-9)
    finally:
        torch.set_num_threads(threads)
    for msg, tf_msg, depth_msg, info_msg in zip(out.msgs["/odom"], out.msgs["/tf"], out.msgs["/depth"],
                                                out.msgs["/depth/camera_info"]):
        stamp = stamp_to_ns(msg.header.stamp)
        expected = base_pose(offline[stamp].T_world_cam, settings.T_base_cam)
        np.testing.assert_allclose(pose_msg_to_matrix(msg.pose.pose), expected, atol=1e-4, err_msg=str(stamp))
        np.testing.assert_allclose(transform_msg_to_matrix(tf_msg.transforms[0]), expected, atol=1e-4)
        depth, encoding = image_msg_to_numpy(depth_msg)
        h, w = frames[0].shape
        assert encoding == "32FC1" and depth.shape == (h, w) and np.isfinite(depth).all()
        # registered to the camera image (output.size: camera): the offline network depth through the same map
        registered = register_depth(offline[stamp].depth, offline[stamp].K, K, (h, w))
        np.testing.assert_allclose(depth, registered, rtol=1e-5)
        np.testing.assert_allclose(camera_info_to_K(info_msg), K, rtol=1e-12)
        assert (info_msg.width, info_msg.height) == (w, h)
        cov = np.reshape(msg.pose.covariance, (6, 6))
        assert np.isfinite(cov).all() and np.all(np.diag(cov) >= 0)
    # --- the triangulated points: what the offline geometry measured, in the current camera, every frame
    with_points, ratios = 0, []
    for msg in out.msgs["/points/triangulated"]:
        stamp = stamp_to_ns(msg.header.stamp)
        xyz_tri, rgb_tri = cloud_msg_to_numpy(msg)
        expected_tri = triangulated_points(offline[stamp], settings.cloud_max_range_m)
        np.testing.assert_allclose(xyz_tri, expected_tri, rtol=1e-5, atol=1e-5, err_msg=str(stamp))
        if len(xyz_tri):
            with_points += 1
            assert rgb_tri is not None and len(rgb_tri) == len(xyz_tri)
            depth_at = offline[stamp].depth  # network size; project with its K
            uv = (xyz_tri / xyz_tri[:, 2:3]) @ offline[stamp].K.T
            u = np.clip(uv[:, 0].round().astype(int), 0, depth_at.shape[1] - 1)
            v = np.clip(uv[:, 1].round().astype(int), 0, depth_at.shape[0] - 1)
            ratios.append(np.median(depth_at[v, u] / xyz_tri[:, 2]))
    assert with_points >= 0.5 * len(processed), with_points
    # in the published units: the depth is scale-aligned to these very points, so they agree in the median
    assert 0.5 < np.median(ratios) < 2.0, ratios
    statuses = [offline[s].status for s in processed]
    assert statuses[0] == "first" and statuses.count("ok") >= 0.8 * len(processed), statuses

    # --- a forward-driving car: base_link moves along +x (the camera's optical z), little sideways
    final = pose_msg_to_matrix(out.msgs["/odom"][-1].pose.pose)
    x, y, z = final[:3, 3]
    assert x > 0 and abs(y) < 0.3 * x and abs(z) < 0.3 * x, final[:3, 3]
    assert len(out.msgs["/path"][-1].poses) == len(processed)
    np.testing.assert_allclose(pose_msg_to_matrix(out.msgs["/path"][-1].poses[-1].pose), final, atol=1e-12)
    xyz, rgb = cloud_msg_to_numpy(out.msgs["/points"][-1])
    assert 0 < len(xyz) <= 47 * 154 and np.isfinite(xyz).all() and rgb is not None  # camera pixels, stride 8
    assert np.all(xyz[:, 2] > 0) and np.all(np.linalg.norm(xyz, axis=1) <= 40.0 + 1e-3)

    # --- diagnostics on bag time (use_sim_time + the player's /clock)
    diags = out.msgs["/diagnostics"]
    assert diags, "no diagnostics received"
    for d in diags:
        assert bag_start_ns <= stamp_to_ns(d.header.stamp) <= bag_end_ns + 10**9
    values = {kv.key: kv.value for kv in diags[-1].status[0].values}
    assert int(values["total_processed"]) <= len(processed) and int(values["total_skipped"]) == 0, values
    total_dropped = max(int({kv.key: kv.value for kv in d.status[0].values}["total_dropped"]) for d in diags)
    assert total_dropped <= N_FRAMES - len(processed)
    print(f"processed {len(processed)}/{N_FRAMES} frames, dropped {total_dropped}; last diagnostics: {values}")

    # --- the same recorder-made bag offline: `depth-pose run` reads it (CameraInfo paired by stamp)
    from depth_pose_ros.cli import main as cli_main

    run_out = tmp_path / "run"
    assert cli_main(["run", "-q", str(bag), "--checkpoint", str(checkpoint), "--out", str(run_out),
                     "--set", "height=96", "--set", "width=320", "--set", "flow_source=dis",
                     "--cloud-every", "25"]) == 0
    assert len(list((run_out / "depth").glob("*.png"))) == N_FRAMES
    trajectory = np.loadtxt(run_out / "trajectory_tum.txt")
    assert trajectory.shape == (N_FRAMES, 8) and np.isfinite(trajectory).all()
    np.testing.assert_allclose(trajectory[:, 0], np.array(input_stamps) * 1e-9, atol=1e-6)
    assert trajectory[-1, 3] > 0  # the camera drove forward (optical z; scale from the untrained depth)
