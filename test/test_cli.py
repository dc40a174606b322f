"""The ``depth-pose`` command list: every listed command exists (no name silently skipped)."""
from __future__ import annotations

import importlib

from depth_pose_ros.cli import COMMANDS, build_parser


def test_every_listed_command_has_a_module_and_a_parser() -> None:
    for name in COMMANDS:
        assert callable(importlib.import_module(f"depth_pose_ros.commands.{name}").register), name
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert tuple(sub.choices) == COMMANDS
