"""eval.model_card: strict JSON, the generated table, and the card block replaced idempotently (the shipped card's
block is what its metrics.json renders to)."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from depth_pose_ros.commands.model_checks import main
from depth_pose_ros.eval.model_card import (
    BEGIN,
    END,
    card_path,
    dumps,
    jsonable,
    metrics_table,
    replace_metrics_block,
    update_card,
)
from depth_pose_ros.utils.paths import REPO_ROOT

MODEL_DIR = REPO_ROOT / "models" / "default"


def test_jsonable_nan_to_null() -> None:
    res = {"a": float("nan"), "b": [np.float32(1.5), float("inf")], "c": {"d": np.nan, "e": np.int64(3)}}
    text = dumps(res)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.5, None], "c": {"d": None, "e": 3}}
    assert jsonable(2.0) == 2.0


def test_table_handles_missing_and_null_values() -> None:
    res = {"real_depth": {"tum": {"title": "TUM", "coverage_mean": 0.5, "summary": {"abs_rel": None, "delta1": 0.4},
                                  "constant": {"abs_rel": 0.2, "delta1": math.nan}}},
           "notes": ["ddad_mini not found"]}
    table = metrics_table(res)
    assert "| TUM | depth AbsRel (median scaled) | - | constant depth 0.200 | 0.500 |" in table
    assert "constant depth -" in table and "Note: ddad_mini not found" in table
    assert "synthetic" not in table  # absent parts give no rows


def test_replace_block_idempotent_and_keeps_prose() -> None:
    prose = "# Card\n\nintro\n\n## Metrics\nbefore\n\n"
    once = replace_metrics_block(prose, "| a | b |")  # no markers yet: a section is appended
    assert once.startswith(prose.rstrip("\n")) and BEGIN in once and END in once
    twice = replace_metrics_block(once, "| a | b |")
    assert twice == once
    new = replace_metrics_block(once + "\nafter\n", "| c | d |")
    assert "| a | b |" not in new and "| c | d |" in new and new.endswith("\nafter\n")
    assert new.count(BEGIN) == 1 and new.count(END) == 1
    with pytest.raises(ValueError, match="closing"):
        replace_metrics_block(f"x\n{BEGIN}\n| a |\n", "| b |")


def test_shipped_card_block_comes_from_its_json() -> None:
    card = (MODEL_DIR / "MODEL_CARD.md").read_text()
    res = json.loads((MODEL_DIR / "metrics.json").read_text())
    assert card.count(BEGIN) == 1 and card.count(END) == 1, "MODEL_CARD.md needs the metrics markers"
    assert replace_metrics_block(card, metrics_table(res)) == card, \
        "the card's metrics block differs from metrics.json: run benchmarks/evaluate_model.py ... --card"
    assert "NaN" not in (MODEL_DIR / "metrics.json").read_text()


def test_evaluate_model_from_json_card_refresh(tmp_path, capsys) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy(MODEL_DIR / "metrics.json", folder / "metrics.json")
    (folder / "MODEL_CARD.md").write_text("# Card of m\n\nprose stays\n")
    assert main([str(folder), "--from-json", str(folder / "metrics.json"), "--card"]) == 0
    first = (folder / "MODEL_CARD.md").read_text()
    assert "prose stays" in first and BEGIN in first
    assert "updated" in capsys.readouterr().out
    assert main([str(folder), "--from-json", str(folder / "metrics.json"), "--card"]) == 0
    assert (folder / "MODEL_CARD.md").read_text() == first
    assert "unchanged" in capsys.readouterr().out
    assert not update_card(folder / "MODEL_CARD.md", json.loads((folder / "metrics.json").read_text()))
    assert card_path(folder) == card_path(folder / "model.safetensors") == folder / "MODEL_CARD.md"
