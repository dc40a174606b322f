"""Fixtures of the training tests: tiny configs of the shipped methods on tiny synthetic clips."""
from __future__ import annotations

import pytest
from tiny_configs import TINY_OVERRIDES, TINY_SPEC, tiny_config  # noqa: F401  (re-exported to the tests)


@pytest.fixture()
def tiny():
    return tiny_config
