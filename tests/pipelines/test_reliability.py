"""The reliability invariant on the generated corpus of bad, odd and hostile inputs
(``benchmarks/bad_inputs.py``): one real batch job over all of it exits 0, and every
input ends as score rows or as a dead letter with its reason (none lost), no secret file
content reaches a dead letter, and segment ids are unique."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bad_inputs():
    spec = importlib.util.spec_from_file_location("bad_inputs", REPO / "benchmarks/bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module
    spec.loader.exec_module(module)
    return module


def _ordinary_user() -> str | None:
    """``nobody`` when this test runs as root and that user can run this interpreter (then
    permission errors are real for the job), else None (the job runs as this user)."""
    if os.geteuid() != 0 or not shutil.which("runuser"):
        return None
    probe = ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import sentistream.models"]
    ok = subprocess.run(probe, capture_output=True, timeout=120).returncode == 0
    return "nobody" if ok else None


@pytest.mark.slow
def test_every_bad_input_ends_as_rows_or_a_dead_letter() -> None:
    bad = _bad_inputs()
    root = Path(tempfile.mkdtemp(prefix="sentistream-bad-"))  # reachable by any user
    root.chmod(0o755)
    try:
        corpus = bad.build_corpus(root / "corpus")
        assert corpus.kinds >= 50
        job = bad.run_job(corpus, root / "run", timeout_s=1500, user=_ordinary_user())
        report = bad.account(corpus, root / "run")
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    assert job["returncode"] == 0, job["stderr_tail"]
    assert report["problems"] == [], report["fates"]
    assert report["lost"] == 0 and report["rows"] >= 8 and report["dead"] >= 20
