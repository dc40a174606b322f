"""Small network configurations for fast tests (width 0.25, tiny decoders, 64x192 inputs)."""
from __future__ import annotations

from depth_pose_ros.nets.config import NetConfig

H, W = 64, 192


def small_cfg(**sections: dict) -> NetConfig:
    """A cheap ``NetConfig``; ``sections`` override whole-section keys, e.g. ``recurrent={"type": "lstm"}``."""
    base: dict = {
        "encoder": {"depth": 18, "width": 0.25},
        "recurrent": {"type": "gru", "levels": [4], "hidden_channels": [16]},
        "depth": {"channels": [8, 8, 16, 16, 32], "finest_level": 1},
        "flow": {
            "feature_channels": [16, 16, 8, 8],
            "search_range": 2,
            "estimator_channels": [[16, 16], [16, 16], [16, 8], [8, 8]],
            "occlusion_mask": True,
        },
    }
    for name, values in sections.items():
        base.setdefault(name, {}).update(values)
    return NetConfig.from_dict(base, where="test config")
