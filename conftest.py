"""Fixtures shared by every app's tests."""

import os
from pathlib import Path

import pytest


@pytest.fixture
def shared_dir() -> Path:
    """``../shared`` beside the checkout (or ``$SHARED_DIR``); skips the test when absent."""
    path = Path(os.environ.get("SHARED_DIR", Path(__file__).resolve().parent.parent / "shared"))
    if not (path / "data").is_dir():
        pytest.skip(f"real market data not available: {path / 'data'} is absent (set SHARED_DIR)")
    return path
