"""What the batch job reads: media globs and a JSONL manifest, expanded into ``VideoRef``s
and, for what cannot be an input, dead letters with the reason.

Nothing is skipped silently: a glob match that is not a regular file (a directory, a
dangling link, a link loop, a FIFO, a socket, a device) and a manifest line that does not
parse are dead letters (``stage="inputs"``), and the other inputs run. Manifest lines and
Kafka events share one typed parser, ``transforms/io/events.py`` ``parse_input``: a wrong
type is an error naming the line and the field, never coerced (a string where a list of
roles belongs is refused, not split into characters). ``strict=True`` (``--strict``)
turns the first bad line or match into an error instead.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from apache_beam.io.filesystems import FileSystems

from sentistream.transforms.io.events import (
    ERR_BAD_JSON,
    EventError,
    event_dead_letter,
    load_json,
    parse_input,
)
from sentistream.transforms.media.limits import local_file_problem
from sentistream.transforms.records import VideoRef
from sentistream.transforms.schema import DeadLetterRow

# Files a glob may also match that are not media: sidecars and manifests.
SIDECAR_SUFFIXES = (".vtt", ".srt", ".json", ".jsonl", ".txt", ".md", ".csv")
STAGE_INPUTS = "inputs"
ERR_NOT_A_FILE = "not_a_regular_file"
ERR_DUPLICATE = "duplicate_video_id"


@dataclass(frozen=True)
class Inputs:
    """The refs to score and the dead letters of what could not be an input."""

    refs: list[VideoRef] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)


def _dead(path: str, error_type: str, message: str, payload: str = "") -> DeadLetterRow:
    err = EventError(error_type, message)
    row = event_dead_letter(payload, err, now=time.time(), stage=STAGE_INPUTS)
    return dataclasses.replace(row, source_uri=path)


def _expand_pattern(pattern: str, strict: bool) -> Inputs:
    if "://" in pattern and not pattern.startswith("file://"):
        matched = [m.path for r in FileSystems.match([pattern]) for m in r.metadata_list]
        media = sorted(p for p in matched if not p.lower().endswith(SIDECAR_SUFFIXES))
        return Inputs([VideoRef(uri=p) for p in media])
    local = pattern.removeprefix("file://")
    names = glob.glob(local, recursive=True) if glob.has_magic(local) else [local]
    names = [n for n in names if os.path.lexists(n)]
    refs, dead = [], []
    for path in sorted(n for n in names if not n.lower().endswith(SIDECAR_SUFFIXES)):
        why = local_file_problem(path)
        if why is None:
            refs.append(VideoRef(uri=path))
            continue
        message = f"--input {pattern!r} matched {path!r}, which is {why}"
        if strict:
            raise ValueError(message)
        dead.append(_dead(path, ERR_NOT_A_FILE, message))
    if not refs and not dead:
        unreadable = _unreadable_folder(local)
        if unreadable is None:
            raise ValueError(f"--input {pattern!r} matches no media file")
        message = f"--input {pattern!r}: the folder {unreadable!r} cannot be read (permission)"
        if strict:
            raise ValueError(message)
        dead.append(_dead(pattern, ERR_NOT_A_FILE, message))
    return Inputs(refs, dead)


def _unreadable_folder(pattern: str) -> str | None:
    """The deepest existing folder above ``pattern``'s first wildcard when this process
    may not list or enter it (so the pattern could not be expanded), else None."""
    folder = os.path.dirname(pattern)
    while folder and (glob.has_magic(folder) or not os.path.isdir(folder)):
        parent = os.path.dirname(folder)
        folder = "" if parent == folder else parent
    folder = folder or "."
    return None if os.access(folder, os.R_OK | os.X_OK) else folder


def expand_inputs(
    patterns: Sequence[str],
    manifest: str | None = None,
    channel_roles: tuple[str, ...] | None = None,
    *,
    strict: bool = False,
) -> Inputs:
    """Expand media globs (sorted per pattern) and the manifest into refs and dead letters.

    ``channel_roles`` applies to every glob input and to manifest lines that give none.

    Raises:
        ValueError: naming a pattern that matches nothing at all, or (``strict``) the
            first bad match or manifest line.
    """
    refs: list[VideoRef] = []
    dead: list[DeadLetterRow] = []
    for pattern in patterns:
        got = _expand_pattern(pattern, strict)
        refs += [dataclasses.replace(r, channel_roles=channel_roles) for r in got.refs]
        dead += got.dead_letters
    if manifest:
        got = read_manifest(manifest, channel_roles, strict=strict)
        refs += got.refs
        dead += got.dead_letters
    unique, dupes = _first_of_each_id(refs, strict)
    return Inputs(unique, dead + dupes)


def _first_of_each_id(
    refs: list[VideoRef], strict: bool
) -> tuple[list[VideoRef], list[DeadLetterRow]]:
    """Refs with a ``video_id`` seen before are dead letters: their segment ids would
    collide with the first one's (and the same file listed twice would be scored twice)."""
    first: dict[str, str] = {}
    unique, dupes = [], []
    for ref in refs:
        vid = ref.resolved_id
        if vid not in first:
            first[vid] = ref.uri
            unique.append(ref)
            continue
        same = "the same file, listed again" if first[vid] == ref.uri else repr(first[vid])
        message = f"video_id {vid!r} of {ref.uri!r} is already used by {same}"
        if strict:
            raise ValueError(message)
        row = _dead(ref.uri, ERR_DUPLICATE, message)
        dupes.append(dataclasses.replace(row, video_id=vid))
    return unique, dupes


def read_manifest(
    path: str, default_roles: tuple[str, ...] | None, *, strict: bool = False
) -> Inputs:
    """One ``VideoRef`` per JSON object line (the event schema of ``parse_input``: ``uri``
    required; ``video_id``, ``caption_uri``, ``channel_roles`` (else ``default_roles``),
    ``metadata``, ...); a line that does not parse is a dead letter naming the line."""
    inputs = Inputs()
    try:
        with FileSystems.open(path) as f:
            lines = f.read().split(b"\n")
    except Exception as exc:  # noqa: BLE001 - missing, unreadable, a directory, ...
        raise ValueError(f"--manifest {path!r} cannot be read ({type(exc).__name__})") from None
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise EventError(ERR_BAD_JSON, "the line is not valid UTF-8") from None
            ref = parse_input(load_json(text))
        except EventError as exc:
            message = f"{path}:{n}: bad manifest line: {exc}"
            if strict:
                raise ValueError(message) from None
            err = EventError(exc.error_type, message)
            payload = raw.decode("utf-8", errors="replace")
            inputs.dead_letters.append(
                event_dead_letter(payload, err, now=time.time(), stage=STAGE_INPUTS)
            )
            continue
        if ref.channel_roles is None and default_roles:
            ref = dataclasses.replace(ref, channel_roles=default_roles)
        inputs.refs.append(ref)
    return inputs
