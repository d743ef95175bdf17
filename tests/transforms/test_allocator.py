"""``tune_allocator``: Dask's fixed malloc trim threshold is undone once per process, and
nothing is changed in a plain process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CODE = (
    "from sentistream.transforms.allocator import tune_allocator\n"
    "print(tune_allocator(), tune_allocator())\n"
)


def _run(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_dask_worker_environment_is_tuned_once() -> None:
    assert _run(MALLOC_TRIM_THRESHOLD_="65536") == "True True"


def test_a_plain_process_or_an_explicit_mmap_threshold_is_left_alone() -> None:
    assert _run() == "False False"
    assert _run(MALLOC_TRIM_THRESHOLD_="65536", MALLOC_MMAP_THRESHOLD_="131072") == "False False"
