"""The typed fields of input events, shared by the recording events (``events.py``) and
the live ones (``live_events.py``): each helper checks one field and raises an
``EventError`` naming it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from apache_beam.io.filesystems import FileSystems

from sentistream.models.speaker.diarize import MAX_SPEAKERS
from sentistream.transforms.speakers import format_speaker_roles, parse_speaker_roles

EVENT_SCHEMA_VERSION = "1"
ERR_WRONG_TYPE = "wrong_type"
ERR_SCHEME = "unsupported_scheme"


class EventError(ValueError):
    """A malformed event; ``error_type`` is one of the ``ERR_*`` constants."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def normalize_uri(uri: str, field: str = "uri") -> str:
    """``file://`` URIs to local paths; any other URI must name a Beam filesystem.

    Raises:
        EventError: ``ERR_SCHEME`` when no installed Beam filesystem handles the scheme.
    """
    if uri.startswith("file://"):
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise EventError(ERR_SCHEME, f"{field}: file URI with a remote host: {uri!r}")
        return unquote(parts.path)
    try:
        FileSystems.get_filesystem(uri)
    except Exception as exc:  # Beam raises ValueError or BeamIOError (missing extra)
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        raise EventError(
            ERR_SCHEME,
            f"{field}: no Beam filesystem for scheme {scheme!r} in {uri!r} "
            f"(use a local path, file://, or a scheme whose Beam extra is installed): {exc}",
        ) from None
    return uri


def _show(value: Any, limit: int = 80) -> str:
    """A short repr of a bad value for an error message (never the whole of a big one)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def opt_str(event: Mapping[str, Any], key: str, *, allow_int: bool = False) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if allow_int and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str) or not value:
        want = "a non-empty string" + (" or an integer" if allow_int else "")
        raise EventError(ERR_WRONG_TYPE, f"{key} must be {want}, got {_show(value)}")
    return value


def _scalar_str(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    raise EventError(
        ERR_WRONG_TYPE,
        f"metadata[{key!r}] must be a string, number or boolean, got {type(value).__name__}",
    )


def metadata(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("metadata")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise EventError(ERR_WRONG_TYPE, f"metadata must be an object, got {_show(raw)}")
    meta = {str(k): _scalar_str(str(k), v) for k, v in raw.items()}
    source = opt_str(event, "source")
    if source is not None:
        meta["source"] = source
    return meta


def channel_roles(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, dict):
        try:
            by_index = {int(k): v for k, v in value.items()}
        except ValueError:
            raise EventError(
                ERR_WRONG_TYPE, f"channel_roles keys must be channel numbers, got {_show(value)}"
            ) from None
        if sorted(by_index) != list(range(len(by_index))):
            raise EventError(
                ERR_WRONG_TYPE, f"channel_roles must cover channels 0..n-1, got {_show(value)}"
            )
        value = [by_index[i] for i in range(len(by_index))]
    if not isinstance(value, list) or not value:
        raise EventError(
            ERR_WRONG_TYPE, f"channel_roles must be a non-empty list or object, got {_show(value)}"
        )
    if not all(isinstance(r, str) and r for r in value):
        raise EventError(
            ERR_WRONG_TYPE, f"channel_roles must hold non-empty strings: {_show(value)}"
        )
    return tuple(value)


def speakers(value: Any) -> int | None:
    """The ``speakers`` field: how many people speak (1 .. ``MAX_SPEAKERS``), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPEAKERS:
        raise EventError(
            ERR_WRONG_TYPE, f"speakers must be an integer 1..{MAX_SPEAKERS}, got {_show(value)}"
        )
    return value


def speaker_roles(value: Any) -> str | None:
    """The ``speaker_roles`` field: ``"first=agent,*=customer"`` or the same as an object
    ``{"first": "agent", "*": "customer"}``; returned in the string spelling."""
    if value is None:
        return None
    if isinstance(value, dict):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise EventError(ERR_WRONG_TYPE, f"speaker_roles must map strings: {_show(value)}")
        value = format_speaker_roles(tuple(value.items()))
    if not isinstance(value, str) or not value.strip():
        raise EventError(
            ERR_WRONG_TYPE, f"speaker_roles must be a non-empty string or object: {_show(value)}"
        )
    try:
        return format_speaker_roles(parse_speaker_roles(value))
    except ValueError as exc:
        raise EventError(ERR_WRONG_TYPE, str(exc)) from None


def event_time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise EventError(
                ERR_WRONG_TYPE, f"event_time must be epoch seconds or ISO-8601, got {_show(value)}"
            ) from None
        if stamp.tzinfo is None:
            raise EventError(ERR_WRONG_TYPE, f"event_time needs a time zone, got {_show(value)}")
        seconds = stamp.timestamp()
    else:
        raise EventError(
            ERR_WRONG_TYPE, f"event_time must be a number or string, got {_show(value)}"
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise EventError(ERR_WRONG_TYPE, f"event_time must be finite and >= 0, got {_show(value)}")
    return seconds
