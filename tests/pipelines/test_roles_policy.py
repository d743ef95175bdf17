"""Stereo call recordings: a role per channel, overlapping speech kept apart, and a
modality policy that never runs a disabled model (counted through Beam metrics)."""

from __future__ import annotations

import duckdb
import pytest

from sentistream.pipelines import batch

pytestmark = pytest.mark.slow


def test_roles_per_channel_and_policy_never_runs_disabled_models(stereo_call, tmp_path):
    call, _ = stereo_call
    out = tmp_path / "out"
    result = batch.run(
        [
            "--input",
            str(call),
            "--output",
            str(out),
            "--channel-roles",
            "agent,customer",
            "--policy",
            "agent=text;customer=face,voice,text",
            "--policy-id",
            "eu-workplace",
            "--no-asr",
            "--threads",
            "1",
        ]
    )
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT channel, role, segmenter, start_s, end_s, face_present, face_reason, "
        f"voice_present, voice_reason, modalities_enabled, policy_id, policy_rule "
        f"FROM read_parquet('{out}/scores/**/*.parquet') WHERE segmenter = 'vad' "
        f"ORDER BY channel, start_s"
    ).fetchall()
    by_channel = {ch: [r for r in rows if r[0] == ch] for ch in (0, 1)}
    assert by_channel[0] and by_channel[1], rows
    agent, customer = by_channel[0][0], by_channel[1][0]
    assert agent[1] == "agent" and customer[1] == "customer"
    assert agent[3] < 1.0 and 2.5 < customer[3] < 3.5
    assert customer[3] < agent[4]  # overlapping speech, kept as two segments
    for r in by_channel[0]:
        assert r[6] == "disabled_by_policy" and r[8] == "disabled_by_policy"
        assert r[9] == "text" and r[10] == "eu-workplace" and r[11] == "role:agent"
    assert all(r[5] and r[7] for r in by_channel[1])
    assert all(r[9] == "face,voice,text" for r in by_channel[1])

    # The models saw exactly the customer's segments: never an agent's.
    all_rows = con.execute(
        f"SELECT role, face_present OR face_reason = 'no_face', voice_present "
        f"FROM read_parquet('{out}/scores/**/*.parquet')"
    ).fetchall()
    face_inputs = sum(1 for role, faced, _ in all_rows if role == "customer" and faced)
    voice_inputs = sum(1 for role, _, voiced in all_rows if role == "customer" and voiced)
    assert result.counters["sentistream.face/model_inputs"] == face_inputs
    assert result.counters["sentistream.voice/model_inputs"] == voice_inputs
    assert face_inputs >= 1 and voice_inputs >= 1
