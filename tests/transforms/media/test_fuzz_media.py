"""A short, seeded run of the media mutation fuzzer (``benchmarks/fuzz_media.py``): every
mutated file decodes or is refused with ``MediaDecodeError``; none raises another
exception, crashes the decoding process or hangs it. The long run is the benchmark's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_mutated_media_decodes_or_is_refused_cleanly(tmp_path: Path) -> None:
    report = tmp_path / "fuzz.json"
    cmd = [sys.executable, str(REPO / "benchmarks/fuzz_media.py"), "--cases", "600"]
    cmd += ["--minutes", "5", "--out", str(tmp_path), "--json", str(report)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    result = json.loads(report.read_text())
    assert result["cases"] == 600, run.stderr[-2000:]
    assert result["findings"] == []
    assert result["ok"] > 100 and result["refused"] > 50  # both paths exercised
    assert run.returncode == 0
