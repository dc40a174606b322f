"""Pairing of images with camera_info (and stereo partners) by stamp, and the latest-frame slot.

Why not ``message_filters``: it is not available as a wheel, and its approximate-time policy waits for a
full set of messages before anything is processed, which for a camera whose camera_info stops (or never
existed) means the node silently does nothing. Here an image is paired when it is *processed*:

* :class:`StampedCache` keeps the last few camera_info (or right images) keyed by their header stamp;
  :meth:`StampedCache.lookup` returns the exact stamp when present, else the nearest entry within a
  tolerance (the project's one pairing rule, :func:`depth_pose_ros.data.rosbag_io.nearest_stamp`, which
  the bag frame source applies too), and can wait a little for the exact one (camera drivers publish
  image and camera_info together, but they travel on two topics and the image may win the race).
  Entries are evicted in *arrival* order, not by stamp: after a stamp jump back (a bag loop, a restarted
  driver) the new entries have the smallest stamps, and evicting by stamp would throw each one away as it
  arrives. Entries from before such a jump are dropped by the node when it *processes* the first image
  after the jump (:meth:`StampedCache.discard_after`), not when a new entry arrives: an image from before
  the jump may still be waiting for the worker and must still find its camera_info.
* :class:`LatestSlot` holds the newest unprocessed frames only (``capacity``, the node's is two). A frame
  arriving at a full slot pushes out the oldest one (counted as dropped), so a slow estimator always
  works on fresh frames and no backlog can build up: latency stays bounded by ``capacity`` processing
  times. Two, not one: reliable delivery hands over frames in order, so a frame held back while one of
  its fragments is re-sent arrives together with the next one; a slot of one would drop one of the pair
  although the estimator keeps up with the camera.

Stamps are integer nanoseconds (exact, as on the wire). No ROS imports: these are plain data structures.
"""
from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Generic, Optional, TypeVar

from depth_pose_ros.data.rosbag_io import nearest_stamp

T = TypeVar("T")


@dataclass(frozen=True)
class Match(Generic[T]):
    """Result of :meth:`StampedCache.lookup`: the value, its stamp and how far it is from the query."""

    value: T
    stamp_ns: int
    offset_ns: int  # entry stamp - query stamp

    @property
    def exact(self) -> bool:
        return self.offset_ns == 0


class StampedCache(Generic[T]):
    """Bounded, thread-safe store of values keyed by header stamp (ns), the earliest *arrived* evicted first.

    Written from the subscription thread, read from the worker thread.
    """

    def __init__(self, capacity: int = 30) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._stamps: list[int] = []  # sorted, for the nearest-stamp search
        self._values: dict[int, T] = {}  # in arrival order (a repeated stamp counts as a new arrival)
        self._cond = threading.Condition()
        self.received = 0  # entries ever added

    def __len__(self) -> int:
        with self._cond:
            return len(self._stamps)

    def add(self, stamp_ns: int, value: T) -> None:
        """Store ``value`` under ``stamp_ns`` (a repeated stamp replaces the older value)."""
        stamp_ns = int(stamp_ns)
        with self._cond:
            if stamp_ns in self._values:
                del self._values[stamp_ns]  # re-inserted below: it arrived again, now
            else:
                bisect.insort(self._stamps, stamp_ns)
            self._values[stamp_ns] = value
            while len(self._values) > self.capacity:
                self._remove(next(iter(self._values)))
            self.received += 1
            self._cond.notify_all()

    def discard_after(self, stamp_ns: int) -> int:
        """Remove the entries with a stamp later than ``stamp_ns``; returns how many were removed.

        After the images jumped back in time, entries from before the jump are later than the new
        images and would otherwise still be found as "nearest" matches.
        """
        with self._cond:
            i = bisect.bisect_right(self._stamps, int(stamp_ns))
            stale = self._stamps[i:]
            for s in stale:
                del self._values[s]
            del self._stamps[i:]
            return len(stale)

    def clear(self) -> None:
        with self._cond:
            self._stamps.clear()
            self._values.clear()

    def _remove(self, stamp_ns: int) -> None:
        """Drop one entry (caller holds the lock)."""
        del self._values[stamp_ns]
        del self._stamps[bisect.bisect_left(self._stamps, stamp_ns)]

    def lookup(self, stamp_ns: int, tolerance_ns: int, wait_s: float = 0.0) -> Optional[Match[T]]:
        """Entry at exactly ``stamp_ns``, else the nearest within ``tolerance_ns``, else None.

        ``wait_s`` > 0: when there is no exact entry yet, wait up to that long for one to arrive.
        """
        stamp_ns = int(stamp_ns)
        deadline = time.monotonic() + max(0.0, wait_s)
        with self._cond:
            while stamp_ns not in self._values:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._cond.wait(remaining):
                    break
            if stamp_ns in self._values:
                return Match(self._values[stamp_ns], stamp_ns, 0)
            i = nearest_stamp(self._stamps, stamp_ns, tolerance_ns)
            if i is None:
                return None
            best = self._stamps[i]
            return Match(self._values[best], best, best - stamp_ns)

    def latest(self) -> Optional[Match[T]]:
        """Newest entry (offset 0), or None when empty."""
        with self._cond:
            if not self._stamps:
                return None
            s = self._stamps[-1]
            return Match(self._values[s], s, 0)


class LatestSlot(Generic[T]):
    """Holds at most ``capacity`` items, oldest taken first: ``put`` to a full slot pushes out the oldest
    unprocessed item, ``take`` waits for the next.

    ``dropped`` counts items that were pushed out before anyone took them.
    """

    def __init__(self, capacity: int = 1) -> None:
        if capacity < 1:
            raise ValueError(f"capacity: must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0
        self.received = 0

    def put(self, item: T) -> bool:
        """Store ``item``; True when the slot was full and its oldest item was dropped."""
        with self._cond:
            replaced = len(self._items) >= self.capacity
            if replaced:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self.received += 1
            self._cond.notify_all()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The oldest pending item (removing it), waiting up to ``timeout`` s; None on timeout or close."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait_for(lambda: bool(self._items) or self._closed, timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        """Wake every waiter; later ``take`` calls return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def pending(self) -> bool:
        with self._cond:
            return bool(self._items)
