"""ROS bags and their camera messages without ROS: reading, writing, image decoding, camera_info, pairing.

Why one module: the bag frame source (:mod:`depth_pose_ros.data.rosbag_source`), the bag player and the
bag recorder (``depth_pose_ros.ros.bag_player`` / ``bag_recorder``) all read or write bags, and the
frame source and the node decode the same message fields. Each mechanism is written once, here:

* one :class:`BagError` for every bag that cannot be read, written or used;
* one reader, :class:`BagReader`, over the pure-Python ``rosbags`` library (rosbag2 itself, the C++
  library behind ``ros2 bag``, is not available as a wheel), opening what :func:`resolve_bag_paths`
  accepts; it yields messages either as ROS 2 CDR bytes (:meth:`BagReader.messages`, what the player
  publishes) or as the storage's raw records to deserialise (:meth:`BagReader.raw_messages`, what the
  frame source indexes);
* one writer, :class:`SplitBagWriter` (rosbag2, mcap or sqlite3, optionally split into parts);
* message fields -> numpy: header stamps (:func:`stamp_ns`), images (:func:`image_msg_to_numpy`,
  :func:`compressed_msg_to_numpy`; the pixel decoding itself is :mod:`depth_pose_ros.utils.image_codec`,
  shared with the rclpy adapters of ``depth_pose_ros.ros.convert``), camera_info -> K
  (:func:`camera_info_matrix`, :func:`camera_info_K`) and lens distortion (:func:`camera_info_distortion`);
* one camera_info pairing rule, :func:`nearest_stamp` (exact stamp, else the nearest within a tolerance),
  used by the node's camera_info cache (``depth_pose_ros.ros.frame_sync``) and by the bag frame source
  (:func:`pair_camera_infos`, which adds the fallback a recording allows).

Messages may be ``rosbags`` dataclasses (ROS 2 or ROS 1 field names: ``k``/``K``, ``d``/``D``,
``nanosec``/``nsec``) or rclpy messages: only field names are used. The ROS 2 Jazzy typestore
(:func:`ros2_typestore`) defines the types written into bags and the CDR ROS 1 bags are converted to
(rosbags drops ROS 1's ``Header.seq`` there).

Why splitting writes *separate* bags: ``rosbags.rosbag2.Writer`` writes one storage file per bag. Each
part is therefore a complete, independently readable bag directory ``<name>_<NNN>``, and
:func:`resolve_bag_paths` turns a folder of parts back into the list of bags to read in order.
"""
from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Optional, Union

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

from depth_pose_ros.data.source import to_uint8
from depth_pose_ros.geometry.distortion import Distortion
from depth_pose_ros.utils.image_codec import decode_compressed_image, decode_raw_image

PathLike = Union[str, Path]

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_TYPE = "sensor_msgs/msg/CompressedImage"
INFO_TYPE = "sensor_msgs/msg/CameraInfo"

#: The message types the recorder and player handle by default (camera streams).
CAMERA_TYPES: tuple[str, ...] = (IMAGE_TYPE, COMPRESSED_TYPE, INFO_TYPE)

#: Storage names accepted by the ``storage`` parameter.
STORAGE_NAMES: tuple[str, ...] = ("mcap", "sqlite3")

#: rosbag2 metadata version written (9 is what Jazzy's ``ros2 bag`` writes).
BAG_VERSION: Final = 9

#: Storage files ``rosbags`` reads on their own (without a rosbag2 directory's metadata.yaml).
_STORAGE_SUFFIXES = (".mcap", ".db3")


class BagError(ValueError):
    """A bag that cannot be read, written or used (corrupt, wrong topics, missing CameraInfo), or a bad
    bag-related argument; the text names the bag or the argument."""


# ---------------------------------------------------------------------------------------- types
@lru_cache(maxsize=1)
def ros2_typestore() -> Typestore:
    """The ROS 2 Jazzy typestore (message definitions and hashes written into bags)."""
    return get_typestore(Stores.ROS2_JAZZY)


def storage_plugin(name: str, *, what: str = "storage") -> StoragePlugin:
    """``"mcap"`` / ``"sqlite3"`` -> rosbags ``StoragePlugin``."""
    key = str(name).strip().lower()
    if key == "mcap":
        return StoragePlugin.MCAP
    if key in ("sqlite3", "sqlite", "db3"):
        return StoragePlugin.SQLITE3
    raise BagError(f"{what}: unknown bag storage {name!r}; expected one of {', '.join(STORAGE_NAMES)}")


def normalize_type_name(type_name: str) -> str:
    """``"sensor_msgs/Image"`` -> ``"sensor_msgs/msg/Image"`` (what rosbag2 and DDS graphs use)."""
    parts = str(type_name).strip().split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else "/".join(parts)


def _ros2_type(type_name: str) -> str:
    """ROS 2 name of a bag's message type (ROS 1's ``tf/tfMessage`` is ``tf2_msgs/msg/TFMessage``)."""
    return "tf2_msgs/msg/TFMessage" if type_name == "tf/msg/tfMessage" else normalize_type_name(type_name)


# --------------------------------------------------------------------------------- message fields
def stamp_ns(stamp: Any) -> int:
    """Integer nanoseconds of a ``builtin_interfaces/Time`` (ROS 2 ``sec``/``nanosec``, ROS 1 ``nsec``)."""
    return int(stamp.sec) * 1_000_000_000 + int(getattr(stamp, "nanosec", getattr(stamp, "nsec", 0)))


def image_msg_to_numpy(msg: Any) -> np.ndarray:
    """HxWx3 RGB or HxW gray uint8 camera image from a ``sensor_msgs/Image`` (honours ``step``, endianness).

    16-bit mono images are mapped to 8 bits by full-range scaling (65535 -> 255). A 32FC1 image is a depth
    image, not a camera image, and is refused.
    """
    if str(msg.encoding).lower() == "32fc1":
        raise ValueError("image topic has encoding 32FC1 (a depth image), not a camera image")
    img, _ = decode_raw_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    return to_uint8(img)


def compressed_msg_to_numpy(msg: Any) -> np.ndarray:
    """HxWx3 RGB or HxW gray uint8 camera image from a ``sensor_msgs/CompressedImage``."""
    img, _ = decode_compressed_image(msg.data, str(msg.format))
    return to_uint8(img)


def camera_info_matrix(msg: Any) -> Optional[np.ndarray]:
    """The 3x3 float64 ``k`` of a CameraInfo (ROS 2 ``k`` or ROS 1 ``K``) as stored, unchecked; None when the
    message has no such field.

    Raises:
        ValueError: not 9 values.
    """
    k = getattr(msg, "k", None)
    if k is None:
        k = getattr(msg, "K", None)
    if k is None:
        return None
    K = np.asarray(k, dtype=np.float64).reshape(-1)
    if K.size != 9:
        raise ValueError(f"camera_info: k has {K.size} values, expected 9")
    return K.reshape(3, 3)


def camera_info_K(msg: Any) -> Optional[np.ndarray]:
    """3x3 K of a recorded CameraInfo; None when uncalibrated (fx or fy not > 0, e.g. all zeros).

    Lenient on purpose: a bag's uncalibrated CameraInfo is skipped, not an error. The node's stricter check
    (a valid pinhole matrix, or an error naming the entry) is ``depth_pose_ros.ros.convert.camera_info_to_K``.
    """
    K = camera_info_matrix(msg)
    if K is None or K[0, 0] <= 0 or K[1, 1] <= 0:
        return None
    return K


def camera_info_distortion(msg: Any) -> Optional[Distortion]:
    """Lens distortion of a CameraInfo (``distortion_model`` + ROS 2 ``d`` or ROS 1 ``D``); None when there is
    none (no or all-zero coefficients).

    Raises:
        UnknownDistortionModel: a model :class:`~depth_pose_ros.geometry.distortion.Distortion` does not support.
        ValueError: invalid coefficients.
    """
    d = getattr(msg, "d", None)
    if d is None:
        d = getattr(msg, "D", None)
    return Distortion.create(str(getattr(msg, "distortion_model", "") or ""), d)


# --------------------------------------------------------------------------------------- pairing
def nearest_stamp(stamps: Sequence[int], stamp: int, tolerance_ns: int) -> Optional[int]:
    """The camera_info pairing rule: index of the entry at exactly ``stamp``, else of the nearest one within
    ``tolerance_ns`` (the earlier one on a tie), else None.

    ``stamps`` are integer nanoseconds in ascending order; among equal stamps the last one counts (a
    camera_info sent again with the same stamp replaces the earlier one). Drivers stamp an image and its
    camera_info alike, so the exact stamp is the match; the tolerance absorbs drivers that stamp the two a
    little apart.
    """
    pos = bisect.bisect_right(stamps, stamp)  # stamps[:pos] <= stamp < stamps[pos:]
    best: Optional[int] = None
    if pos > 0:
        best = pos - 1
    if pos < len(stamps) and (best is None or stamps[pos] - stamp < stamp - stamps[best]):
        best = pos
    if best is None or abs(stamps[best] - stamp) > tolerance_ns:
        return None
    return best


def pair_camera_infos(image_stamps: Sequence[int] | np.ndarray, info_stamps: Sequence[int],
                      tolerance_ns: int) -> np.ndarray:
    """Index into ``info_stamps`` (ascending, non-empty) of the camera_info of each image of a recording.

    :func:`nearest_stamp` first. A recording holds the whole camera_info history, so when none is within the
    tolerance the image takes the latest camera_info before it (a camera_info published once, or latched,
    applies to the images after it), else the first one. The live node has no such history: it falls back
    to its ``intrinsics.*`` parameters or skips the frame instead.
    """
    infos = [int(s) for s in info_stamps]
    out = np.zeros(len(image_stamps), dtype=np.int64)
    for i, st in enumerate(int(s) for s in image_stamps):
        j = nearest_stamp(infos, st, tolerance_ns)
        if j is None:
            j = max(bisect.bisect_right(infos, st) - 1, 0)
        out[i] = j
    return out


# ---------------------------------------------------------------------------------------- reading
def resolve_bag_paths(path: PathLike) -> list[Path]:
    """Bag argument -> paths for ``rosbags``' ``AnyReader``.

    Accepts a rosbag2 directory (holding metadata.yaml), a storage file inside one (``.mcap`` / ``.db3``:
    its directory is used, so every storage file of the bag is read), a storage file on its own (read as
    it is), a ROS 1 ``.bag`` file, or a folder of split parts written by :class:`SplitBagWriter` (each
    sub-directory with a metadata.yaml, in name order) or of ROS 1 ``.bag`` files.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise BagError(f"bag: {p} does not exist")
    if p.is_file():
        if p.suffix == ".bag":
            return [p]
        if p.suffix in _STORAGE_SUFFIXES:
            return [p.parent] if (p.parent / "metadata.yaml").is_file() else [p]
        raise BagError(f"bag: {p} is neither a ROS 1 .bag nor a rosbag2 storage file (.mcap, .db3)")
    if (p / "metadata.yaml").is_file():
        return [p]
    parts = sorted(d for d in p.iterdir() if d.is_dir() and (d / "metadata.yaml").is_file())
    if parts:
        return parts
    ros1 = sorted(p.glob("*.bag"))
    if ros1:
        return ros1
    raise BagError(f"bag: {p} holds no metadata.yaml, no rosbag2 sub-directories and no .bag files")


@dataclass(frozen=True)
class BagMessage:
    """One message of a bag as ROS 2 CDR bytes, with its bag (receive) time."""

    topic: str
    type_name: str
    timestamp_ns: int
    cdr: bytes


class BagReader:
    """Reads rosbag2 (mcap / sqlite3, possibly split) or ROS 1 bags.

    Two views of the same messages: :meth:`messages` yields ROS 2 CDR bytes (ROS 1 records converted),
    for publishing without deserialising; :meth:`raw_messages` + :meth:`deserialize` give the storage's
    own records and their decoded messages, for reading fields.

    Raises:
        BagError: the path is not a bag (:func:`resolve_bag_paths`) or the bag cannot be opened.
    """

    def __init__(self, path: PathLike) -> None:
        self.paths = resolve_bag_paths(path)
        self.is_ros1 = self.paths[0].suffix == ".bag"
        try:
            self._reader = AnyReader(self.paths, default_typestore=ros2_typestore())
            self._reader.open()
        except Exception as exc:  # rosbags raises several unrelated error types for corrupt files
            raise BagError(f"cannot read bag {', '.join(map(str, self.paths))}: "
                           f"{type(exc).__name__}: {exc}") from None

    @property
    def message_count(self) -> int:
        """Messages in the bag(s), all topics."""
        return int(self._reader.message_count)

    @property
    def start_ns(self) -> int:
        """Earliest message time in the bag(s)."""
        return int(self._reader.start_time)

    @property
    def end_ns(self) -> int:
        """Time of the last message (rosbags' ``end_time`` is one past it)."""
        return int(self._reader.end_time) - 1

    def topics(self) -> dict[str, str]:
        """Topic -> ROS 2 type name (ROS 1 names such as ``tf/tfMessage`` are mapped)."""
        return {c.topic: _ros2_type(c.msgtype) for c in self._reader.connections}

    def connections(self, topic: str) -> list[Any]:
        """The ``rosbags`` connections of ``topic`` (several when several bags or publishers wrote it)."""
        return [c for c in self._reader.connections if c.topic == topic]

    def raw_messages(self, connections: Sequence[Any], start_ns: Optional[int] = None,
                     stop_ns: Optional[int] = None) -> Iterator[tuple[Any, int, bytes]]:
        """(connection, receive time, storage record) in time order, for receive times in [start, stop).

        Each storage answers a time window from its own index (sqlite query, mcap chunk index, ROS 1 chunk
        index), so a narrow window reads only the messages in it.
        """
        for connection, timestamp, raw in self._reader.messages(connections=list(connections), start=start_ns,
                                                               stop=stop_ns):
            yield connection, int(timestamp), raw

    def deserialize(self, raw: bytes, type_name: str) -> Any:
        """A storage record of :meth:`raw_messages` -> ``rosbags`` message (ROS 1 or ROS 2 field names)."""
        return self._reader.deserialize(raw, type_name)

    def messages(
        self,
        topics: Optional[Sequence[str]] = None,
        start_ns: Optional[int] = None,
        stop_ns: Optional[int] = None,
    ) -> Iterator[BagMessage]:
        """Messages in time order, as CDR; ``topics`` filters (None = all)."""
        wanted = None if topics is None else set(topics)
        connections = [c for c in self._reader.connections if wanted is None or c.topic in wanted]
        if not connections:
            return
        store = ros2_typestore()
        for connection, timestamp, raw in self.raw_messages(connections, start_ns, stop_ns):
            type_name = _ros2_type(connection.msgtype)
            if self.is_ros1:
                data = bytes(store.ros1_to_cdr(raw, type_name))
            else:
                data = bytes(raw)
            yield BagMessage(connection.topic, type_name, timestamp, data)

    def close(self) -> None:
        """Close the underlying files."""
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------- writing
class SplitBagWriter:
    """rosbag2 writer that starts a new bag when a size or duration limit is reached.

    Without limits the bag is ``output_dir/name``. With a limit (``max_bytes`` of message payload,
    or ``max_duration_s`` of receive time) the parts are ``output_dir/name_000``, ``name_001``, ...
    Connections are added to each part on first use, so every part is self-contained.
    """

    def __init__(
        self,
        output_dir: PathLike,
        name: str,
        storage: str = "mcap",
        max_bytes: int = 0,
        max_duration_s: float = 0.0,
    ) -> None:
        if int(max_bytes) < 0:
            raise BagError(f"max_bag_size: must be >= 0 bytes (0 = no split), got {max_bytes}")
        if float(max_duration_s) < 0:
            raise BagError(f"max_bag_duration: must be >= 0 s (0 = no split), got {max_duration_s}")
        if not name or "/" in name:
            raise BagError(f"bag_name: must be a plain non-empty name, got {name!r}")
        self.output_dir = Path(output_dir).expanduser()
        self.name = name
        self.plugin = storage_plugin(storage)
        self.max_bytes = int(max_bytes)
        self.max_duration_ns = int(round(float(max_duration_s) * 1e9))
        self.split = self.max_bytes > 0 or self.max_duration_ns > 0
        self.paths: list[Path] = []
        self.message_count = 0
        self._writer: Optional[Writer] = None
        self._connections: dict[tuple[str, str], Connection] = {}
        self._bytes = 0
        self._first_ns: Optional[int] = None
        target = self.output_dir / (f"{name}_000" if self.split else name)
        if target.exists():
            raise BagError(f"bag {target} exists already; choose another bag_name or output_dir")

    def write(self, topic: str, type_name: str, timestamp_ns: int, cdr: bytes) -> None:
        """Append one CDR-serialised message received at ``timestamp_ns``."""
        if self._writer is not None and self._must_split(timestamp_ns, len(cdr)):
            self._close_current()
        if self._writer is None:
            self._open_next()
        writer = self._writer
        assert writer is not None
        key = (topic, type_name)
        connection = self._connections.get(key)
        if connection is None:
            connection = writer.add_connection(topic, type_name, typestore=ros2_typestore())
            self._connections[key] = connection
        writer.write(connection, int(timestamp_ns), cdr)
        self._bytes += len(cdr)
        self._first_ns = timestamp_ns if self._first_ns is None else self._first_ns
        self.message_count += 1

    def close(self) -> None:
        """Finish the open part (writes its index and metadata.yaml). Safe to call twice."""
        self._close_current()

    def _must_split(self, timestamp_ns: int, size: int) -> bool:
        if self.max_bytes and self._bytes > 0 and self._bytes + size > self.max_bytes:
            return True
        return bool(
            self.max_duration_ns
            and self._first_ns is not None
            and timestamp_ns - self._first_ns >= self.max_duration_ns
        )

    def _open_next(self) -> None:
        name = f"{self.name}_{len(self.paths):03d}" if self.split else self.name
        path = self.output_dir / name
        if path.exists():
            raise BagError(f"bag {path} exists already; choose another bag_name or output_dir")
        self.output_dir.mkdir(parents=True, exist_ok=True)
        writer = Writer(path, version=BAG_VERSION, storage_plugin=self.plugin)
        writer.open()
        self._writer = writer
        self._connections = {}
        self._bytes = 0
        self._first_ns = None
        self.paths.append(path)

    def _close_current(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def __enter__(self) -> SplitBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
