"""Input events: the JSON a producer puts on the input topic, and its parsing.

One Kafka message = one UTF-8 JSON object = one recording to analyse. Schema version 1::

    {
      "schema_version": "1",                    # optional; absent means "1"
      "uri": "/data/calls/c-123.mp4",           # required: local path, file:// URI, or any
                                                #   URI Beam's FileSystems can open (s3://,
                                                #   gs:// with apache-beam[gcp], azfs://)
      "video_id": "c-123",                      # optional (str or int); default: hash of uri
      "source": "callcenter-eu",                # optional; copied to metadata["source"]
      "channel_roles": ["agent", "customer"],   # optional: role per audio channel, as a list
                                                #   or {"0": "agent", "1": "customer"}
      "metadata": {"consent": "true"},          # optional: flat object; policy hints and
                                                #   consent live here (PolicyConfig.consent_key);
                                                #   str/int/float/bool values (bools become
                                                #   "true"/"false"), copied to every row
      "caption_uri": "/data/calls/c-123.vtt",   # optional sidecar WebVTT / SRT
      "speakers": 2,                            # optional: people speaking, when known
                                                #   (diarization then finds that many)
      "speaker_roles": "first=agent,*=customer",  # optional: roles of diarized speakers
                                                #   (or {"first": "agent", "*": "customer"})
      "event_time": 1767225600.0                # optional: epoch seconds or ISO-8601 string;
                                                #   default: the Kafka record timestamp
    }

Unknown fields are ignored (producers may add fields before consumers learn them). The
whole message is at most ``MAX_EVENT_BYTES``. Media travels by reference: events do not
carry media bytes (see docs/streaming.md "Inline media"). Live events (a ``live_uri``, or
a ``call_id`` with a numbered chunk, which may be inline) are parsed by
``live_events.py``; ``parse_event`` tells them apart by their fields.

Anything that does not parse becomes a ``DeadLetterRow`` with ``stage="parse_event"``, an
``error_type`` from the ``ERR_*`` constants below, a message that says what to fix, and
the raw event in ``payload``: the stream never stops on a bad event.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.io.chunks import CallChunk
from sentistream.transforms.io.event_fields import (
    ERR_SCHEME,
    ERR_WRONG_TYPE,
    EVENT_SCHEMA_VERSION,
    EventError,
    channel_roles,
    event_time,
    metadata,
    normalize_uri,
    opt_str,
    speaker_roles,
    speakers,
)
from sentistream.transforms.io.live_events import is_live_event, parse_live
from sentistream.transforms.records import VideoRef
from sentistream.transforms.schema import SCHEMA_VERSION, DeadLetterRow

SUPPORTED_EVENT_VERSIONS = frozenset({"1"})
MAX_EVENT_BYTES = 1 << 20  # the default message.max.bytes of a Kafka broker
MAX_PAYLOAD_CHARS = 16_384  # raw event kept in a dead letter, truncated beyond this

STAGE_PARSE = "parse_event"
ERR_TOO_LARGE = "event_too_large"
ERR_BAD_JSON = "bad_json"
ERR_NOT_OBJECT = "not_an_object"
ERR_VERSION = "unsupported_schema_version"
ERR_MISSING_URI = "missing_uri"
ERR_NOT_FOUND = "media_not_found"

DEAD_LETTER_TAG = "dead_letter"


def encode_event(
    uri: str,
    *,
    video_id: str | None = None,
    source: str | None = None,
    channel_roles: tuple[str, ...] | None = None,
    metadata: Mapping[str, str] | None = None,
    caption_uri: str | None = None,
    event_time: float | None = None,
    speakers: int | None = None,
    speaker_roles: str | None = None,
) -> bytes:
    """The JSON bytes of a well-formed version-1 event (for producers, the demo, tests)."""
    event: dict[str, Any] = {"schema_version": EVENT_SCHEMA_VERSION, "uri": uri}
    optional = {
        "video_id": video_id,
        "source": source,
        "channel_roles": list(channel_roles) if channel_roles is not None else None,
        "metadata": dict(metadata) if metadata else None,
        "caption_uri": caption_uri,
        "event_time": event_time,
        "speakers": speakers,
        "speaker_roles": speaker_roles,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return json.dumps(event, sort_keys=True).encode("utf-8")


def parse_event(raw: bytes | str, *, record_time: float | None = None) -> VideoRef | CallChunk:
    """Parse one event into a ``VideoRef`` (or, for a live event, a live ``VideoRef`` or a
    ``CallChunk``: ``live_events.py``).

    Args:
        raw: the message value.
        record_time: the Kafka record timestamp (epoch seconds), used as ``event_time``
            when the event carries none.

    Raises:
        EventError: what is wrong, with ``error_type`` set.
    """
    if len(raw) > MAX_EVENT_BYTES:
        raise EventError(ERR_TOO_LARGE, f"event is {len(raw)} bytes, over {MAX_EVENT_BYTES}")
    event = load_json(raw)
    if isinstance(event, dict) and is_live_event(event):
        return parse_live(event, record_time=record_time)
    return parse_input(event, record_time=record_time)


def load_json(raw: bytes | str) -> Any:
    """JSON of one event or manifest line; ``EventError`` (``ERR_BAD_JSON``) when it is not
    UTF-8 JSON or nests too deeply to parse."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise EventError(ERR_BAD_JSON, f"not valid UTF-8 JSON: {reason}") from None


def parse_input(event: Any, *, record_time: float | None = None) -> VideoRef:
    """One decoded event or manifest line (the same schema, see the module docstring) ->
    ``VideoRef``: the one parser of inputs, typed and strict.

    Raises:
        EventError: what is wrong and in which field, with ``error_type`` set.
    """
    if not isinstance(event, dict):
        raise EventError(ERR_NOT_OBJECT, f"event must be a JSON object, got {type(event).__name__}")
    version = event.get("schema_version", EVENT_SCHEMA_VERSION)
    if not isinstance(version, str | int) or str(version) not in SUPPORTED_EVENT_VERSIONS:
        raise EventError(
            ERR_VERSION,
            f"schema_version {version!r} is not one of {sorted(SUPPORTED_EVENT_VERSIONS)}",
        )
    uri = event.get("uri")
    if uri is None or uri == "":
        raise EventError(ERR_MISSING_URI, "event has no 'uri' (the media to analyse)")
    if not isinstance(uri, str):
        raise EventError(ERR_WRONG_TYPE, f"uri must be a string, got {type(uri).__name__}")
    caption_uri = opt_str(event, "caption_uri")
    when = event_time(event.get("event_time"))
    return VideoRef(
        uri=normalize_uri(uri),
        video_id=opt_str(event, "video_id", allow_int=True),
        caption_uri=normalize_uri(caption_uri, "caption_uri") if caption_uri else None,
        channel_roles=channel_roles(event.get("channel_roles")),
        metadata=metadata(event),
        event_time=when if when is not None else record_time,
        speakers=speakers(event.get("speakers")),
        speaker_roles=speaker_roles(event.get("speaker_roles")),
    )


def _best_effort_ids(raw: bytes | str) -> tuple[str, str]:
    """``(video_id, uri)`` from a bad event when they can be read at all, else ``("", "")``."""
    try:
        event = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "", ""
    if not isinstance(event, dict):
        return "", ""
    vid = event.get("video_id", event.get("call_id"))  # a chunk event names its call
    uri = event.get("uri", event.get("live_uri"))
    return (str(vid) if isinstance(vid, str | int) else ""), (uri if isinstance(uri, str) else "")


def event_dead_letter(
    raw: bytes | str, error: EventError, *, now: float, stage: str = STAGE_PARSE
) -> DeadLetterRow:
    """The dead-letter row for an event (or manifest line) that failed to parse; keeps the
    raw event, truncated to ``MAX_PAYLOAD_CHARS``."""
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    video_id, uri = _best_effort_ids(raw)
    return DeadLetterRow(
        schema_version=SCHEMA_VERSION,
        video_id=video_id,
        source_uri=uri,
        segment_id=None,
        stage=stage,
        error_type=error.error_type,
        error=str(error),
        payload=text[:MAX_PAYLOAD_CHARS],
        processed_at=now,
    )


def _exists(uri: str, field: str) -> bool:
    """``FileSystems.exists``, with its failures (a filesystem whose optional dependency is
    missing raises BeamIOError) turned into an ``EventError`` for this event alone."""
    try:
        return bool(FileSystems.exists(uri))
    except Exception as exc:  # noqa: BLE001 - any lookup failure is this event's problem
        raise EventError(
            ERR_SCHEME, f"{field} {uri!r} cannot be looked up ({type(exc).__name__}: {exc})"[:400]
        ) from None


class ParseEventsFn(beam.DoFn):
    """Event message -> ``VideoRef`` (main output) or ``DeadLetterRow`` (``dead_letter``).

    Input elements are ``KafkaRecord`` s (anything with ``value`` and ``timestamp_ms``) or
    raw ``bytes``. With ``check_exists`` the media (and caption) must exist when parsed,
    so a typo'd path is reported with the event instead of by the decoder.

    Args:
        check_exists: look the media up with ``FileSystems.exists``.
        clock: seconds since epoch, for ``processed_at`` (injectable for tests).
    """

    def __init__(self, *, check_exists: bool = True, clock: Callable[[], float] = time.time):
        self._check_exists = check_exists
        self._clock = clock

    def process(self, element: Any) -> Iterator[Any]:
        origin = None
        if isinstance(element, bytes | str):
            raw, record_time = element, None
        else:
            raw = element.value
            ts = getattr(element, "timestamp_ms", None)
            record_time = ts / 1000.0 if ts is not None and ts >= 0 else None
            if getattr(element, "offset", None) is not None:
                origin = (element.topic, element.partition, element.offset)
        try:
            ref = parse_event(raw if raw is not None else b"", record_time=record_time)
            ref = dataclasses.replace(ref, origin=origin)  # a live call holds its commit
            if self._check_exists and isinstance(ref, VideoRef) and not ref.live:
                for field, uri in (("uri", ref.uri), ("caption_uri", ref.caption_uri)):
                    if uri and not _exists(uri, field):
                        raise EventError(ERR_NOT_FOUND, f"{field} {uri!r} does not exist")
        except EventError as exc:
            beam.metrics.Metrics.counter("sentistream.events", exc.error_type).inc()
            yield beam.pvalue.TaggedOutput(
                DEAD_LETTER_TAG, event_dead_letter(raw or b"", exc, now=self._clock())
            )
            return
        beam.metrics.Metrics.counter("sentistream.events", "parsed").inc()
        yield ref


class ParseEvents(beam.PTransform):
    """PCollection[KafkaRecord | bytes] -> DoOutputsTuple with ``refs`` (VideoRef) and
    ``dead_letter`` (DeadLetterRow)."""

    def __init__(self, *, check_exists: bool = True, clock: Callable[[], float] = time.time):
        super().__init__()
        self._fn = ParseEventsFn(check_exists=check_exists, clock=clock)

    def expand(self, pcoll: beam.PCollection) -> beam.pvalue.DoOutputsTuple:
        return pcoll | "Parse" >> beam.ParDo(self._fn).with_outputs(DEAD_LETTER_TAG, main="refs")
