"""Sidecar transcripts: WebVTT and SRT parsing, formatting and lookup.

Pure functions except ``find_sidecar`` (which looks at the file system). The parser is
tolerant of what real caption files contain: a UTF-8 BOM, CRLF line ends, cue
identifiers, cue settings after the end time (``align:start line:0``), multi-line cues,
NOTE / STYLE / REGION blocks, voice spans (``<v Speaker>``), styling tags
(``<i>``, ``<c.loud>``, ``{\\an8}``), inline timestamps and HTML entities.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SIDECAR_EXTENSIONS: tuple[str, ...] = (".vtt", ".srt")

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})(?:[.,](\d{1,3}))?"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_VOICE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>|\{\\[^}]*\}")
_SPACE = re.compile(r"\s+")
_VTT_SKIP = ("NOTE", "STYLE", "REGION")


@dataclass(frozen=True)
class Cue:
    """One caption cue: ``text`` spoken from ``start_s`` to ``end_s`` (seconds).

    ``speaker`` is the WebVTT voice name (``<v Alice>``) when the cue gives one.
    """

    start_s: float
    end_s: float
    text: str
    speaker: str | None = None


def _seconds(h: str | None, m: str, s: str, frac: str | None) -> float:
    ms = int((frac or "0").ljust(3, "0"))
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + ms / 1000.0


def _clean(lines: list[str]) -> tuple[str, str | None]:
    raw = " ".join(lines)
    voice = _VOICE.search(raw)
    text = html.unescape(_TAG.sub("", raw)).replace("\u00a0", " ")
    return _SPACE.sub(" ", text).strip(), (voice.group(1).strip() if voice else None)


def parse_captions(text: str) -> list[Cue]:
    """Parse WebVTT or SRT ``text`` into cues sorted by start time.

    Cues whose text is empty after removing tags are dropped. Blank input gives ``[]``.
    Raises ``ValueError`` when ``text`` is not captions (no WEBVTT header and no timing
    line) or a timing line is malformed; the message gives the block number, never the
    text itself (a caption path may point at any file).
    """
    body = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not body.strip():
        return []
    is_vtt = body.lstrip().startswith("WEBVTT")
    cues: list[Cue] = []
    saw_timing = False
    for n_block, block in enumerate(re.split(r"\n\s*\n", body.strip()), 1):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines or (is_vtt and lines[0].split(" ")[0].strip() in _VTT_SKIP):
            continue
        idx = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if idx is None:
            if lines[0].startswith("WEBVTT"):
                continue
            if cues and not is_vtt:  # SRT text that itself contained a blank line
                prev = cues[-1]
                extra, _ = _clean(lines)
                cues[-1] = Cue(prev.start_s, prev.end_s, f"{prev.text} {extra}", prev.speaker)
                continue
            raise ValueError(f"text is not WebVTT or SRT: no timing line in block {n_block}")
        match = _TIMING.match(lines[idx])
        if match is None:
            raise ValueError(f"text has a malformed cue timing line in block {n_block}")
        saw_timing = True
        g = match.groups()
        start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
        if end < start:
            raise ValueError(f"text has a cue ending before it starts in block {n_block}")
        cue_text, speaker = _clean(lines[idx + 1 :])
        if cue_text:
            cues.append(Cue(start, end, cue_text, speaker))
    if not saw_timing and not is_vtt:
        raise ValueError("text is not WebVTT or SRT: no cue timing found")
    return sorted(cues, key=lambda c: (c.start_s, c.end_s))


def _stamp(t: float) -> str:
    ms = int(round(t * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def format_vtt(cues: Iterable[Cue]) -> str:
    """WebVTT text for ``cues`` (voice spans for cues with a speaker)."""
    out = ["WEBVTT", ""]
    for cue in cues:
        if cue.end_s < cue.start_s:
            raise ValueError(f"cues must not end before they start, got {cue!r}")
        body = f"<v {cue.speaker}>{cue.text}" if cue.speaker else cue.text
        out += [f"{_stamp(cue.start_s)} --> {_stamp(cue.end_s)}", body, ""]
    return "\n".join(out)


def find_sidecar(media_path: str) -> str | None:
    """The caption file beside ``media_path`` with the same stem (``.vtt`` before ``.srt``,
    either case), or ``None``. Only local paths are looked at."""
    if "://" in media_path:
        return None
    base = Path(media_path)
    for ext in SIDECAR_EXTENSIONS:
        for candidate in (base.with_suffix(ext), base.with_suffix(ext.upper())):
            if candidate.is_file():
                return str(candidate)
    return None
