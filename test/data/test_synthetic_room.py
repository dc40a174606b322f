"""Indoor synthetic world (world=room): closed rooms, exact depth, flow, handheld camera, spec parsing."""
from __future__ import annotations

import numpy as np
import pytest

from depth_pose_ros.data.source import open_source, parse_synthetic_spec
from depth_pose_ros.data.synthetic import SyntheticSequence
from depth_pose_ros.data.synthetic_room import RoomWorld
from depth_pose_ros.data.synthetic_scene import yaw_matrix


@pytest.fixture(scope="module")
def room() -> SyntheticSequence:
    return SyntheticSequence(seed=4, length=12, height=48, width=96, world="room")


def _rays_world(seq: SyntheticSequence, T: np.ndarray, uu: np.ndarray, vv: np.ndarray) -> np.ndarray:
    K = seq.K
    r = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu, dtype=np.float64)])
    return T[:3, :3] @ r  # (3, n) world directions with camera z = 1 (parameter = z-depth)


def _ray_cast_float64(world: RoomWorld, C: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Independent float64 slab test of every ray against every box: (nearest t, box index) per ray."""
    b = world.boxes
    R = yaw_matrix(b.yaw)  # (N, 3, 3) box-to-world
    o = np.einsum("nji,nj->ni", R, C[None, :] - b.center)  # camera centre in box coordinates
    dl = np.einsum("nji,jm->nmi", R, d)  # (N, M, 3) ray directions in box coordinates
    with np.errstate(divide="ignore", invalid="ignore"):
        a = (-b.half[:, None, :] - o[:, None, :]) / dl
        c = (b.half[:, None, :] - o[:, None, :]) / dl
    t_in = np.nanmax(np.minimum(a, c), axis=2)
    t_out = np.nanmin(np.maximum(a, c), axis=2)
    hit = (t_in <= t_out) & (t_in > 0.05)
    t = np.where(hit, t_in, np.inf)
    return t.min(axis=0), t.argmin(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
def test_every_pixel_has_a_finite_positive_depth(seed: int) -> None:
    s = SyntheticSequence(seed=seed, length=40, height=32, width=48, world="room")
    for i in (0, 13, 27, 39):
        view = s.view(i)
        assert np.all(np.isfinite(view.depth)) and view.depth.min() > 0.05, (seed, i)
        assert np.all(view.surface >= 0), (seed, i)  # every ray hit a box: no sky, no ground plane
        assert view.depth.max() < 40.0


def test_depth_equals_an_independent_float64_ray_cast(room: SyntheticSequence) -> None:
    for i in (0, 7):
        f = room[i]
        T = f.T_world_cam
        vv, uu = np.mgrid[0:room.height, 0:room.width]
        uu, vv = uu.reshape(-1).astype(np.float64), vv.reshape(-1).astype(np.float64)
        t, box = _ray_cast_float64(room.world, T[:3, 3], _rays_world(room, T, uu, vv))
        z = f.depth.reshape(-1).astype(np.float64)
        np.testing.assert_allclose(z, t, rtol=2e-5, atol=1e-5)
        surface = room.view(i).surface.reshape(-1)
        # same box, except where two boxes meet within float32 rounding (edges, shared planes)
        same = surface == box
        assert same.mean() > 0.99


def test_back_projected_pixels_lie_on_the_surface_they_hit(room: SyntheticSequence) -> None:
    f = room[3]
    view = room.view(3)
    T = f.T_world_cam
    vv, uu = np.mgrid[0:room.height, 0:room.width]
    d = _rays_world(room, T, uu.reshape(-1).astype(float), vv.reshape(-1).astype(float))
    p = T[:3, 3:4] + d * f.depth.reshape(-1).astype(np.float64)  # world points
    b = room.world.boxes
    k = view.surface.reshape(-1)
    local = np.einsum("nji,nj->ni", yaw_matrix(b.yaw[k]), p.T - b.center[k])
    excess = np.abs(local) - b.half[k]
    tol = 1e-5 * (1 + f.depth.reshape(-1))
    assert np.all(excess.max(axis=1) < tol[:] * 3)  # inside or on the box ...
    assert np.all(np.abs(excess.max(axis=1)) < tol * 3)  # ... and on one of its faces


def test_floor_pixels_match_a_ray_plane_intersection(room: SyntheticSequence) -> None:
    seq = SyntheticSequence(seed=4, length=60, height=48, width=96, world="room")
    w = seq.world
    n = 0
    for box, plane_y in ((w.floor_box, 0.0), (w.ceiling_box, -w.ceiling)):
        for i in range(0, len(seq), 6):
            f = seq[i]
            on = np.argwhere(seq.view(i).surface == box)
            if len(on) == 0:
                continue
            d = _rays_world(seq, f.T_world_cam, on[:, 1].astype(float), on[:, 0].astype(float))
            t = (plane_y - f.T_world_cam[1, 3]) / d[1]  # plane y = plane_y
            np.testing.assert_allclose(f.depth[on[:, 0], on[:, 1]], t, rtol=1e-5)
            n += len(on)
    assert n > 100


def test_flow_is_the_rigid_motion_of_the_static_room(room: SyntheticSequence) -> None:
    f, g = room[4], room[5]
    K = room.K
    vv, uu = np.mgrid[0:room.height, 0:room.width].astype(np.float64)
    z = f.depth.astype(np.float64)
    pts = np.stack([(uu - K[0, 2]) / K[0, 0] * z, (vv - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    T = np.linalg.inv(g.T_world_cam) @ f.T_world_cam
    m = pts @ T[:3, :3].T + T[:3, 3]
    flow = np.stack([K[0, 0] * m[..., 0] / m[..., 2] + K[0, 2] - uu,
                     K[1, 1] * m[..., 1] / m[..., 2] + K[1, 2] - vv], -1)
    ok = ~f.occlusion_next
    assert ok.mean() > 0.5
    assert np.abs(f.flow_next - flow)[ok].max() < 0.01
    assert not f.moving_mask.any()
    assert room[0].flow_prev is None and room[11].flow_next is None


def test_same_seed_same_frames_in_any_order_and_seeds_differ() -> None:
    a = SyntheticSequence(seed=7, length=6, height=32, width=48, world="room")
    b = SyntheticSequence(seed=7, length=6, height=32, width=48, world="room")
    fa = [a[i] for i in (2, 3, 4)]
    fb = [b[i] for i in (4, 3, 2)][::-1]
    for x, y in zip(fa, fb):
        for name in ("image", "depth", "flow_next", "flow_prev", "occlusion_next", "T_world_cam", "K"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)
    c = SyntheticSequence(seed=8, length=6, height=32, width=48, world="room")
    assert not np.array_equal(c[2].depth, fa[0].depth)
    assert a.name == "synthetic:world=room,seed=7" and a[0].source == a.name


@pytest.mark.parametrize("seed", [0, 3, 6, 9])
def test_handheld_camera_stays_in_free_space(seed: int) -> None:
    w = RoomWorld(seed=seed, length=300, fps=10.0)
    T = np.stack([w.camera_pose(i) for i in range(-1, w.length + 1)])
    C = T[:, :3, 3]
    height = -C[:, 1]
    assert height.min() > 0.85 and height.max() < 1.75
    step = np.linalg.norm(np.diff(C[:, [0, 2]], axis=0), axis=1) * w.fps
    assert step.max() < 1.25 and np.median(step) > 0.25
    fwd = T[:, :3, 2]
    yaw = np.unwrap(np.arctan2(fwd[:, 0], fwd[:, 2]))
    assert np.degrees(np.abs(np.diff(yaw))).max() * w.fps < 41.0
    assert np.degrees(np.abs(np.arcsin(np.clip(T[:, 1, 2], -1, 1)))).max() < 30.0  # pitch
    # exact horizontal distance to every box footprint that reaches the camera's height band
    b = w.boxes
    top, bottom = b.center[:, 1] - b.half[:, 1], b.center[:, 1] + b.half[:, 1]
    slabs = (b.half[:, 0] > 4.0) & (b.half[:, 2] > 4.0) & (b.half[:, 1] < 0.1)  # floor / ceiling
    lamps = bottom < -1.95  # hanging from the ceiling, above the camera
    rugs = top > -0.02
    sel = ~(slabs | lamps | rugs)
    R = yaw_matrix(b.yaw[sel])
    local = np.einsum("nji,mnj->mni", R, C[:, None, :] - b.center[sel][None])
    out = np.maximum(np.abs(local[..., [0, 2]]) - b.half[sel][None][..., [0, 2]], 0.0)
    dist = np.linalg.norm(out, axis=-1).min(axis=1)
    assert dist.min() >= 0.3, dist.min()


def test_room_world_options() -> None:
    s = SyntheticSequence(seed=2, length=3, height=32, width=48, world="room", hfov_deg=60.0, camera_height=1.2,
                          speed_range=(0.5, 0.5))
    assert s.K[0, 0] == pytest.approx(48 / (2 * np.tan(np.deg2rad(30.0))))
    assert abs(-s.world.camera_pose(1)[1, 3] - 1.2) < 0.06
    default = SyntheticSequence(seed=2, length=3, height=32, width=48, world="room")
    assert 55.0 <= default.hfov_deg <= 75.0
    with pytest.raises(ValueError, match="world=street only"):
        SyntheticSequence(seed=0, length=3, height=32, width=48, world="room", num_moving=2)
    with pytest.raises(ValueError, match="world must be one of"):
        SyntheticSequence(world="forest")
    with pytest.raises(ValueError, match="speed_range"):
        SyntheticSequence(seed=0, length=3, height=32, width=48, world="room", speed_range=(1.0, 9.0))


def test_spec_parsing() -> None:
    assert parse_synthetic_spec("synthetic:world=room,seed=3,length=20,height=64,width=192") == {
        "world": "room", "seed": 3, "length": 20, "height": 64, "width": 192}
    assert parse_synthetic_spec("synthetic:speed_range=3:8,num_moving=5,camera_height=1.4,hfov_deg=70,"
                                "close_traffic=1") == {
        "speed_range": (3.0, 8.0), "num_moving": 5, "camera_height": 1.4, "hfov_deg": 70.0, "close_traffic": True}
    assert parse_synthetic_spec("synthetic:traffic=dense") == {"close_traffic": True, "num_moving": 6}
    assert parse_synthetic_spec("synthetic:traffic=dense,num_moving=2")["num_moving"] == 2
    assert parse_synthetic_spec("synthetic:speed_range=4") == {"speed_range": (4.0, 4.0)}
    for bad, msg in (("world=forest", "world must be one of"), ("speed_range=8:3", "0 < MIN <= MAX"),
                     ("speed_range=fast", "MIN:MAX"), ("close_traffic=maybe", "close_traffic must be"),
                     ("traffic=heavy", "traffic must be"), ("seed=1,seed=2", "given twice"),
                     ("hfov=60", "unknown key 'hfov'")):
        with pytest.raises(ValueError, match=msg):
            parse_synthetic_spec(f"synthetic:{bad}")
    # range errors of the built sequence name the spec
    with pytest.raises(ValueError, match=r"synthetic spec .*hfov_deg must be in"):
        open_source("synthetic:hfov_deg=5,length=2,height=16,width=16")
    with pytest.raises(ValueError, match=r"synthetic spec .*world=street only"):
        open_source("synthetic:world=room,traffic=dense,length=2,height=16,width=16")


def test_open_room_source() -> None:
    src = open_source("synthetic:world=room,seed=1,length=3,height=24,width=32")
    assert src.name == "synthetic:world=room,seed=1,length=3,height=24,width=32"
    f = src[1]
    assert f.image.shape == (24, 32, 3) and f.depth.min() > 0 and f.flow_next is not None
    src = open_source("synthetic:speed_range=3:8,length=2,height=16,width=32")
    assert src.name == "synthetic:speed_range=3:8,length=2,height=16,width=32"


def test_close_traffic_puts_the_leading_car_a_few_metres_ahead() -> None:
    from depth_pose_ros.data.synthetic_scene import SyntheticWorld

    def lead_distance(world: SyntheticWorld) -> np.ndarray:
        c = np.stack([world.camera_pose(i)[:3, 3] for i in range(world.length)])
        o = np.stack([world.object_pose(0, i)[:3, 3] for i in range(world.length)])
        return np.linalg.norm((o - c)[:, [0, 2]], axis=1)

    normal = SyntheticWorld(seed=1, length=200, num_moving=4)
    close = SyntheticWorld(seed=1, length=200, num_moving=4, close_traffic=True)
    assert lead_distance(normal).min() > 14.0  # the default layout keeps it >= 15 m (centre) ahead
    d = lead_distance(close)
    assert 6.0 < d.min() and d.max() < 12.0
    d2 = np.linalg.norm(np.stack([close.object_pose(3, i)[:3, 3] - close.object_pose(0, i)[:3, 3]
                                  for i in range(close.length)])[:, [0, 2]], axis=1)
    assert d2.min() > 5.5  # queued cars do not touch (car length <= 4.9 m)
    # everything but the leading cars' gaps is the same world
    np.testing.assert_array_equal(normal.camera_pose(50), close.camera_pose(50))
    np.testing.assert_array_equal(normal.object_pose(1, 50), close.object_pose(1, 50))
