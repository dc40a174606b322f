"""Reading and writing trajectories in the two formats the benchmarks use.

Data layer (``docs/architecture.md``, "Layers"): the KITTI odometry reader takes its ground-truth poses
from here, and the evaluation, ``depth-pose run`` / ``vo`` and the benchmarks read and write
trajectories with the same functions (``depth_pose_ros.eval`` re-exports them in its package namespace).

* KITTI odometry: one pose per line, 12 numbers = the top 3x4 of ``T_world_cam`` row-major
  (camera-to-world, frame 0 usually the identity), no timestamps.
* TUM RGB-D: ``stamp tx ty tz qx qy qz qw`` per line (position and Hamilton quaternion, scalar last,
  of ``T_world_cam``); ``#`` starts a comment line.

Readers return Nx4x4 float64 ``T_world_cam`` arrays (maps camera points into the world frame) and
raise ``ValueError`` naming the file and line on malformed input.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

TRAJECTORY_FORMATS = ("kitti", "tum")


def _numbers(path: Path, lineno: int, line: str, expected: int) -> list[float]:
    parts = line.split()
    if len(parts) != expected:
        raise ValueError(f"{path}:{lineno}: expected {expected} numbers, got {len(parts)}: {line.strip()!r}")
    try:
        values = [float(x) for x in parts]
    except ValueError as exc:
        raise ValueError(f"{path}:{lineno}: not a number ({exc}): {line.strip()!r}") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{path}:{lineno}: non-finite value: {line.strip()!r}")
    return values


def _read_lines(path: str | Path) -> tuple[Path, list[tuple[int, str]]]:
    """(path, [(1-based line number, text)]) without blank and ``#`` comment lines."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"trajectory file not found: {p}")
    lines = [(i + 1, ln) for i, ln in enumerate(p.read_text().splitlines())]
    lines = [(i, ln) for i, ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise ValueError(f"{p}: no poses in file")
    return p, lines


def _check_poses(poses: np.ndarray, path: Path) -> np.ndarray:
    T = np.asarray(poses, dtype=np.float64)
    if T.ndim != 3 or T.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"{path}: expected Nx4x4 (or Nx3x4) poses to write, got shape {T.shape}")
    if not np.isfinite(T).all():
        raise ValueError(f"{path}: refusing to write non-finite poses")
    return T


def read_kitti_poses(path: str | Path) -> np.ndarray:
    """Nx4x4 ``T_world_cam`` (camera-to-world) from a KITTI odometry pose file."""
    p, lines = _read_lines(path)
    T = np.tile(np.eye(4), (len(lines), 1, 1))
    for k, (lineno, line) in enumerate(lines):
        T[k, :3, :] = np.reshape(_numbers(p, lineno, line, 12), (3, 4))
    return T


def write_kitti_poses(path: str | Path, T_world_cam: np.ndarray) -> None:
    """Write Nx4x4 (or Nx3x4) camera-to-world poses ``T_world_cam`` as KITTI lines (``%.9e``)."""
    p = Path(path)
    T = _check_poses(T_world_cam, p)
    rows = T[:, :3, :].reshape(len(T), 12)
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(p, rows, fmt="%.9e")


def read_tum_trajectory(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(N stamps in s, Nx4x4 ``T_world_cam``) from a TUM trajectory file. Quaternions are normalised
    (files round them); a zero quaternion is an error."""
    p, lines = _read_lines(path)
    stamps = np.empty(len(lines))
    T = np.tile(np.eye(4), (len(lines), 1, 1))
    for k, (lineno, line) in enumerate(lines):
        v = _numbers(p, lineno, line, 8)
        q = np.asarray(v[4:8])
        if np.linalg.norm(q) < 1e-9:
            raise ValueError(f"{p}:{lineno}: zero quaternion: {line.strip()!r}")
        stamps[k] = v[0]
        T[k, :3, :3] = Rotation.from_quat(q).as_matrix()  # scipy: (x, y, z, w), as TUM
        T[k, :3, 3] = v[1:4]
    return stamps, T


def write_tum_trajectory(path: str | Path, stamps: np.ndarray, T_world_cam: np.ndarray) -> None:
    """Write N stamps (s) and Nx4x4 camera-to-world poses ``T_world_cam`` as TUM lines. The
    rotation is projected onto SO(3) by scipy (so a slightly non-orthonormal input still writes)."""
    p = Path(path)
    T = _check_poses(T_world_cam, p)
    s = np.asarray(stamps, dtype=np.float64).ravel()
    if s.shape[0] != T.shape[0]:
        raise ValueError(f"{p}: {s.shape[0]} stamps for {T.shape[0]} poses")
    q = Rotation.from_matrix(T[:, :3, :3]).as_quat()
    rows = np.column_stack([s, T[:, :3, 3], q])
    p.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(p, rows, fmt=["%.6f"] + ["%.9f"] * 7, header="timestamp tx ty tz qx qy qz qw")


def read_trajectory(path: str | Path, fmt: str) -> tuple[np.ndarray | None, np.ndarray]:
    """(stamps or None, Nx4x4 ``T_world_cam``) for ``fmt`` in ``TRAJECTORY_FORMATS``."""
    if fmt == "kitti":
        return None, read_kitti_poses(path)
    if fmt == "tum":
        return read_tum_trajectory(path)
    raise ValueError(f"unknown trajectory format {fmt!r} for {path}; choose one of {TRAJECTORY_FORMATS}")


def associate(
    stamps_a: np.ndarray, stamps_b: np.ndarray, max_dt: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of two timestamp lists: candidate pairs closer than ``max_dt`` seconds are
    taken greedily from the closest, each stamp used at most once (the TUM benchmark's rule).
    Returns index arrays (into a, into b) sorted by time of a."""
    a = np.asarray(stamps_a, dtype=np.float64).ravel()
    b = np.asarray(stamps_b, dtype=np.float64).ravel()
    if a.size == 0 or b.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    order_b = np.argsort(b)
    sorted_b = b[order_b]
    # candidates: for each a, every b within max_dt (a window found with two binary searches)
    lo = np.searchsorted(sorted_b, a - max_dt, side="left")
    hi = np.searchsorted(sorted_b, a + max_dt, side="right")
    cand = [(abs(a[i] - sorted_b[j]), i, int(order_b[j])) for i in range(a.size) for j in range(lo[i], hi[i])]
    cand.sort()
    used_a: set[int] = set()
    used_b: set[int] = set()
    pairs = []
    for dt, i, j in cand:
        if dt <= max_dt and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    pairs.sort(key=lambda ij: a[ij[0]])
    ia = np.array([i for i, _ in pairs], dtype=int)
    ib = np.array([j for _, j in pairs], dtype=int)
    return ia, ib
