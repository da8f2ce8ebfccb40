"""Shared test fixtures. Tests build the smallest data that shows a behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# TensorFlow's C++ start-up chatter hides real failures in CI logs.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    """The directory of small real samples copied from ../shared/data."""
    return FIXTURES
