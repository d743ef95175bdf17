"""The call-level table of a real batch run on a generated stereo call, checked against
its own segment rows and the samples that were written; resuming a backfill; the
progress line on a terminal and in a log."""

from __future__ import annotations

import math
import os
import pty
import subprocess
import sys

import duckdb
import numpy as np
import pytest

from sentistream.pipelines import batch
from sentistream.pipelines.resume import scored_video_ids
from sentistream.transforms.calls import merge

pytestmark = pytest.mark.slow
ARGS = ["--channel-roles", "agent,customer", "--threads", "1", "--no-progress"]


def rows(sql: str) -> list[dict]:
    cur = duckdb.connect().execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def scored(stereo_call, tmp_path_factory):
    path, samples = stereo_call
    out = tmp_path_factory.mktemp("calls") / "out"
    result = batch.run(["--input", str(path), "--output", str(out), *ARGS])
    return path, out, samples, result


def _total(intervals) -> float:
    return sum(e - s for s, e in intervals)


def test_call_rows_agree_with_the_segment_rows_and_the_audio(scored):
    _, out, samples, result = scored
    calls = {
        r["speaker"]: r for r in rows(f"SELECT * FROM read_parquet('{out}/calls/**/*.parquet')")
    }
    segments = rows(f"SELECT * FROM read_parquet('{out}/scores/**/*.parquet')")
    assert set(calls) == {"agent", "customer"} and result.counters["sentistream.calls/rows"] == 2
    vad = [s for s in segments if s["segmenter"] == "vad"]
    speech = {ch: [(s["start_s"], s["end_s"]) for s in vad if s["channel"] == ch] for ch in (0, 1)}
    for role, ch in (("agent", 0), ("customer", 1)):
        call = calls[role]
        mine = [s for s in segments if s["channel"] == ch]
        assert call["segments"] == len(mine) and call["complete"] and call["speakers"] == 2
        assert call["recording_duration_s"] == pytest.approx(9.0, abs=0.1)
        assert call["talk_time_s"] == pytest.approx(_total(speech[ch]), abs=2e-3)
        words = sum(len((s["transcript"] or "").split()) for s in mine if s["segmenter"] == "vad")
        assert call["words"] == words > 5
        valued = [s for s in mine if s["fused_valence"] is not None]
        weights = [s["end_s"] - s["start_s"] for s in valued]
        weighted = sum(s["fused_valence"] * w for s, w in zip(valued, weights, strict=True))
        weighted /= sum(weights)
        assert call["fused_valence"] == pytest.approx(weighted, abs=1e-3)
        # the speech level of the samples as written (before AAC) over the speech segments
        audio = np.concatenate(
            [samples[ch, round(s * 16000) : round(e * 16000)] for s, e in speech[ch]]
        )
        expected_db = 10 * math.log10(float(np.mean(np.square(audio, dtype=np.float64))))
        assert call["loudness_dbfs"] == pytest.approx(expected_db, abs=0.75)
    assert calls["customer"]["loudness_dbfs"] < calls["agent"]["loudness_dbfs"] - 3  # at half gain
    # the customer starts while the agent talks: one interruption, and the overlap
    assert (calls["customer"]["interruptions"], calls["agent"]["interruptions"]) == (1, 0)
    overlap = _total(speech[0]) + _total(speech[1]) - _total(merge(speech[0] + speech[1]))
    assert overlap > 1.0
    assert calls["customer"]["overlap_s"] == pytest.approx(overlap, abs=2e-3)
    union = _total(merge(speech[0] + speech[1]))
    assert calls["agent"]["non_talk_time_s"] == pytest.approx(9.0 - union, abs=0.1)


def test_a_rerun_skips_what_is_scored_unless_rescore(scored):
    path, out, _, first = scored
    again = batch.run(["--input", str(path), "--output", str(out), *ARGS])
    assert again.skipped == 1 and again.counters == {}
    assert len(rows(f"SELECT * FROM read_parquet('{out}/calls/**/*.parquet')")) == 2


def test_only_the_same_models_and_policy_count_as_scored(scored):
    _, out, _, _ = scored
    (call,) = rows(f"SELECT * FROM read_parquet('{out}/calls/**/*.parquet') WHERE channel = 1")
    ids = {m: call[f"{m}_model_id"] for m in ("face", "voice", "text")}
    same = scored_video_ids(str(out), call["policy_id"], ids, call["fusion_model_id"])
    assert same == {call["video_id"]}
    assert not scored_video_ids(str(out), "other-policy", ids, call["fusion_model_id"])
    other_voice = ids | {"voice": "voice@9"}
    assert not scored_video_ids(str(out), call["policy_id"], other_voice, call["fusion_model_id"])
    assert not scored_video_ids(str(out), call["policy_id"], ids, "fusion@9")
    assert not scored_video_ids(str(out / "nothing-here"), call["policy_id"], ids, "x")


def _run_cli(out, *extra, tty: bool) -> tuple[str, str]:
    """``sentistream run`` on the built-in sample; (stdout, stderr), stderr on a
    pseudo-terminal when ``tty``."""
    cmd = [sys.executable, "-m", "sentistream.pipelines.cli", "run", "--output", str(out), *extra]
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
        return done.stdout, done.stderr
    master, slave = pty.openpty()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=slave, text=True) as proc:
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.stdout.read() if proc.stdout else ""
        assert proc.wait(timeout=300) == 0
    os.close(master)
    return stdout, b"".join(chunks).decode("utf-8", "replace")


def test_progress_on_a_terminal_and_as_log_lines_otherwise(tmp_path):
    out = tmp_path / "out"
    stdout, terminal = _run_cli(out, tty=True)
    assert "\r1/1 files" in terminal and "x real time" in terminal and "ETA 0:00" in terminal
    assert "Loading weights" not in terminal  # the libraries' own bars are off
    assert "1 call rows" in stdout
    stdout, log = _run_cli(out, tty=False)  # scored already: skipped, nothing to show
    assert "1 input(s) skipped" in stdout and "\r" not in log
    stdout, log = _run_cli(out, "--rescore", tty=False)
    assert "progress: 1/1 files" in log and "\r" not in log and "Loading weights" not in log
