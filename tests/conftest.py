"""Shared fixtures. Media is generated at test time; real labelled data comes from
``../shared/data`` (or ``$SENTISTREAM_DATA``) and tests that need it skip where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_data_dir() -> Path:
    return Path(os.environ.get("SENTISTREAM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the labelled corpora; skips the test where they are not on this machine."""
    root = shared_data_dir()
    if not (root / "README.md").is_file():
        pytest.skip(f"labelled data not found at {root} (set SENTISTREAM_DATA)")
    return root
