#!/usr/bin/env python3
"""Every metric of a model card, per domain, from one command: the numbers in ``models/*/MODEL_CARD.md`` come from here.

The checks themselves live in ``depth_pose_ros/commands/model_checks.py`` (what each row measures, and the
options: ``--help``), so that the tests of the shipped card import the package, not this script. The model
card's numbers:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluate_model.py models/default \
        --json models/default/metrics.json --card
"""
from __future__ import annotations

from depth_pose_ros.commands.model_checks import main

if __name__ == "__main__":
    raise SystemExit(main())
