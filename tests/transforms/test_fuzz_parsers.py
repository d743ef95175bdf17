"""Property tests (Hypothesis) of the parsers that read untrusted text: an input event or
manifest line and a caption file. Whatever they are given, they return a well-formed
result or raise their own documented error: never another exception, never a hang."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentistream.transforms.io.events import EventError, parse_event, parse_input
from sentistream.transforms.media.captions import parse_captions

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("uri", "video_id", "caption_uri", "channel_roles", "metadata", "event_time",
          "source", "schema_version")  # fmt: skip
events = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_event_error(raw: bytes) -> None:
    try:
        ref = parse_event(raw)
    except EventError as exc:
        assert exc.error_type and len(str(exc)) < 600
    else:
        assert isinstance(ref.uri, str) and ref.uri


@FUZZ
@given(events)
def test_any_event_object_parses_to_typed_fields_or_raises_event_error(event: dict) -> None:
    try:
        ref = parse_input(event)
    except EventError as exc:
        assert exc.error_type and len(str(exc)) < 600
        return
    assert isinstance(ref.uri, str) and ref.uri
    assert ref.video_id is None or isinstance(ref.video_id, str)
    assert ref.channel_roles is None or all(isinstance(r, str) and r for r in ref.channel_roles)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in ref.metadata.items())
    assert ref.event_time is None or ref.event_time >= 0
    json.dumps(dict(ref.metadata))  # what rows carry serialises


cue_line = st.from_regex(
    r"\A\d{1,2}:\d{2}(:\d{2})?[.,]\d{3} --> \d{1,2}:\d{2}(:\d{2})?[.,]\d{3}\Z", fullmatch=True
)
caption_text = st.lists(
    st.one_of(cue_line, st.text(max_size=30), st.just(""), st.just("WEBVTT"), st.just("NOTE x")),
    max_size=30,
).map("\n".join)


@FUZZ
@given(st.one_of(caption_text, st.text(max_size=400)))
def test_any_caption_text_parses_to_sorted_cues_or_raises_value_error(text: str) -> None:
    try:
        cues = parse_captions(text)
    except ValueError as exc:
        assert "block" in str(exc) or "no cue timing" in str(exc)
        return
    assert all(c.end_s >= c.start_s >= 0 and c.text for c in cues)
    assert [c.start_s for c in cues] == sorted(c.start_s for c in cues)
