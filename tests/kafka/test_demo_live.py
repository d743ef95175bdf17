"""``sentistream demo --live``: the built-in sample sent as a live call, its rows shown
while it plays (partial ones marked ``~``), on the real broker."""

from __future__ import annotations

import re

import pytest
from test_stream_e2e import stream_config

from sentistream.pipelines.demo.local import DemoSettings, run_demo

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_demo_live_prints_partial_and_final_rows_and_the_call_row(
    kafka_bootstrap, tmp_path, capsys
):
    demo = DemoSettings(bootstrap=kafka_bootstrap, output=str(tmp_path / "out"), live=True)
    assert run_demo(demo, stream_config()) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^\+\s*[\d.]+s([~ ])\s*([\d.]+)-\s*([\d.]+)s", out, re.MULTILINE)
    assert any(mark == "~" for mark, _, _ in rows), out
    assert any(mark == " " for mark, _, _ in rows), out
    assert "CALL demo-live" in out
    # Rows came while the 20 s sample played: the first long before the last.
    times = [float(t) for t in re.findall(r"^\+\s*([\d.]+)s[~ ]", out, re.MULTILINE)]
    assert times[0] < times[-1] - 8.0, out
