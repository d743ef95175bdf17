"""Mono recordings: diarized speakers on the rows, speakers mapped to roles, and a policy
that never runs a disabled model for a mapped role (counted through Beam metrics)."""

from __future__ import annotations

import duckdb
import pytest

from sentistream.pipelines import batch

pytestmark = pytest.mark.slow

POLICY = "agent=text;customer=face,voice,text"


def _rows(out, columns: str, where: str = "true") -> list[tuple]:
    return (
        duckdb.connect()
        .execute(
            f"SELECT {columns} FROM read_parquet('{out}/scores/**/*.parquet') "
            f"WHERE {where} ORDER BY start_s"
        )
        .fetchall()
    )


def _voice_of(cues, start: float, end: float) -> int:
    """The index of the voice that speaks most of [start, end)."""
    overlaps = [min(end, c.end_s) - max(start, c.start_s) for c in cues]
    return max(range(len(cues)), key=overlaps.__getitem__) % 2


def test_two_speakers_of_a_mono_video_get_their_roles_and_policy(mono_conversation, tmp_path):
    path, cues = mono_conversation
    out = tmp_path / "out"
    result = batch.run(
        [
            "--input",
            str(path),
            "--output",
            str(out),
            "--speaker-roles",
            "first=agent,*=customer",
            "--policy",
            POLICY,
            "--no-asr",
            "--threads",
            "1",
        ]
    )
    speech = _rows(
        out,
        "speaker, role, start_s, end_s, face_present, face_reason, voice_present, "
        "voice_reason, modalities_enabled, policy_rule, channel",
        "segmenter = 'vad'",
    )
    assert len(speech) >= len(cues)
    for spk, role, start, end, *_ in speech:
        voice = _voice_of(cues, start, end)
        assert spk == f"spk_{voice}", (spk, start, end)  # spk_0 speaks first
        assert role == ("agent" if voice == 0 else "customer")
    agent = [r for r in speech if r[1] == "agent"]
    customer = [r for r in speech if r[1] == "customer"]
    assert agent and customer
    for r in agent:
        assert r[5] == "disabled_by_policy" and r[7] == "disabled_by_policy"
        assert r[8] == "text" and r[9] == "role:agent" and r[10] == 0
    assert all(r[6] for r in customer) and all(r[8] == "face,voice,text" for r in customer)

    # The models saw the customer's segments only, never the agent's.
    every = _rows(out, "role, face_present OR face_reason = 'no_face', voice_present")
    face_inputs = sum(1 for role, faced, _ in every if role == "customer" and faced)
    voice_inputs = sum(1 for role, _, voiced in every if role == "customer" and voiced)
    assert result.counters["sentistream.face/model_inputs"] == face_inputs >= 1
    assert result.counters["sentistream.voice/model_inputs"] == voice_inputs >= 1

    calls = (
        duckdb.connect()
        .execute(
            f"SELECT speaker, role, speakers, segments FROM "
            f"read_parquet('{out}/calls/**/*.parquet') ORDER BY speaker"
        )
        .fetchall()
    )
    by_speaker = {c[0]: c for c in calls}
    assert by_speaker["spk_0"][1] == "agent" and by_speaker["spk_1"][1] == "customer"
    assert by_speaker["spk_0"][3] == len(agent) and by_speaker["spk_1"][3] == len(customer)


def test_a_known_speaker_count_and_diarization_off(mono_conversation, tmp_path):
    path, _ = mono_conversation
    common = ["--input", str(path), "--no-asr", "--fps", "0", "--threads", "1"]
    one, off = tmp_path / "one", tmp_path / "off"
    batch.run([*common, "--output", str(one), "--speakers", "1"])
    batch.run([*common, "--output", str(off), "--diarize", "off"])
    speech = "segmenter = 'vad'"
    assert {r[0] for r in _rows(one, "speaker", speech)} == {"spk_0"}
    assert {r[0] for r in _rows(off, "speaker, role", speech)} == {"unknown"}
    assert {r[1] for r in _rows(off, "speaker, role", speech)} == {"unknown"}


def test_stereo_keeps_channels_and_diarizes_within_them_only_if_asked(stereo_call, tmp_path):
    path, _ = stereo_call
    common = ["--input", str(path), "--no-asr", "--fps", "0", "--threads", "1"]
    common += ["--channel-roles", "agent,customer"]
    plain, within = tmp_path / "plain", tmp_path / "within"
    batch.run([*common, "--output", str(plain)])
    batch.run([*common, "--output", str(within), "--diarize", "all"])
    speech = "segmenter = 'vad'"
    assert set(_rows(plain, "channel, speaker, role", speech)) == {
        (0, "agent", "agent"),
        (1, "customer", "customer"),
    }
    # one voice per channel: each channel's diarized speaker keeps the channel's role
    assert set(_rows(within, "channel, speaker, role", speech)) == {
        (0, "ch0_spk_0", "agent"),
        (1, "ch1_spk_0", "customer"),
    }
