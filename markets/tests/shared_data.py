"""Recorded market data from the shared folder beside the repository (never copied in).

Tests that use it skip with the reason when it is absent, e.g. on a fresh clone; set
``SHARED_DIR`` to the folder that holds ``data/`` to point elsewhere.
"""

import json
import os
from pathlib import Path
from typing import Any

import pytest


def shared_dir() -> Path:
    configured = os.environ.get("SHARED_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[3] / "shared"


def shared_path(relative: str) -> Path:
    """``<shared>/data/<relative>``, or skip the test saying what is missing."""
    path = shared_dir() / "data" / relative
    if not path.is_file():
        pytest.skip(f"shared data file {path} not found (set SHARED_DIR to the shared folder)")
    return path


def shared_json(relative: str) -> Any:
    return json.loads(shared_path(relative).read_text())
