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


def pytest_collection_modifyitems(config, items):
    """Skip ``gpu`` tests where torch sees no CUDA device."""
    if not any("gpu" in item.keywords for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
