"""The reliability invariant on the generated corpus of bad, odd and hostile inputs
(``benchmarks/bad_inputs.py``): one real batch job over all of it exits 0, and every
input ends as score rows or as a dead letter with its reason (none lost), no secret file
content reaches a dead letter, and segment ids are unique."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bad_inputs():
    spec = importlib.util.spec_from_file_location("bad_inputs", REPO / "benchmarks/bad_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bad_inputs"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_bad_input_ends_as_rows_or_a_dead_letter(tmp_path: Path) -> None:
    bad = _bad_inputs()
    corpus = bad.build_corpus(tmp_path / "corpus")
    assert corpus.kinds >= 40
    job = bad.run_job(corpus, tmp_path / "run", timeout_s=1500)
    assert job["returncode"] == 0, job["stderr_tail"]
    report = bad.account(corpus, tmp_path / "run")
    assert report["problems"] == [], report["fates"]
    assert report["lost"] == 0 and report["rows"] >= 8 and report["dead"] >= 20
