"""Pieces of depth_pose_node without DDS: stamp pairing, latest-frame slot, odometry maths (hand-computed
cases), depth registration to the camera image, parameter parsing and diagnostics levels."""
from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from depth_pose_ros.ros.diagnostics import NodeStats, WindowReport, diagnostic_array, level_and_message
from depth_pose_ros.ros.frame_sync import LatestSlot, StampedCache
from depth_pose_ros.ros.node_params import (
    PARAMETERS,
    defaults,
    make_estimator,
    params_from_yaml,
    parse_settings,
    settings_from_params_file,
)
from depth_pose_ros.ros.odometry_math import (
    OPTICAL_IN_BODY_RPY,
    UNKNOWN_VARIANCE,
    PoseCovariance,
    base_motion,
    base_pose,
    base_twist,
    depth_to_points,
    make_transform,
    motion_covariance,
    rpy_to_matrix,
    twist_covariance,
)

MS = 1_000_000  # ns


# ------------------------------------------------------------------------------------ frame_sync
def test_stamped_cache_exact_then_nearest_within_tolerance():
    cache: StampedCache[str] = StampedCache(capacity=3)
    assert cache.lookup(100, 10**9) is None  # empty
    for stamp, value in ((100 * MS, "a"), (200 * MS, "b"), (300 * MS, "c")):
        cache.add(stamp, value)
    m = cache.lookup(200 * MS, 5 * MS)
    assert (m.value, m.exact, m.offset_ns) == ("b", True, 0)
    m = cache.lookup(204 * MS, 5 * MS)
    assert (m.value, m.exact, m.offset_ns) == ("b", False, -4 * MS)
    m = cache.lookup(297 * MS, 5 * MS)
    assert (m.value, m.offset_ns) == ("c", 3 * MS)
    assert cache.lookup(250 * MS, 5 * MS) is None  # nothing within 5 ms
    assert cache.lookup(250 * MS, 50 * MS).value == "b"  # a tie goes to the older entry
    cache.add(400 * MS, "d")  # capacity 3: "a" is evicted
    assert len(cache) == 3 and cache.lookup(100 * MS, 10 * MS) is None
    cache.add(400 * MS, "d2")  # same stamp replaces
    assert len(cache) == 3 and cache.latest().value == "d2" and cache.received == 5


def test_stamped_cache_keeps_entries_after_a_stamp_jump_back():
    """A bag loop: new camera_infos have the smallest stamps. They must be kept (the earliest *arrived*
    entry is evicted), and the entries from before the jump stay until the node drops them (discard_after,
    when it processes the first image after the jump): an image from before the jump may still wait."""
    cache: StampedCache[str] = StampedCache(capacity=3)
    for i in range(3):
        cache.add((10_000 + 100 * i) * MS, f"old{i}")
    cache.add(5_000 * MS, "new0")  # 5 s back, cache full: "old0" goes, "new0" stays
    assert cache.lookup(5_000 * MS, 0).value == "new0" and cache.lookup(10_000 * MS, 0) is None
    cache.add(5_100 * MS, "new1")
    assert cache.lookup(5_100 * MS, 0).value == "new1" and len(cache) == 3
    looping: StampedCache[str] = StampedCache(capacity=5)
    for i in range(3):
        looping.add((10_000 + 100 * i) * MS, f"old{i}")
    looping.add(5_000 * MS, "new0")  # the next pass starts while the image of old2 still waits
    assert looping.lookup(10_200 * MS, 0).value == "old2" and looping.lookup(5_000 * MS, 0).value == "new0"
    # after an image jump back, entries from before it are later than the new images: dropped
    cache.add(9_000 * MS, "stale")
    assert cache.discard_after(5_500 * MS) == 1 and cache.lookup(9_000 * MS, 0) is None
    assert cache.lookup(5_000 * MS, 0).value == "new0"


def test_stamped_cache_waits_for_a_late_exact_entry():
    cache: StampedCache[str] = StampedCache()
    cache.add(100 * MS, "old")
    threading.Timer(0.05, lambda: cache.add(200 * MS, "late")).start()
    t0 = time.monotonic()
    m = cache.lookup(200 * MS, 0, wait_s=2.0)
    assert m is not None and m.value == "late" and m.exact
    assert time.monotonic() - t0 < 1.5  # woke up on arrival, not at the deadline
    t0 = time.monotonic()
    assert cache.lookup(300 * MS, 0, wait_s=0.1) is None
    assert 0.09 < time.monotonic() - t0 < 1.0


def test_latest_slot_keeps_only_the_newest_and_counts_drops():
    slot: LatestSlot[int] = LatestSlot()
    assert slot.take(timeout=0.01) is None
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True  # 1 and 2 were never processed
    assert slot.take(timeout=0) == 3 and slot.take(timeout=0.01) is None
    assert (slot.received, slot.dropped) == (3, 2)
    got = []
    waiter = threading.Thread(target=lambda: got.append(slot.take(timeout=5)))
    waiter.start()
    time.sleep(0.05)
    slot.put(7)
    waiter.join(2)
    assert got == [7]
    waiter = threading.Thread(target=lambda: got.append(slot.take(timeout=30)))
    waiter.start()
    slot.close()  # wakes the waiter at once
    waiter.join(2)
    assert not waiter.is_alive() and got == [7, None]


def test_slot_of_two_keeps_a_burst_of_two_in_order_and_drops_the_oldest_beyond():
    slot: LatestSlot[int] = LatestSlot(capacity=2)
    assert slot.put(1) is False and slot.put(2) is False  # a pair arriving together: both kept
    assert slot.take(timeout=0) == 1 and slot.take(timeout=0) == 2
    assert [slot.put(i) for i in (3, 4, 5)] == [False, False, True]  # 3 pushed out
    assert [slot.take(timeout=0), slot.take(timeout=0)] == [4, 5] and not slot.pending
    assert (slot.received, slot.dropped) == (5, 1)
    with pytest.raises(ValueError, match="capacity"):
        LatestSlot(capacity=0)


# -------------------------------------------------------------------------------- odometry_math
def test_rpy_matrices_hand_computed():
    # the optical frame of a forward camera: z -> x, x -> -y, y -> -z (columns = optical axes in base)
    np.testing.assert_allclose(rpy_to_matrix(OPTICAL_IN_BODY_RPY), [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-12)
    np.testing.assert_allclose(rpy_to_matrix([0, 0, math.pi / 2]), [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    # fixed axes: roll first, then yaw -> Rz @ Rx
    np.testing.assert_allclose(rpy_to_matrix([math.pi / 2, 0, math.pi / 2]),
                               rpy_to_matrix([0, 0, math.pi / 2]) @ rpy_to_matrix([math.pi / 2, 0, 0]), atol=1e-12)
    with pytest.raises(ValueError, match="rpy"):
        rpy_to_matrix([0, float("nan"), 0])
    with pytest.raises(ValueError, match="xyz"):
        make_transform([0, 0], [0, 0, 0])


def _camera_pose(R=np.eye(3), t=(0, 0, 0)) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = t
    return T


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_base_pose_forward_motion_and_turn_hand_computed():
    T_bc = make_transform([0, 0, 1.65], OPTICAL_IN_BODY_RPY)
    # the camera moves 2 m along its optical axis: the robot 2 m along x, same height
    np.testing.assert_allclose(base_pose(_camera_pose(t=(0, 0, 2.0)), T_bc), _camera_pose(t=(2.0, 0, 0)), atol=1e-12)
    # the camera turns by a about its y axis (down): the robot yaws by -a (a right turn), and as the
    # camera sits right above base_link, base_link does not move
    a = 0.3
    np.testing.assert_allclose(base_pose(_camera_pose(R=_rot_y(a)), T_bc), _camera_pose(R=_rot_z(-a)), atol=1e-12)
    # with the camera 1 m ahead of base_link, turning about the camera swings base_link around it:
    # base origin = (1, 0) + Rz(-a) (-1, 0) = (1 - cos a, sin a)
    T_bc_ahead = make_transform([1.0, 0, 1.65], OPTICAL_IN_BODY_RPY)
    expected = _camera_pose(R=_rot_z(-a), t=(1 - math.cos(a), math.sin(a), 0))
    np.testing.assert_allclose(base_pose(_camera_pose(R=_rot_y(a)), T_bc_ahead), expected, atol=1e-12)


def test_base_twist_hand_computed():
    T_bc = make_transform([0, 0, 1.65], OPTICAL_IN_BODY_RPY)
    # T_cur_prev maps previous-camera points into the current camera: moving 0.5 m forward shifts
    # every point 0.5 m towards the camera
    v, w = base_twist(_camera_pose(t=(0, 0, -0.5)), 0.1, T_bc)
    np.testing.assert_allclose(v, [5.0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(w, [0, 0, 0], atol=1e-12)
    # turning left by 0.1 rad (base +z) = rotating about the camera's -y axis
    T_cur_prev = np.linalg.inv(_camera_pose(R=_rot_y(-0.1)))
    v, w = base_twist(T_cur_prev, 0.2, T_bc)
    np.testing.assert_allclose(w, [0, 0, 0.5], atol=1e-12)
    np.testing.assert_allclose(v, [0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(base_motion(T_cur_prev, T_bc), _camera_pose(R=_rot_z(0.1)), atol=1e-12)
    for args in ((None, 0.1), (_camera_pose(t=(0, 0, -1)), 0.0)):
        v, w = base_twist(*args, T_bc)
        assert not v.any() and not w.any()


def test_covariance_grows_with_doubt():
    ok = motion_covariance("ok", 1.0, 1.0, 0.0)
    np.testing.assert_allclose(np.diag(ok), [0.06**2] * 3 + [0.002**2] * 3)  # 5 % of 1 m + 1 cm; 0.002 rad
    low = motion_covariance("ok", 0.25, 1.0, 0.0)
    np.testing.assert_allclose(low, ok * 16)  # sigma / 0.25
    pnp = motion_covariance("pnp_fallback", 1.0, 1.0, 0.0)
    guess = motion_covariance("constant_velocity", 1.0, 1.0, 0.0)
    assert np.all(np.diag(ok) < np.diag(pnp)) and np.all(np.diag(pnp) < np.diag(guess))
    np.testing.assert_allclose(motion_covariance("ok", 0.0, 1.0, 0.0), ok * 400)  # confidence floor 0.05
    first = motion_covariance("first", 0.0, 0.0, 0.0)
    np.testing.assert_allclose(first, np.eye(6) * UNKNOWN_VARIANCE)
    acc = PoseCovariance()
    acc.add(first)  # the first pose is the origin: nothing to add
    acc.add(ok)
    np.testing.assert_allclose(acc.add(pnp), ok + pnp)
    acc.reset()
    assert not acc.cov.any()
    np.testing.assert_allclose(twist_covariance(ok, 0.1), ok * 100)
    np.testing.assert_allclose(twist_covariance(first, 0.1), np.eye(6) * UNKNOWN_VARIANCE)


def test_depth_to_points_hand_computed():
    K = np.array([[2.0, 0, 1.0], [0, 4.0, 0.5], [0, 0, 1]])
    depth = np.array([[1.0, 0.0, 4.0], [8.0, np.nan, 4.0]], np.float32)
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    xyz, rgb = depth_to_points(depth, K, image=image)
    # (u=0,v=0,z=1) -> (-0.5, -0.125, 1); (2,0,4) -> (2, -0.5, 4); (0,1,8) -> (-4, 1, 8); (2,1,4) -> (2, 0.5, 4)
    np.testing.assert_allclose(xyz, [[-0.5, -0.125, 1], [2, -0.5, 4], [-4, 1, 8], [2, 0.5, 4]])
    np.testing.assert_array_equal(rgb, image.reshape(-1, 3)[[0, 2, 3, 5]])
    xyz, _ = depth_to_points(depth, K, stride=2, max_range_m=5.0)  # pixels (0,0), (2,0); all within 5 m
    np.testing.assert_allclose(xyz, [[-0.5, -0.125, 1], [2, -0.5, 4]])
    xyz, rgb = depth_to_points(depth, K, max_range_m=5.0, image=image[..., 0])  # gray -> replicated
    np.testing.assert_allclose(xyz, [[-0.5, -0.125, 1], [2, -0.5, 4], [2, 0.5, 4]])  # |(-4, 1, 8)| = 9 > 5
    np.testing.assert_array_equal(rgb, [[0, 0, 0], [6, 6, 6], [15, 15, 15]])
    with pytest.raises(ValueError, match="stride"):
        depth_to_points(depth, K, stride=0)
    with pytest.raises(ValueError, match="image"):
        depth_to_points(depth, K, image=np.zeros((3, 3), np.uint8))


def test_register_depth_to_the_camera_image():
    from depth_pose_ros.geometry.camera import scale_intrinsics
    from depth_pose_ros.geometry.registration import network_to_camera_map, register_depth

    H, W = 90, 300  # camera; network 30x50: a different aspect in each axis (like 1241x376 -> 192x64)
    K = np.array([[250.0, 0, 149.5], [0, 240.0, 44.5], [0, 0, 1]])
    K_net = np.asarray(scale_intrinsics(K, 50 / W, 30 / H))
    # the map is exactly cv2.resize's: camera pixel centre u -> (u + 0.5) * 50 / 300 - 0.5
    M = network_to_camera_map(K_net, K)
    np.testing.assert_allclose(M, [[50 / W, 0, 0.5 * 50 / W - 0.5], [0, 30 / H, 0.5 * 30 / H - 0.5]], atol=1e-12)
    # a foreground box (5 m) on a background (20 m): only those two values, never anything in between
    depth = np.full((30, 50), 20.0, np.float32)
    depth[10:20, 20:30] = 5.0
    out = register_depth(depth, K_net, K, (H, W))
    assert out.shape == (H, W) and out.dtype == np.float32
    assert set(np.unique(out)) == {5.0, 20.0}
    assert out[45, 150] == 5.0 and out[5, 5] == 20.0  # box centre / corner at the camera size
    # a smooth ramp of inverse depth is interpolated (many values, all inside the ramp's range)
    inverse = np.tile(np.linspace(0.1, 0.2, 50, dtype=np.float32), (30, 1))
    ramp = register_depth(1.0 / inverse, K_net, K, (H, W))
    assert len(np.unique(ramp)) > 200 and 5.0 - 1e-4 <= ramp.min() and ramp.max() <= 10.0 + 1e-4
    # unknown (0) network pixels stay unknown and are never blended into their neighbours
    holes = depth.copy()
    holes[0:5, 0:5] = 0.0
    out = register_depth(holes, K_net, K, (H, W))
    assert (out[:12, :24] == 0).any() and set(np.unique(out)) <= {0.0, 5.0, 20.0}
    # a network image cropped from the camera image (K shifted): camera pixels outside it are unknown
    K_crop = K_net.copy()
    K_crop[0, 2] -= 10.0  # the network image starts 10 network pixels right of the camera's left edge
    out = register_depth(depth, K_crop, K, (H, W))
    assert (out[:, :50] == 0).all() and (out[:, 70:] > 0).all()


# ---------------------------------------------------------------------------------- node_params
def test_default_settings_and_estimator_config():
    s = parse_settings({})
    assert s.estimator_layers == [{}]  # nothing set: every estimator setting is the model folder's own
    assert s.fallback_K is None and s.image_topic == "image" and not s.use_compressed
    assert s.publish == {k: True for k in ("depth", "colored_depth", "cloud", "triangulated_points", "odom", "tf",
                                           "path", "diagnostics")}
    assert (s.output_size, s.scale_warmup, s.path_period_s) == ("camera", "publish", 1.0) and not s.warnings
    # base_link -> camera_link (forward, 1.65 m up) -> optical (REP 103): the composite the odometry uses
    # is the forward-looking optical frame, as before camera_link existed
    assert (s.camera_link_frame, s.camera_frame) == ("camera_link", "")
    np.testing.assert_allclose(s.T_base_link, make_transform([0, 0, 1.65], [0, 0, 0]), atol=1e-12)
    np.testing.assert_allclose(s.T_base_cam[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-10)
    np.testing.assert_allclose(s.T_base_cam, make_transform([0, 0, 1.65], OPTICAL_IN_BODY_RPY), atol=1e-12)
    np.testing.assert_allclose(s.T_base_cam[:3, 3], [0, 0, 1.65])
    # the old optical-frame rpy is still valid, but now means a camera looking to the right: warned
    assert "camera_to_base.rpy is the optical rotation" in \
        parse_settings({"camera_to_base.rpy": list(OPTICAL_IN_BODY_RPY)}).warnings[0]
    s = parse_settings({"input.height": 96, "input.width": 320, "scale.source": "camera_height",
                        "scale.camera_height_m": 2, "intrinsics.fx": 700, "intrinsics.fy": 700.0,
                        "intrinsics.cx": 600, "intrinsics.cy": 180, "publish.cloud": False, "use_sim_time": True})
    assert (s.estimator.height, s.estimator.width) == (96, 320)
    assert s.estimator.scale.source == "camera_height" and s.estimator.scale.camera_height_m == 2.0
    np.testing.assert_allclose(s.fallback_K, [[700, 0, 600], [0, 700, 180], [0, 0, 1]])
    assert not s.publishes("cloud") and s.publishes("depth")


@pytest.mark.parametrize("values, message", [
    ({"input.heigth": 96}, "unknown parameter(s) input.heigth"),
    ({"pose.scale": 0.5}, "pose.scale was renamed pose.image_fraction"),  # no alias (utils.config.RENAMED)
    ({"input.height": 100}, "input.height: must be a positive multiple of 32, got 100"),
    ({"input.width": 0}, "input.width: must be a positive multiple of 32, got 0"),  # unset = left out
    ({"input.height": "96"}, "input.height: expected an integer, got '96'"),
    ({"max_gap_s": 0}, "max_gap_s: must be > 0"),
    ({"flow_source": "raft"}, "flow_source: 'raft' is not one of ['network', 'dis']"),
    ({"flow_source": "model"}, "flow_source: 'model' is not one of ['network', 'dis']"),  # the old vocabulary
    ({"output.size": "full"}, "output.size: 'full' is not one of camera, network"),
    ({"scale.warmup": "wait"}, "scale.warmup: 'wait' is not one of publish, hold"),
    ({"path.period_s": -1.0}, "path.period_s: must be >= 0"),
    ({"frames.camera": "camera_link"}, "frames.camera_link and frames.camera must differ"),
    ({"scale.source": "stereo"}, "scale.stereo_baseline_m: must be > 0 when scale.source is stereo"),
    ({"intrinsics.fx": 500.0}, "intrinsics.fx/fy/cx/cy: set all four"),
    ({"qos.output": "fast"}, "qos.output: unknown QoS profile 'fast'"),
    ({"cloud.stride": 0}, "cloud.stride: must be >= 1"),
    ({"camera_to_base.rpy": [0.0, 1.0]}, "camera_to_base: rpy: expected three finite angles"),
    ({"frames.base": "odom"}, "frames.odom and frames.base must differ"),
    ({"publish.depth": "yes"}, "publish.depth: expected true or false"),
    ({"max_depth_m": float("nan")}, "max_depth_m: must be finite"),
])
def test_bad_parameter_values_name_the_parameter(values, message):
    with pytest.raises(ValueError) as info:
        parse_settings(values)
    assert message in str(info.value)


def test_params_file_sections_and_estimator_config_yaml(tmp_path):
    est_yaml = tmp_path / "estimator.yaml"
    est_yaml.write_text("two_view:\n  num_samples: 500\nwidth: 999\n")
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    device: cpu\n    input: {width: 320}\n"
                      "depth_pose_node:\n  ros__parameters:\n"
                      f"    estimator_config: {est_yaml}\n    input:\n      height: 64\n")
    assert params_from_yaml(params) == {"device": "cpu", "input.width": 320, "input.height": 64,
                                        "estimator_config": str(est_yaml)}
    s = settings_from_params_file(params, {"cloud.stride": 2})
    # two_view from the estimator YAML; its width is overridden by the node parameter
    assert s.estimator.two_view.num_samples == 500 and (s.estimator.height, s.estimator.width) == (64, 320)
    assert s.cloud_stride == 2
    est_yaml.write_text("two_view:\n  num_sample: 500\n")
    with pytest.raises(ValueError, match="estimator parameters: unknown config key.*two_view: num_sample"):
        settings_from_params_file(params)
    bad = tmp_path / "bad.yaml"
    bad.write_text("depth_pose_node:\n  device: cpu\n")
    with pytest.raises(ValueError, match="needs a 'ros__parameters' mapping"):
        params_from_yaml(bad)


def test_make_estimator_checkpoint_shipped_model_and_untrained(tmp_path, monkeypatch):
    import torch

    from depth_pose_ros.nets.checkpoint import save_model
    from depth_pose_ros.nets.config import NetConfig
    from depth_pose_ros.nets.model import build_model
    from depth_pose_ros.utils import paths

    small = tmp_path / "small.yaml"
    small.write_text("encoder: {width: 0.25}\n")
    monkeypatch.setattr(paths, "models_dir", lambda: tmp_path / "models")
    with pytest.raises(FileNotFoundError, match="checkpoint: file not found"):
        make_estimator(parse_settings({"checkpoint": str(tmp_path / "nope.safetensors")}))
    warnings: list[str] = []
    threads = torch.get_num_threads()
    try:
        est, source = make_estimator(parse_settings({"model_config": str(small), "seed": 3, "num_threads": 1,
                                                     "input.height": 64, "input.width": 192}), warnings.append)
        assert "UNTRAINED" in source and len(warnings) == 1 and "UNTRAINED" in warnings[0]
        assert est.model.cfg.encoder.width == 0.25 and est.network_size == (64, 192)
        torch.manual_seed(3)
        reference = build_model(NetConfig.from_dict({"encoder": {"width": 0.25}}))
        for a, b in zip(est.model.state_dict().values(), reference.state_dict().values()):
            assert torch.equal(a, b)  # the seed makes untrained weights reproducible
        shipped = tmp_path / "models" / "default" / "model.safetensors"
        save_model(shipped, reference)
        warnings.clear()
        est, source = make_estimator(parse_settings({"input.height": 64, "input.width": 192}), warnings.append)
        assert source == f"checkpoint {shipped}" and not warnings
        (shipped.parent / "estimator.yaml").write_text("height: 96\nwidth: 320\nflow_source: dis\n")
        est, _ = make_estimator(parse_settings({}), warnings.append)
        assert est.network_size == (96, 320), "an input size left unset follows the shipped model's own"
        assert est.config.flow_source == "dis", "a flow_source left unset follows the model folder"
        est, _ = make_estimator(parse_settings({"flow_source": "network"}), warnings.append)
        assert est.config.flow_source == "network"
        est, _ = make_estimator(parse_settings({"input.width": 192}), warnings.append)
        assert est.network_size == (96, 192), "a size set by parameter wins"
    finally:
        torch.set_num_threads(threads)


def test_unavailable_device_is_a_one_line_parameter_error():
    import torch

    from depth_pose_ros.nets.device import resolve_device  # the one device check, also the node's

    resolve_device("cpu")
    with pytest.raises(ValueError, match="device 'tpu0' is not a torch device"):
        resolve_device("tpu0")
    with pytest.raises(ValueError, match="device 'meta': only cpu, cuda"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda': CUDA is not available on this machine"):
            make_estimator(parse_settings({"device": "cuda", "input.height": 64, "input.width": 192}))


def test_unknown_parameter_names():
    from depth_pose_ros.ros.node_params import unknown_parameters

    assert unknown_parameters(["input.height", "use_sim_time", "qos_overrides./odom.publisher.depth"]) == []
    assert unknown_parameters(["input.heigth", "cloud.stride", "zzz"]) == ["input.heigth", "zzz"]


def test_parameter_table_is_consistent():
    names = [p.name for p in PARAMETERS]
    assert len(names) == len(set(names))
    assert all(p.description.strip() for p in PARAMETERS)
    parse_settings(defaults())  # the defaults are valid


# ---------------------------------------------------------------------------------- diagnostics
def _report(**kw) -> WindowReport:
    base = dict(seconds=1.0, received=10, processed=10, dropped=0, skipped=0, latency_ms=[5.0, 7.0],
                stages_ms={"step": [3.0]}, inlier_ratio=0.8, confidence=0.7, status="ok", depth_factor=1.0,
                last_error="")
    return WindowReport(**{**base, **kw})


@pytest.mark.parametrize("kw, level, text", [
    ({}, DiagnosticStatus.OK, "10.0 Hz, pose ok"),
    ({"received": 0, "processed": 0}, DiagnosticStatus.WARN, "no images received"),
    ({"processed": 0, "skipped": 10, "last_error": "bad K"}, DiagnosticStatus.ERROR, "every frame skipped: bad K"),
    ({"dropped": 3}, DiagnosticStatus.WARN, "3 frame(s) dropped"),
    ({"status": "constant_velocity"}, DiagnosticStatus.WARN, "constant-velocity"),
    ({"scale_status": "warming_up"}, DiagnosticStatus.WARN, "metric scale not converged yet: outputs are in "
                                                            "monocular units"),
    ({"scale_status": "warming_up", "held": 10}, DiagnosticStatus.WARN, "odometry, tf and path held back"),
    ({"scale_status": "converged"}, DiagnosticStatus.OK, "10.0 Hz"),
])
def test_diagnostic_levels(kw, level, text):
    got_level, message = level_and_message(_report(**kw))
    assert got_level == level and text in message


def test_stats_windows_and_diagnostic_array():
    stats = NodeStats()
    stats.received(dropped=False)
    stats.received(dropped=True)
    stats.processed(12.0, {"queue": 1.0, "pair": 0.5, "step": 30.0, "publish": 2.0, "total": 33.5}, "ok", 0.9, 0.8,
                    2.0)
    stats.processed(14.0, {"step": 50.0}, "ok", 0.9, 0.8, 2.0)  # missing stages are left out of the stats
    stats.skipped("bad_image", "image: zero size")
    r = stats.report(0.5)
    assert (r.received, r.dropped, r.processed, r.skipped, r.rate_hz) == (2, 1, 2, 1, 4.0)
    msg = diagnostic_array(r, 12.5, "node: depth", "cam", {"model": "m"})
    values = {kv.key: kv.value for kv in msg.status[0].values}
    assert values["latency_ms_mean"] == "13.0" and values["skipped_bad_image"] == "1" and values["model"] == "m"
    assert (values["step_ms_mean"], values["step_ms_max"], values["queue_ms_mean"]) == ("40.0", "50.0", "1.0")
    assert values["total_dropped"] == "1" and msg.status[0].hardware_id == "cam"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 500_000_000)
    r = stats.report(1.0)  # a new window; totals stay
    assert (r.received, r.processed, r.totals["received"], r.latency_ms) == (0, 0, 2, [])
    hint = "qos.image: reliable"
    msg = diagnostic_array(r, 13.0, "node: depth", "cam", hint=hint)
    assert msg.status[0].level == DiagnosticStatus.WARN and msg.status[0].message == f"no images received: {hint}"
    assert {kv.key: kv.value for kv in msg.status[0].values}["hint"] == hint


def test_stats_scale_warmup_status_and_held_frames():
    stats = NodeStats(scale_source="camera_height")
    assert stats.report(1.0).scale_status == "warming_up"
    stats.received(dropped=False)
    stats.processed(10.0, {}, "first", 0.0, 0.0, 1.0, scale_converged=False, held=True)
    r = stats.report(1.0)
    assert (r.scale_status, r.held, r.totals["held"]) == ("warming_up", 1, 1)
    stats.received(dropped=False)
    stats.processed(10.0, {}, "ok", 0.9, 0.9, 6.5, scale_converged=True, metres_per_unit=6.5, plane_inlier_ratio=0.7)
    r = stats.report(1.0)
    assert (r.scale_status, r.held, r.depth_factor, r.metres_per_unit, r.plane_inlier_ratio) == (
        "converged", 0, 6.5, 6.5, 0.7)
    values = {kv.key: kv.value for kv in diagnostic_array(r, 1.0, "n", "c").status[0].values}
    assert (values["scale_status"], values["depth_factor"], values["metres_per_unit"], values["total_held"]) == (
        "converged", "6.5000", "6.5000", "1")
    assert "scale" not in values and "metric_scale" not in values  # issue 20: the keys say what they are
    assert NodeStats().report(1.0).scale_status == "monocular"  # no metric source: nothing to wait for


@pytest.mark.parametrize("index, value, says", [(2, math.inf, "k[2]=inf"), (0, -5.0, "fx=-5.0 (must be > 0)"),
                                                (4, math.nan, "k[4]=nan"), (8, 0.0, "k[8]=0.0 (must be 1)")])
def test_a_bad_camera_info_k_is_named_by_its_bad_value(index: int, value: float, says: str) -> None:
    from depth_pose_ros.ros.convert import ConversionError, camera_info_to_K, make_camera_info

    K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
    msg = make_camera_info(K, 640, 480)
    k = list(msg.k)
    k[index] = value
    msg.k = k
    with pytest.raises(ConversionError) as err:
        camera_info_to_K(msg)
    assert says in str(err.value)
    assert "k[0]" not in str(err.value) or index == 0  # only the bad values are named


def test_silence_is_explained_by_what_was_seen() -> None:
    from depth_pose_ros.ros.node_core import LARGE_FRAME_HINT, silence_hint

    assert "no camera yet" in silence_hint("/image", 0, 0, True)
    assert "stopped: its publisher is gone" in silence_hint("/image", 0, 12, True)
    stopped = silence_hint("/image", 1, 12, True)
    assert "stopped after 12 frames" in stopped and LARGE_FRAME_HINT in stopped
    assert LARGE_FRAME_HINT not in silence_hint("/image", 1, 12, False)  # reliable: nothing is lost for size
    waiting = silence_hint("/image", 2, 0, True)
    assert "not be sending yet" in waiting and LARGE_FRAME_HINT in waiting
    assert "not sending yet" in silence_hint("/image", 2, 0, False)
