"""Fixtures for ROS tests: an isolated DDS domain per test, a private rclpy context and executor.

Every test gets a random ``ROS_DOMAIN_ID`` (1..200), localhost-only discovery, LARGE_DATA transports
and logs under its tmp_path; the same variables are set in this process (monkeypatch) and returned
for child processes.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

rclpy = pytest.importorskip("rclpy", reason="rclpy (ROS 2 Jazzy wheels) is not installed")

from ros_harness import ISOLATION_KEYS, isolated_ros_env, ros_context  # noqa: E402


@pytest.fixture()
def ros_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Environment for children on this test's private domain (also applied to this process)."""
    env = isolated_ros_env(tmp_path / "ros_log")
    for key in ISOLATION_KEYS:
        monkeypatch.setenv(key, env[key])
    return env


@pytest.fixture()
def ros_ctx(ros_env) -> Iterator[object]:
    """An initialised rclpy context on the test's domain."""
    with ros_context(int(ros_env["ROS_DOMAIN_ID"])) as context:
        yield context


@pytest.fixture()
def executor(ros_ctx) -> Iterator[object]:
    """A single-threaded executor of ``ros_ctx``; nodes created by the test are added to it."""
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ros_ctx)
    yield ex
    for node in list(ex.get_nodes()):
        ex.remove_node(node)
        node.destroy_node()
    ex.shutdown(timeout_sec=0.0)
