"""Camera frames from ROS bags (rosbag2 sqlite3 / mcap, ROS 1 .bag) without ROS installed.

Reads through :class:`~depth_pose_ros.data.rosbag_io.BagReader` (the pure-Python ``rosbags`` library; the
bag forms :func:`~depth_pose_ros.data.rosbag_io.resolve_bag_paths` accepts), and decodes the messages with
the functions of :mod:`depth_pose_ros.data.rosbag_io`. One image topic (``sensor_msgs/Image`` with
encoding rgb8, bgr8, rgba8, bgra8, mono8, mono16 (and the 8UC1/8UC3/16UC1 aliases), or
``sensor_msgs/CompressedImage`` in any format OpenCV decodes) becomes the frames; a
``sensor_msgs/CameraInfo`` topic gives K (``k``, or ``K`` in ROS 1 bags) and the lens distortion
(``distortion_model`` + ``d``, or ``D`` in ROS 1 bags) -> ``Frame.distortion``, as the node reads them: an
unsupported model is warned about once and the images are used as they are; invalid coefficients make that
CameraInfo unusable (skipped with a warning, like an uncalibrated one). Images are not undistorted here.

* Topics: ``image_topic`` / ``info_topic`` choose explicitly; otherwise the only image topic of the bag
  is used (topics with "depth" in their name are skipped when that leaves exactly one), and the only
  CameraInfo topic, or the one in the image topic's namespace (``/cam/camera_info`` for
  ``/cam/image_raw/compressed``).
* Pairing (:func:`~depth_pose_ros.data.rosbag_io.pair_camera_infos`): each image takes the CameraInfo of
  its exact header stamp, else the nearest one within ``stamp_tolerance`` (the node's rule); otherwise the
  latest one before it (camera_info published once or latched), otherwise the first.
  A ``K`` argument overrides CameraInfo (then none is needed, and the frames carry no distortion).
* Stamps: the header stamp (the bag's receive time when the header stamp is zero); frames are
  ordered by stamp.
* Indexing: the bag is scanned once at construction, storing for every image its receive time
  and its rank among messages received at that same nanosecond. ``src[i]`` then asks the bag for that
  one nanosecond window, which every storage answers from its own index (sqlite query, mcap chunk
  index, ROS 1 chunk index) instead of re-reading the bag.
* 16-bit mono images are mapped to 8 bits by full-range scaling (65535 -> 255).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from depth_pose_ros.data.frame import Frame
from depth_pose_ros.data.rosbag_io import (
    COMPRESSED_TYPE,
    IMAGE_TYPE,
    INFO_TYPE,
    BagError,
    BagReader,
    camera_info_distortion,
    camera_info_K,
    compressed_msg_to_numpy,
    image_msg_to_numpy,
    pair_camera_infos,
    stamp_ns,
)
from depth_pose_ros.data.source import FrameSelection, FrameSource, as_K, fps_from_stamps
from depth_pose_ros.geometry.distortion import Distortion, UnknownDistortionModel


@dataclass
class _ImageEntry:
    conn: int  # index into the image connections
    log_ns: int  # receive time stored in the bag
    rank: int  # position among messages of that connection with the same log_ns
    stamp_ns: int  # header stamp (log time when the header stamp is zero)


def _topic_parent(topic: str) -> str:
    return topic.rsplit("/", 1)[0]


class RosbagSource(FrameSource):
    """Frames of one image topic of a rosbag2 (directory, .mcap, .db3) or ROS 1 (.bag) recording.

    Args:
        path: bag directory (with metadata.yaml), storage file, ROS 1 .bag, or a folder of split parts
            (:func:`~depth_pose_ros.data.rosbag_io.resolve_bag_paths`).
        image_topic / info_topic: topic names (auto-detected when None, see module docstring).
        K: intrinsics override (3x3, (fx, fy, cx, cy) or YAML path): no CameraInfo needed.
        stamp_tolerance: seconds within which a CameraInfo counts as "the one for this image".
        frames: sub-selection; gray: convert to gray on load.
    """

    # An open reader (and its connection objects) cannot cross processes: each process reopens the bag.
    _process_local = {"_reader": None}

    def __init__(self, path: Union[str, Path], image_topic: Optional[str] = None,
                 info_topic: Optional[str] = None, K: Any = None, stamp_tolerance: float = 0.05,
                 frames: FrameSelection = None, gray: bool = False) -> None:
        super().__init__(frames=frames, gray=gray)
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"bag not found: {path}")
        self.path = path
        self.K_override = as_K(K) if K is not None else None
        self.stamp_tolerance = float(stamp_tolerance)
        self._reader: Optional[BagReader] = None
        reader = self._open_reader()  # BagError naming the bag when it cannot be opened
        try:
            self._index(reader, image_topic, info_topic)
        except BagError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise BagError(f"cannot read bag {path}: {type(exc).__name__}: {exc}") from None

    # ---- opening and indexing -----------------------------------------------------------------
    def _open_reader(self) -> BagReader:
        if self._reader is None:
            self._reader = BagReader(self.path)
        return self._reader

    def _index(self, reader: BagReader, image_topic: Optional[str], info_topic: Optional[str]) -> None:
        topics = reader.topics()
        image_topics = sorted(t for t, ty in topics.items() if ty in (IMAGE_TYPE, COMPRESSED_TYPE))
        info_topics = sorted(t for t, ty in topics.items() if ty == INFO_TYPE)
        self.image_topic = self._choose_image_topic(image_topic, image_topics, topics)
        self.info_topic = self._choose_info_topic(info_topic, info_topics)
        if self.info_topic is None and self.K_override is None:
            raise BagError(f"bag {self.path}: no sensor_msgs/CameraInfo topic (topics: {sorted(topics)}); "
                           "pass K=... (intrinsics) or info_topic=...")
        self.compressed = topics[self.image_topic] == COMPRESSED_TYPE
        image_conns = reader.connections(self.image_topic)
        info_conns = reader.connections(self.info_topic) if self.info_topic else []
        conn_pos = {id(c): i for i, c in enumerate(image_conns)}

        entries: list[_ImageEntry] = []
        infos: list[tuple[int, np.ndarray, int, int, Optional[Distortion]]] = []  # stamp, K, width, height, D
        warned: set[str] = set()
        seen: dict[tuple[int, int], int] = {}  # (connection, log time) -> messages so far
        for conn, log_ns, raw in reader.raw_messages(image_conns + info_conns):
            msg = reader.deserialize(raw, conn.msgtype)
            st = stamp_ns(msg.header.stamp) or log_ns
            if conn.msgtype == INFO_TYPE:
                K = camera_info_K(msg)
                if K is not None:
                    try:
                        dist = camera_info_distortion(msg)
                    except UnknownDistortionModel as exc:
                        dist = None
                        self._warn_once(warned, f"model:{msg.distortion_model}", f"{self.info_topic}: {exc}")
                    except ValueError as exc:
                        self._warn_once(warned, f"bad:{exc}", f"{self.info_topic}: CameraInfo at {st} ns "
                                        f"skipped: distortion: {exc}")
                        continue
                    infos.append((st, K, int(msg.width), int(msg.height), dist))
                continue
            ci = conn_pos[id(conn)]
            key = (ci, log_ns)
            rank = seen.get(key, 0)
            seen[key] = rank + 1
            entries.append(_ImageEntry(conn=ci, log_ns=log_ns, rank=rank, stamp_ns=st))
        if not entries:
            raise BagError(f"bag {self.path}: topic {self.image_topic} has no messages")
        if self.K_override is None and not infos:
            raise BagError(f"bag {self.path}: topic {self.info_topic} holds no calibrated CameraInfo "
                           "(K all zeros, invalid distortion, or no messages); pass K=...")
        entries.sort(key=lambda e: (e.stamp_ns, e.log_ns))
        self._entries = entries
        stamps = np.array([e.stamp_ns for e in entries], dtype=np.int64)
        self._stamps = stamps.astype(np.float64) * 1e-9
        self._info_K: list[np.ndarray] = []
        self._info_size: list[tuple[int, int]] = []
        self._info_distortion: list[Optional[Distortion]] = []
        self._info_for = np.zeros(len(entries), dtype=np.int64)
        if self.K_override is None:
            infos.sort(key=lambda x: x[0])
            self._info_K = [x[1] for x in infos]
            self._info_size = [(x[2], x[3]) for x in infos]
            self._info_distortion = [x[4] for x in infos]
            self._info_for = pair_camera_infos(stamps, [x[0] for x in infos], int(self.stamp_tolerance * 1e9))
        self.fps = fps_from_stamps(self._stamps)
        kind = "bag" if self.path.suffix == ".bag" else "rosbag2"
        self.name = f"{kind}:{self.path.name}:{self.image_topic}"

    def _warn_once(self, warned: set[str], key: str, message: str) -> None:
        if key not in warned:
            warned.add(key)
            warnings.warn(f"bag {self.path}: {message}", stacklevel=4)

    def _choose_image_topic(self, requested: Optional[str], image_topics: list[str],
                            topics: dict[str, str]) -> str:
        if requested is not None:
            if requested not in topics:
                raise BagError(f"bag {self.path}: no topic {requested!r} (image topics: {image_topics})")
            if requested not in image_topics:
                raise BagError(f"bag {self.path}: topic {requested!r} is {topics[requested]}, "
                               "not sensor_msgs/Image or CompressedImage")
            return requested
        if not image_topics:
            raise BagError(f"bag {self.path}: no sensor_msgs/Image or CompressedImage topic "
                           f"(topics: {sorted(topics)})")
        candidates = image_topics
        if len(candidates) > 1:
            non_depth = [t for t in candidates if "depth" not in t.lower()]
            candidates = non_depth if len(non_depth) == 1 else candidates
        if len(candidates) > 1:
            raise BagError(
                f"bag {self.path}: several image topics {image_topics}; choose one with image_topic="
            )
        return candidates[0]

    def _choose_info_topic(self, requested: Optional[str], info_topics: list[str]) -> Optional[str]:
        if requested is not None:
            if requested not in info_topics:
                raise BagError(f"bag {self.path}: no CameraInfo topic {requested!r} (have {info_topics})")
            return requested
        if len(info_topics) <= 1:
            return info_topics[0] if info_topics else None
        prefix = self.image_topic
        while prefix:
            prefix = _topic_parent(prefix)
            near = [t for t in info_topics if _topic_parent(t) == prefix]
            if len(near) == 1:
                return near[0]
        if self.K_override is not None:
            return None
        raise BagError(
            f"bag {self.path}: several CameraInfo topics {info_topics}; choose one with info_topic="
        )

    # ---- FrameSource ----------------------------------------------------------------------------
    def _num_raw(self) -> int:
        return len(self._entries)

    def _raw_stamps(self) -> np.ndarray:
        return self._stamps

    def _read(self, raw_index: int) -> Frame:
        entry = self._entries[raw_index]
        try:
            reader = self._open_reader()
            # After a reopen (new process) the connection objects are new: look them up by topic again.
            conn = reader.connections(self.image_topic)[entry.conn]
            found = None
            for n, (_, _, raw) in enumerate(reader.raw_messages([conn], entry.log_ns, entry.log_ns + 1)):
                if n == entry.rank:
                    found = raw
                    break
            if found is None:
                raise BagError(f"bag {self.path}: message {raw_index} of {self.image_topic} vanished")
            msg = reader.deserialize(found, conn.msgtype)
            image = compressed_msg_to_numpy(msg) if self.compressed else image_msg_to_numpy(msg)
        except BagError:
            raise
        except Exception as exc:
            raise BagError(f"bag {self.path}: cannot read image {raw_index} of {self.image_topic}: "
                           f"{type(exc).__name__}: {exc}") from None
        distortion = None
        if self.K_override is not None:
            K = self.K_override.copy()
        else:
            j = int(self._info_for[raw_index])
            K = self._info_K[j].copy()
            distortion = self._info_distortion[j]
            w, h = self._info_size[j]
            if (w, h) != (0, 0) and (w, h) != (image.shape[1], image.shape[0]):
                raise BagError(f"bag {self.path}: CameraInfo on {self.info_topic} is for {w}x{h} but image "
                               f"{raw_index} of {self.image_topic} is {image.shape[1]}x{image.shape[0]}")
        return Frame(image=image, K=K, stamp=float(self._stamps[raw_index]), index=raw_index,
                     distortion=distortion, source=self.name)

    def close(self) -> None:
        """Close the bag (reopened on the next access)."""
        reader = getattr(self, "_reader", None)
        if reader is not None:
            try:
                reader.close()
            finally:
                self._reader = None

