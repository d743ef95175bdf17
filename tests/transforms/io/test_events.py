"""Input events: every well-formed shape parses; every malformed one says why."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from sentistream.transforms.io import events as ev
from sentistream.transforms.io.events import EventError, ParseEvents, encode_event, parse_event
from sentistream.transforms.records import VideoRef


def test_full_event_parses_to_video_ref():
    raw = json.dumps(
        {
            "schema_version": "1",
            "uri": "file:///data/calls/c%201.mp4",
            "video_id": 123,
            "source": "callcenter-eu",
            "channel_roles": {"1": "customer", "0": "agent"},
            "metadata": {"consent": True, "priority": 2, "team": "b"},
            "caption_uri": "/data/calls/c1.vtt",
            "event_time": "2026-01-01T00:00:00Z",
            "future_field": {"ignored": True},
        }
    ).encode()
    ref = parse_event(raw, record_time=5.0)
    assert ref == VideoRef(
        uri="/data/calls/c 1.mp4",
        video_id="123",
        caption_uri="/data/calls/c1.vtt",
        channel_roles=("agent", "customer"),
        metadata={"consent": "true", "priority": "2", "team": "b", "source": "callcenter-eu"},
        event_time=1767225600.0,
    )


def test_minimal_event_takes_the_record_time():
    ref = parse_event(b'{"uri": "/media/a.mp4"}', record_time=12.5)
    assert ref == VideoRef(uri="/media/a.mp4", metadata={}, event_time=12.5)
    assert ref.resolved_id  # hashed from the uri


def test_encode_event_round_trips():
    raw = encode_event(
        "/m/x.mp4",
        video_id="x",
        channel_roles=("agent",),
        metadata={"k": "v"},
        event_time=3.0,
        speakers=2,
        speaker_roles="first=agent,*=customer",
    )
    assert parse_event(raw) == VideoRef(
        uri="/m/x.mp4",
        video_id="x",
        channel_roles=("agent",),
        metadata={"k": "v"},
        event_time=3.0,
        speakers=2,
        speaker_roles="first=agent,*=customer",
    )


def test_speaker_roles_may_be_an_object():
    raw = b'{"uri": "/a.mp4", "speaker_roles": {"spk_1": "agent", "*": "customer"}}'
    assert parse_event(raw).speaker_roles == "spk_1=agent,*=customer"


@pytest.mark.parametrize(
    ("raw", "error_type"),
    [
        (b"{not json", ev.ERR_BAD_JSON),
        (b"\xff\xfe", ev.ERR_BAD_JSON),
        (b"[1, 2]", ev.ERR_NOT_OBJECT),
        (b'{"video_id": "v"}', ev.ERR_MISSING_URI),
        (b'{"uri": ""}', ev.ERR_MISSING_URI),
        (b'{"uri": 5}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "schema_version": "9"}', ev.ERR_VERSION),
        (b'{"uri": "ftp://host/a.mp4"}', ev.ERR_SCHEME),
        (b'{"uri": "file://otherhost/a.mp4"}', ev.ERR_SCHEME),
        (b'{"uri": "/a.mp4", "caption_uri": "http://x/a.vtt"}', ev.ERR_SCHEME),
        (b'{"uri": "/a.mp4", "video_id": ["x"]}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "metadata": "consent"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "metadata": {"a": {"b": 1}}}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "channel_roles": "agent"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "channel_roles": {"0": "a", "2": "b"}}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "event_time": "yesterday"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "event_time": "2026-01-01T00:00:00"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "event_time": -1}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "source": 7}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speakers": 0}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speakers": 2.5}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speakers": true}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speaker_roles": "agent"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speaker_roles": "boss=agent"}', ev.ERR_WRONG_TYPE),
        (b'{"uri": "/a.mp4", "speaker_roles": ["first=agent"]}', ev.ERR_WRONG_TYPE),
        (b" " * (ev.MAX_EVENT_BYTES + 1), ev.ERR_TOO_LARGE),
        (b"[" * 100_000, ev.ERR_BAD_JSON),  # RecursionError inside json
        (b'{"uri": "/a.mp4", "schema_version": [1]}', ev.ERR_VERSION),
        (b'{"uri": "/a.mp4", "video_id": "' + b"x" * 5000 + b'", "source": 1}', ev.ERR_WRONG_TYPE),
    ],
)
def test_malformed_events_say_why(raw, error_type):
    with pytest.raises(EventError) as info:
        parse_event(raw)
    assert info.value.error_type == error_type
    assert str(info.value) and len(str(info.value)) < 500  # short, whatever the event held


def test_dead_letter_keeps_the_raw_event_and_what_ids_it_could_read():
    raw = b'{"uri": "ftp://h/a.mp4", "video_id": "v7"}'
    with pytest.raises(EventError) as info:
        parse_event(raw)
    row = ev.event_dead_letter(raw, info.value, now=10.0)
    assert (row.video_id, row.source_uri, row.stage, row.error_type) == (
        "v7",
        "ftp://h/a.mp4",
        ev.STAGE_PARSE,
        ev.ERR_SCHEME,
    )
    assert row.payload == raw.decode()
    assert row.processed_at == 10.0


def test_parse_events_transform_splits_refs_and_dead_letters(tmp_path):
    media = tmp_path / "a.mp4"
    media.write_bytes(b"x")
    good = encode_event(str(media), video_id="a")
    inputs = [good, b"{", encode_event(str(tmp_path / "missing.mp4"), video_id="m")]
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        out = p | beam.Create(inputs, reshuffle=False) | ParseEvents(clock=lambda: 1.0)
        assert_that(out.refs | beam.Map(lambda r: r.video_id), equal_to(["a"]), label="refs")
        assert_that(
            out[ev.DEAD_LETTER_TAG] | beam.Map(lambda d: (d.video_id, d.error_type)),
            equal_to([("", ev.ERR_BAD_JSON), ("m", ev.ERR_NOT_FOUND)]),
            label="dead",
        )
