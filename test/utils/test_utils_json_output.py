"""The one JSON writer: plain types, NaN / inf as null, strict output."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from depth_pose_ros.utils.json_output import dumps, jsonable


def test_nan_and_inf_become_null_at_any_depth_and_numpy_becomes_plain() -> None:
    value = {"a": float("nan"), 3: [np.float32(1.5), (np.inf, -np.inf)], "arr": np.array([[1.0, np.nan]]),
             "n": np.int64(7), "p": Path("/x/y")}
    out = jsonable(value)
    assert out == {"a": None, "3": [1.5, [None, None]], "arr": [[1.0, None]], "n": 7, "p": "/x/y"}
    assert type(out["n"]) is int and type(out["3"][0]) is float
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["a"] is None


def test_plain_json_dumps_would_have_written_nan() -> None:
    """The reason the helper exists: the standard library writes NaN unless told not to."""
    assert "NaN" in json.dumps({"a": math.nan})
    with pytest.raises(ValueError):
        json.dumps({"a": math.nan}, allow_nan=False)
