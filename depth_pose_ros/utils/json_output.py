"""The one way this package writes JSON results: plain types, and NaN / inf as null.

Why: metrics files are read by other tools and by the model card; strict JSON has no NaN, and a metric
that could not be computed (no valid pixel, a failed pose) is "unknown", which JSON spells ``null``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON types: dict keys as strings, tuples and arrays as lists, numpy scalars as numbers,
    paths as strings, NaN / inf as None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Path):
        return str(x)
    return x


def dumps(x: Any, indent: int | None = 2) -> str:
    """Strict JSON text of ``x`` (through :func:`jsonable`; never NaN)."""
    return json.dumps(jsonable(x), indent=indent, allow_nan=False)
