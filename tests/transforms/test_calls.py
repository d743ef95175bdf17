"""Call-level rows from segment rows, against values computed by hand.

The recording (40 s, stereo: agent on channel 0, customer on channel 1):

    agent     a1 vad [0, 10]   a2 vad [10, 12]               a3 window [30, 35]
    customer        c1 vad [5, 8]   c2 vad [11.5, 12.2]   c3 vad [20, 24]

c1 starts inside the agent's turn [0, 12] and overlaps it by 3 s: an interruption; c2
overlaps it by 0.5 s only (a back-channel): not one.
"""

from __future__ import annotations

import dataclasses
import math
import typing

import pytest

from sentistream.transforms.calls import (
    INTERRUPTION_MIN_OVERLAP_S,
    OpenRecordings,
    merge,
    summarize,
    summary_id,
)
from sentistream.transforms.records import RecordingEnd, VideoRef
from sentistream.transforms.schema import SCHEMA_VERSION, ScoreRow

_BLANK = {str: "", int: 0, float: 0.0, bool: False}
REF = VideoRef(uri="/calls/c.mp4", video_id="call-1", metadata={"queue": "billing"})
END = RecordingEnd(ref=REF, duration_s=40.0, segments=6, tracks=2)


def seg(sid, ch, start, end, fused, conf, *, kind="vad", words="", level=-20.0, **mods):
    """A ScoreRow; ``mods``: face/voice/text=(valence, confidence) or a missing reason."""
    hints = typing.get_type_hints(ScoreRow)
    row = ScoreRow(**{f.name: _BLANK.get(hints[f.name]) for f in dataclasses.fields(ScoreRow)})
    fields = {}
    for m in ("face", "voice", "text"):
        value = mods.get(m, "not_run")
        if isinstance(value, tuple):
            fields |= {f"{m}_present": True, f"{m}_valence": value[0], f"{m}_confidence": value[1]}
        else:
            fields |= {f"{m}_present": False, f"{m}_reason": value}
    label = "unknown" if fused is None else ("positive" if fused > 0.2 else
                                             "negative" if fused < -0.2 else "neutral")  # fmt: skip
    return dataclasses.replace(
        row,
        schema_version=SCHEMA_VERSION,
        video_id="call-1",
        source_uri=REF.uri,
        segment_id=sid,
        channel=ch,
        speaker=("agent", "customer")[ch],
        role=("agent", "customer")[ch],
        start_s=start,
        end_s=end,
        segmenter=kind,
        partial=False,
        speech_level_dbfs=level,
        transcript=words,
        fused_valence=fused,
        fused_label=label,
        fused_confidence=conf,
        policy_id="eu-workplace",
        face_model_id="face@1" if ch == 1 else None,
        text_model_id="text@1",
        fusion_model_id="fusion@1",
        **fields,
    )


ROWS = [
    seg("a1", 0, 0, 10, 0.5, 0.8, words="one two three four five",
        face=(0.6, 0.9), voice=(-0.2, 0.5), text=(0.4, 0.7)),
    seg("a2", 0, 10, 12, -0.5, 0.6, words="six seven", level=-30.0,
        face="no_face", voice=(-0.4, 0.5), text=(-0.6, 0.9)),
    seg("a3", 0, 30, 35, 0.1, 0.3, kind="window", level=-60.0,
        face=(0.2, 0.5), voice="silence", text="no_transcript"),
    seg("c1", 1, 5, 8, -0.8, 1.0, words="no no no", level=-10.0,
        face="disabled_by_policy", voice=(-0.9, 0.8), text=(-0.7, 0.9)),
    seg("c2", 1, 11.5, 12.2, -0.2, 0.5, level=-10.0,
        face="disabled_by_policy", voice=(-0.2, 0.5), text="no_transcript"),
    seg("c3", 1, 20, 24, 0.3, 0.5, words="ok fine", level=-10.0,
        face="disabled_by_policy", voice=(0.3, 0.5), text=(0.3, 0.5)),
]  # fmt: skip


@pytest.fixture(scope="module")
def calls():
    rows = summarize(ROWS[::-1], END, neutral_band=0.2, processed_at=123.0)  # any order
    return {r.speaker: r for r in rows}


def test_one_row_per_speaker_with_the_recording_facts(calls):
    assert sorted(calls) == ["agent", "customer"]
    agent = calls["agent"]
    assert agent.summary_id == summary_id("call-1", 0, "agent")
    assert (agent.channel, agent.role, agent.segments, agent.speakers) == (0, "agent", 3, 2)
    assert agent.recording_duration_s == 40.0 and agent.complete
    assert agent.metadata_json == '{"queue": "billing"}' and agent.processed_at == 123.0
    assert (agent.policy_id, agent.text_model_id, agent.face_model_id) == (
        "eu-workplace",
        "text@1",
        None,
    )
    assert calls["customer"].face_model_id == "face@1"


def test_overall_valence_label_and_confidence_are_duration_weighted(calls):
    agent, customer = calls["agent"], calls["customer"]
    # (0.5*10 - 0.5*2 + 0.1*5) / 17; only a1 (10 s at 0.8) carries the call's label
    assert agent.fused_valence == pytest.approx(4.5 / 17, abs=1e-4)
    assert agent.fused_label == "positive"
    assert agent.fused_confidence == pytest.approx(8 / 17, abs=1e-4)
    # (-0.8*3 - 0.2*0.7 + 0.3*4) / 7.7 = -0.174: neutral; only c2 (0.7 s at 0.5) agrees
    assert customer.fused_valence == pytest.approx(-1.34 / 7.7, abs=1e-4)
    assert customer.fused_label == "neutral"
    assert customer.fused_confidence == pytest.approx(0.35 / 7.7, abs=1e-4)


def test_per_modality_summaries(calls):
    agent, customer = calls["agent"], calls["customer"]
    assert agent.face_valence == pytest.approx(7 / 15, abs=1e-4)  # a1 10 s, a3 5 s
    assert (agent.face_label, agent.face_confidence) == ("positive", pytest.approx(0.6))
    assert agent.voice_valence == pytest.approx(-2.8 / 12, abs=1e-4)
    # -0.2 alone is neutral: only a2 (2 s at 0.5) agrees with "negative"
    assert (agent.voice_label, agent.voice_confidence) == (
        "negative",
        pytest.approx(1 / 12, abs=1e-4),
    )
    assert agent.text_valence == pytest.approx(2.8 / 12, abs=1e-4)
    assert customer.face_valence is None and customer.face_label is None
    assert customer.face_confidence is None


def test_quarters_trend_and_extremes(calls):
    agent, customer = calls["agent"], calls["customer"]
    assert (agent.valence_q1, agent.valence_q2, agent.valence_q3, agent.valence_q4) == (
        0.5,
        -0.5,
        None,
        0.1,
    )
    assert agent.trend == pytest.approx(-0.4)
    assert (customer.valence_q1, customer.valence_q2, customer.valence_q3) == (-0.8, -0.2, 0.3)
    assert customer.valence_q4 is None and customer.trend is None
    assert (agent.most_negative_segment_id, agent.most_negative_start_s) == ("a2", 10)
    assert (agent.most_positive_segment_id, agent.most_positive_valence) == ("a1", 0.5)
    assert customer.most_negative_segment_id == "c1"


def test_coverage_and_missing_reasons_over_speech_time(calls):
    agent, customer = calls["agent"], calls["customer"]
    # speech is a1 + a2 (the window a3 is not): a face on 10 of 12 s
    assert agent.face_coverage == pytest.approx(10 / 12, abs=1e-4)
    assert agent.face_missing_reason == "no_face"
    assert (agent.voice_coverage, agent.voice_missing_reason) == (1.0, None)
    assert (customer.face_coverage, customer.face_missing_reason) == (0.0, "disabled_by_policy")
    assert customer.text_coverage == pytest.approx(7 / 7.7, abs=1e-4)
    assert customer.text_missing_reason == "no_transcript"


def test_talk_time_speed_and_loudness(calls):
    agent, customer = calls["agent"], calls["customer"]
    assert (agent.talk_time_s, customer.talk_time_s) == (12.0, 7.7)
    # all speech: [0, 12.2] and [20, 24] -> 16.2 s of 40
    assert agent.non_talk_time_s == customer.non_talk_time_s == pytest.approx(23.8)
    assert (agent.words, agent.talk_speed_wpm) == (7, 35.0)  # 7 words in 12 s
    assert (customer.words, customer.talk_speed_wpm) == (5, 42.9)  # c2 has no words
    # mean power: (10 s at -20 dBFS + 2 s at -30) / 12; the window is not speech
    assert agent.loudness_dbfs == pytest.approx(
        10 * math.log10((10 * 1e-2 + 2 * 1e-3) / 12), abs=0.01
    )
    assert customer.loudness_dbfs == -10.0


def test_interruptions_need_a_real_overlap_and_separate_tracks(calls):
    assert INTERRUPTION_MIN_OVERLAP_S == 1.0
    agent, customer = calls["agent"], calls["customer"]
    assert (customer.interruptions, agent.interruptions) == (1, 0)  # c1, not c2
    assert customer.overlap_s == agent.overlap_s == pytest.approx(3.5)  # 3 s + 0.5 s
    mono = summarize(ROWS, dataclasses.replace(END, tracks=1), neutral_band=0.2, processed_at=0)
    assert all(r.interruptions is None and r.overlap_s is None for r in mono)


def test_a_row_lost_on_the_way_marks_the_call_incomplete():
    rows = summarize(ROWS[1:], END, neutral_band=0.2, processed_at=0.0)
    assert not any(r.complete for r in rows)


def test_merge_joins_turns_across_short_gaps():
    assert merge([(3, 4), (0, 1), (1.2, 2)], gap=0.5) == [(0, 2), (3, 4)]
    assert merge([(0, 1), (1.2, 2)]) == [(0, 1), (1.2, 2)]


def test_open_recordings_emit_once_and_forget():
    open_ = OpenRecordings()
    for r in ROWS:
        open_.add(r)
    assert len(open_) == 1
    assert len(open_.close(END, neutral_band=0.2, processed_at=0.0)) == 2
    assert len(open_) == 0
    assert open_.close(END, neutral_band=0.2, processed_at=0.0) == []
    open_.add(ROWS[0])
    open_.discard("call-1")
    assert len(open_) == 0


def test_speakers_count_who_talks_not_the_silent_windows():
    """A diarized mono recording: two speakers and the no-speech windows (nobody's)."""
    rows = [
        dataclasses.replace(seg("s0", 0, 0, 5, 0.1, 0.5), speaker="spk_0"),
        dataclasses.replace(seg("s1", 0, 5, 9, 0.1, 0.5), speaker="spk_1"),
        dataclasses.replace(seg("w", 0, 9, 14, None, 0.0, kind="window"), speaker="unknown"),
    ]
    end = RecordingEnd(ref=REF, duration_s=14.0, segments=3, tracks=1)
    calls = summarize(rows, end, neutral_band=0.2, processed_at=0.0)
    assert sorted(c.speaker for c in calls) == ["spk_0", "spk_1", "unknown"]
    assert {c.speakers for c in calls} == {2}
    assert all(c.interruptions is None for c in calls)  # one track: overlap is not known
