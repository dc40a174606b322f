"""Where the project finds things on disk; one setting for the real data."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Root of the real datasets: ``$DEPTH_POSE_DATA``, default ``<repo>/../shared/data``."""
    env = os.environ.get("DEPTH_POSE_DATA")
    return Path(env).expanduser().resolve() if env else (REPO_ROOT.parent / "shared" / "data")


def models_dir() -> Path:
    """Shipped checkpoints: the source tree's ``models/`` or the installed share directory."""
    local = REPO_ROOT / "models"
    if local.is_dir():
        return local
    try:  # installed by colcon / pip data_files
        from importlib.resources import files  # noqa: F401

        import sys

        share = Path(sys.prefix) / "share" / "depth_pose_ros" / "models"
        if share.is_dir():
            return share
    except Exception:  # pragma: no cover - best effort only
        pass
    return local
