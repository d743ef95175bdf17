"""Live input events: a live stream URL, or one chunk of a call's media (docs/live.md).

A live stream (read until it ends or stalls; only hosts allowed by ``--live-host``)::

    {"live_uri": "https://cdn.example/call-7/index.m3u8", "video_id": "call-7",
     "channel_roles": ["agent", "customer"], "metadata": {...}}

(or ``"uri": ..., "live": true``). One chunk of a call, for sources that cannot serve a
URL; key the events by ``call_id`` so a call's chunks share a partition (ordering)::

    {"call_id": "call-8", "seq": 0, "chunk_uri": "/spool/call-8/000000.wav",
     "start_s": 0.0, "final": false, "channel_roles": [...], "metadata": {...}}

``seq`` counts from 0 per call; each chunk is a whole media file of a few seconds (WAV,
Ogg, MP4, MPEG-TS, WebM with its header: anything a recording may be), by reference
(``chunk_uri``) or inline as base64 (``chunk_b64``, when the event stays under the message
limit). ``final: true`` marks the last chunk. ``start_s`` (optional) places a chunk after a
gap; otherwise the chunks' lengths add up. The first chunk's roles and metadata are the
call's. Other fields are as in ``events.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from sentistream.transforms.config import LIVE_PROTOCOLS
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
)
from sentistream.transforms.records import VideoRef

ERR_CHUNK = "bad_chunk_event"


def is_live_event(event: Mapping[str, Any]) -> bool:
    """Whether a decoded event is a live one (a live URL or a chunk)."""
    return "call_id" in event or "live_uri" in event or event.get("live") is True


def parse_live(
    event: Mapping[str, Any], *, record_time: float | None = None
) -> VideoRef | CallChunk:
    """A live event -> ``VideoRef(live=True)`` or ``CallChunk``; ``EventError`` naming the
    field otherwise."""
    when = event_time(event.get("event_time"))
    when = when if when is not None else record_time
    if "call_id" in event:
        return _chunk(event, when)
    uri = event.get("live_uri", event.get("uri"))
    if not isinstance(uri, str) or not uri:
        raise EventError(ERR_WRONG_TYPE, f"live_uri must be a URL string, got {uri!r}"[:200])
    scheme = urlsplit(uri).scheme.lower()
    if scheme not in LIVE_PROTOCOLS:
        raise EventError(
            ERR_SCHEME,
            f"live_uri {uri[:200]!r}: scheme {scheme or 'none'!r} is not a live protocol "
            f"({', '.join(LIVE_PROTOCOLS)})",
        )
    return VideoRef(
        uri=uri,
        video_id=opt_str(event, "video_id", allow_int=True),
        channel_roles=channel_roles(event.get("channel_roles")),
        metadata=metadata(event),
        event_time=when,
        live=True,
    )


def _chunk(event: Mapping[str, Any], when: float | None) -> CallChunk:
    call_id = opt_str(event, "call_id", allow_int=True)
    seq = event.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise EventError(ERR_CHUNK, f"seq must be an integer >= 0, got {seq!r}"[:200])
    uri, b64 = opt_str(event, "chunk_uri"), event.get("chunk_b64")
    if (uri is None) == (b64 is None):
        raise EventError(ERR_CHUNK, "a chunk event needs exactly one of chunk_uri, chunk_b64")
    data = None
    if b64 is not None:
        try:
            data = base64.b64decode(b64, validate=True) if isinstance(b64, str) else None
        except (binascii.Error, ValueError):
            data = None
        if not data:
            raise EventError(ERR_CHUNK, "chunk_b64 must be non-empty standard base64")
    start = event.get("start_s")
    if start is not None and (
        not isinstance(start, int | float) or isinstance(start, bool) or start < 0
    ):
        raise EventError(ERR_CHUNK, f"start_s must be a number >= 0, got {start!r}"[:200])
    final = event.get("final", False)
    if not isinstance(final, bool):
        raise EventError(ERR_CHUNK, f"final must be true or false, got {final!r}"[:200])
    assert call_id is not None
    ref = VideoRef(
        uri=f"chunks:{call_id}",
        video_id=call_id,
        channel_roles=channel_roles(event.get("channel_roles")),
        metadata=metadata(event),
        event_time=when,
        live=True,
    )
    return CallChunk(
        call_id=call_id,
        seq=seq,
        uri=normalize_uri(uri, "chunk_uri") if uri else None,
        data=data,
        final=final,
        event_time=when,
        start_s=None if start is None else float(start),
        ref=ref,
    )


def encode_chunk_event(
    call_id: str,
    seq: int,
    *,
    chunk_uri: str | None = None,
    data: bytes | None = None,
    final: bool = False,
    start_s: float | None = None,
    channel_roles: tuple[str, ...] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """The JSON bytes of a chunk event (producers, tests, the benchmark)."""
    event: dict[str, Any] = {"schema_version": EVENT_SCHEMA_VERSION, "call_id": call_id, "seq": seq}
    optional = {
        "chunk_uri": chunk_uri,
        "chunk_b64": base64.b64encode(data).decode("ascii") if data is not None else None,
        "final": final or None,
        "start_s": start_s,
        "channel_roles": list(channel_roles) if channel_roles else None,
        "metadata": dict(metadata) if metadata else None,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return json.dumps(event, sort_keys=True).encode("utf-8")


def encode_live_event(
    live_uri: str,
    *,
    video_id: str | None = None,
    channel_roles: tuple[str, ...] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> bytes:
    """The JSON bytes of a live-URL event."""
    event: dict[str, Any] = {"schema_version": EVENT_SCHEMA_VERSION, "live_uri": live_uri}
    optional = {
        "video_id": video_id,
        "channel_roles": list(channel_roles) if channel_roles else None,
        "metadata": dict(metadata) if metadata else None,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    return json.dumps(event, sort_keys=True).encode("utf-8")
