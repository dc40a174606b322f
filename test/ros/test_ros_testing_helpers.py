"""The test helpers themselves: environment isolation and child-process clean-up."""
from __future__ import annotations

import signal
import time

import pytest
from ros_harness import ChildProcess, isolated_ros_env, spin_until

IGNORE_SIGINT = ("import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                 "print('ready', flush=True); time.sleep(60)")


def _wait_for_output(child: ChildProcess, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in child.output():
        assert time.monotonic() < deadline, f"child never printed {text!r}"
        time.sleep(0.05)


def test_isolated_env_sets_domain_discovery_logs_and_drops_bootstrap_flag(tmp_path):
    base = {"_ROS_WHEELS_BOOTSTRAP_COMPLETE": "1", "ROS_LOCALHOST_ONLY": "1", "PATH": "/bin"}
    env = isolated_ros_env(tmp_path / "logs", domain_id=42, base=base)
    assert "_ROS_WHEELS_BOOTSTRAP_COMPLETE" not in env and "ROS_LOCALHOST_ONLY" not in env
    assert env["ROS_DOMAIN_ID"] == "42" and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"
    assert env["ROS_LOG_DIR"] == str(tmp_path / "logs") and (tmp_path / "logs").is_dir()
    assert env["FASTDDS_BUILTIN_TRANSPORTS"] == "LARGE_DATA" and env["PATH"] == "/bin"
    ids = {int(isolated_ros_env(tmp_path, base={})["ROS_DOMAIN_ID"]) for _ in range(50)}
    assert len(ids) > 10 and all(1 <= i <= 200 for i in ids)


def test_stop_escalates_to_sigterm_when_sigint_is_ignored(tmp_path):
    child = ChildProcess(["-c", IGNORE_SIGINT], isolated_ros_env(tmp_path), tmp_path / "child.log")
    _wait_for_output(child, "ready")
    start = time.monotonic()
    assert child.stop(timeout=1.0) == -signal.SIGTERM
    assert time.monotonic() - start < 5 and not child.running()


def test_wait_timeout_stops_the_child_and_reports_its_output(tmp_path):
    code = "import time; print('sleeping', flush=True); time.sleep(60)"
    child = ChildProcess(["-c", code], isolated_ros_env(tmp_path), tmp_path / "child.log")
    _wait_for_output(child, "sleeping")
    with pytest.raises(TimeoutError, match="still running after 0.5 s; output:\nsleeping"):
        child.wait(timeout=0.5)
    assert not child.running()


def test_spin_until_raises_when_a_child_crashes(tmp_path):
    class NoExecutor:  # the condition never holds; only the crash check can end the wait
        def spin_once(self, timeout_sec: float) -> None:
            time.sleep(timeout_sec)

    child = ChildProcess(["-c", "import sys; print('boom'); sys.exit(3)"], isolated_ros_env(tmp_path),
                         tmp_path / "crash.log")
    with pytest.raises(RuntimeError, match=r"exited with 3:\nboom"):
        spin_until(NoExecutor(), lambda: False, timeout=30.0, children=[child])
    assert spin_until(NoExecutor(), lambda: True, timeout=0.0)
