"""Process life cycle shared by the project's executables: init, signals, spin, clean shutdown.

Why our own signal handling: a recorder must close its bag on SIGINT *and* SIGTERM (what
``kill``, systemd and launch send), after draining messages already received. rclpy's default
handlers shut the context down from inside the signal, racing with callbacks that still write;
here a signal only sets an event, and the main loop finishes its work in order.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Optional

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

#: glibc ``mallopt`` parameters and the values :func:`reuse_large_allocations` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's upper limit on 64-bit systems
_TRIM_THRESHOLD_BYTES = 256 * 1024 * 1024


def reuse_large_allocations() -> bool:
    """Let glibc keep and reuse freed large blocks instead of returning them to the system at once.

    Why: by default every array above 128 KB is a fresh ``mmap`` and is unmapped when freed, so each
    camera-size image a node builds per frame (decoded image, registered depth, messages) pays a page
    fault for every 4 KB page it first touches -- often more than the computation on it. Raising the
    mmap threshold serves those blocks from the heap, where the same sizes are reused frame after
    frame. Returns False (and changes nothing) where glibc's ``mallopt`` is not available.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                   _TRIM_THRESHOLD_BYTES))


class RosArgumentsError(ValueError):
    """Command-line ``--ros-args`` that rcl cannot parse."""


@contextmanager
def ros_session(args: Optional[list[str]] = None) -> Iterator[tuple[Context, threading.Event]]:
    """Initialise a private rclpy context from ``args`` (``--ros-args ...``); yield (context, stop).

    ``stop`` is set by SIGINT or SIGTERM. The context is shut down and the previous signal handlers
    are restored on exit, so the function is also usable inside tests. Unparsable ``--ros-args``
    raise :class:`RosArgumentsError` (a ``ValueError``).
    """
    context = Context()
    try:
        rclpy.init(args=sys.argv if args is None else args, context=context,
                   signal_handler_options=SignalHandlerOptions.NO)
    except RuntimeError as exc:  # rclpy's RCLError: malformed --ros-args (e.g. a bad -p rule)
        raise RosArgumentsError(f"--ros-args: {exc}") from None
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda signum, frame: stop.set())
    try:
        yield context, stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        rclpy.try_shutdown(context=context)


def spin_until_stopped(
    node: Node,
    stop: threading.Event,
    *,
    done: Callable[[], bool] = lambda: False,
    period_s: float = 0.1,
) -> None:
    """Spin ``node`` until ``stop`` is set, ``done()`` is true or the context goes down."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        while not stop.is_set() and node.context.ok() and not done():
            executor.spin_once(timeout_sec=period_s)
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0.0)


def drain(node: Node, progress: Callable[[], int], *, quiet_s: float = 0.2, max_s: float = 2.0) -> None:
    """Keep executing callbacks already queued until ``progress()`` stops changing for ``quiet_s``.

    Used after a stop signal: messages DDS has already accepted (and acknowledged to a reliable
    publisher) are still handed to their callbacks instead of being lost. Bounded by ``max_s``.
    """
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + max_s
        last, quiet_since = progress(), time.monotonic()
        while node.context.ok() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.02)
            now, value = time.monotonic(), progress()
            if value != last:
                last, quiet_since = value, now
            elif now - quiet_since >= quiet_s:
                break
    finally:
        executor.remove_node(node)
        executor.shutdown(timeout_sec=0.0)
