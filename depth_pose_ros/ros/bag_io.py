"""Bag files for the recorder and player: rosbags' writer with splitting, a reader for any bag kind.

rosbag2 itself (the C++ library behind ``ros2 bag``) is not available as a wheel, so both tools use
the pure-Python ``rosbags`` library. Messages cross this module as CDR bytes (what DDS carries and
rosbag2 stores), so recording and playing ROS 2 bags never deserialises a message; ROS 1 bags are
converted to CDR with the ROS 2 Jazzy typestore (rosbags drops ROS 1's ``Header.seq`` there).

Why splitting writes *separate* bags: ``rosbags.rosbag2.Writer`` writes one storage file per bag.
Each part is therefore a complete, independently readable bag directory ``<name>_<NNN>``, and
:func:`resolve_bag_paths` turns a folder of parts back into the list of bags to read in order.
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

PathLike = Union[str, Path]

#: The message types the recorder and player handle by default (camera streams).
CAMERA_TYPES: tuple[str, ...] = (
    "sensor_msgs/msg/Image",
    "sensor_msgs/msg/CompressedImage",
    "sensor_msgs/msg/CameraInfo",
)

#: Storage names accepted by the ``storage`` parameter.
STORAGE_NAMES: tuple[str, ...] = ("mcap", "sqlite3")

#: rosbag2 metadata version written (9 is what Jazzy's ``ros2 bag`` writes).
BAG_VERSION = 9


class BagError(ValueError):
    """A bag that cannot be opened / written, or a bad bag-related argument (named in the text)."""


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


def msg_class(type_name: str) -> type:
    """``"sensor_msgs/msg/Image"`` (or ``"sensor_msgs/Image"``) -> the rclpy message class."""
    parts = str(type_name).strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f"message type {type_name!r}: expected 'package/msg/Type'")
    try:
        module = importlib.import_module(f"{parts[0]}.{parts[1]}")
        return getattr(module, parts[2])
    except (ImportError, AttributeError) as exc:
        raise BagError(f"message type {type_name!r} is not importable in this environment: {exc}") from exc


def normalize_type_name(type_name: str) -> str:
    """``"sensor_msgs/Image"`` -> ``"sensor_msgs/msg/Image"`` (what rosbag2 and DDS graphs use)."""
    parts = str(type_name).strip().split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else "/".join(parts)


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
        self._connections: dict[tuple[str, str], object] = {}
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
        key = (topic, type_name)
        connection = self._connections.get(key)
        if connection is None:
            assert self._writer is not None
            connection = self._writer.add_connection(topic, type_name, typestore=ros2_typestore())
            self._connections[key] = connection
        self._writer.write(connection, int(timestamp_ns), cdr)
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


# ---------------------------------------------------------------------------------------- reading
def resolve_bag_paths(path: PathLike) -> list[Path]:
    """Bag argument -> paths for ``AnyReader``.

    Accepts a rosbag2 directory (holding metadata.yaml), a storage file inside one (``.mcap`` /
    ``.db3``: its directory is used), a ROS 1 ``.bag`` file, or a folder of split parts written
    by :class:`SplitBagWriter` (each sub-directory with a metadata.yaml, in name order).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise BagError(f"bag: {p} does not exist")
    if p.is_file():
        if p.suffix == ".bag":
            return [p]
        if p.suffix in (".mcap", ".db3") and (p.parent / "metadata.yaml").is_file():
            return [p.parent]
        raise BagError(f"bag: {p} is neither a ROS 1 .bag nor a file of a rosbag2 directory")
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
    """Reads rosbag2 (mcap / sqlite3, possibly split) or ROS 1 bags, yielding ROS 2 CDR messages."""

    def __init__(self, path: PathLike) -> None:
        self.paths = resolve_bag_paths(path)
        self.is_ros1 = self.paths[0].suffix == ".bag"
        try:
            self._reader = AnyReader(self.paths, default_typestore=ros2_typestore())
            self._reader.open()
        except Exception as exc:  # rosbags raises several unrelated error types
            raise BagError(f"bag: cannot open {', '.join(map(str, self.paths))}: {exc}") from exc

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
        for connection, timestamp, raw in self._reader.messages(connections, start=start_ns, stop=stop_ns):
            type_name = _ros2_type(connection.msgtype)
            if self.is_ros1:
                data = bytes(store.ros1_to_cdr(raw, type_name))
            else:
                data = bytes(raw)
            yield BagMessage(connection.topic, type_name, int(timestamp), data)

    def close(self) -> None:
        """Close the underlying files."""
        self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ros2_type(type_name: str) -> str:
    return "tf2_msgs/msg/TFMessage" if type_name == "tf/msg/tfMessage" else normalize_type_name(type_name)
