"""``sentistream report``: one recording as a self-contained HTML file and a PNG."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from sentistream.pipelines.cli import main
from sentistream.pipelines.dashboard.app import show
from sentistream.pipelines.dashboard.queries import OutputStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def output(tmp_path_factory) -> Path:
    spec = importlib.util.spec_from_file_location(
        "dash_bench", REPO / "benchmarks/dashboard_speed.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    root = tmp_path_factory.mktemp("report") / "out"
    bench.write_synthetic_output(root, recordings=3, seed=5, days=1)
    return root


def test_report_is_self_contained_html_and_a_png(output, capsys):
    assert main(["report", "call-000001", "--output", str(output)]) == 0
    html_path, png_path = (Path(p) for p in capsys.readouterr().out.split())
    assert html_path == output / "reports" / "call-000001.html"
    page = html_path.read_text(encoding="utf-8")
    assert not re.search(r"<script[^>]+src=", page)  # nothing fetched: plotly.js is inlined
    assert "Plotly.newPlot" in page and len(page) > 1_000_000
    store = OutputStore(str(output))
    for call in store.call("call-000001"):  # the call rows, as the dashboard prints them
        for column in ("fused_valence", "trend", "talk_time_s", "interruptions"):
            assert f'<td data-column="{column}">{show(column, call[column])}</td>' in page
    said = [s["transcript"] for s in store.segments("call-000001") if s["transcript"]]
    assert said and all(t in page for t in said)
    assert all(f'"name":"{series}"' in page for series in ("fused", "face", "voice", "text"))
    png = png_path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_an_unknown_recording_is_a_clear_error(output, capsys):
    assert main(["report", "no-such-call", "--output", str(output)]) == 2
    assert "no rows for recording 'no-such-call'" in capsys.readouterr().err
