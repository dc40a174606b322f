"""`depth-pose` command line: one subcommand per module in ``depth_pose_ros.commands``.

Each command module exposes ``register(subparsers)`` which adds its parser and sets
``func=callable(args) -> int``. Keeping commands in separate modules keeps start-up fast (torch is
imported only by the commands that need it) and lets layers add commands without touching this file.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Order is the order shown in --help.
COMMANDS = ("demo", "run", "vo", "eval", "train", "finetune", "export", "synth")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="depth-pose",
        description="Self-supervised monocular depth, optical flow and ego-motion.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"depth_pose_ros.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"depth_pose_ros.commands.{name}":
                continue  # command not part of this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"depth-pose {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
