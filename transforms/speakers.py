"""Diarized speakers: their labels (``spk_0``, ``spk_1``, ... by first appearance), the
rules that map them to roles (``--speaker-roles first=agent,*=customer``), and a
recording's ``Speakers`` (its timelines), which ``RecordingSegments`` cuts spans by.
Pure; ``transforms/diarization.py`` makes ``Speakers``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sentistream.models.speaker.diarize import Timeline

_SPK = re.compile(r"spk_(\d+)")


def speaker_label(index: int) -> str:
    """The ``speaker`` value of the ``index``-th diarized speaker of a recording."""
    return f"spk_{index}"


def parse_speaker_roles(spec: str) -> tuple[tuple[str, str], ...]:
    """Parse ``"first=agent,*=customer"`` (keys ``first``, ``spk_N``, ``*``); ``""``: no
    rules (every speaker gets the default role)."""
    rules: list[tuple[str, str]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, role = (x.strip() for x in part.partition("="))
        if not sep or not key or not role:
            raise ValueError(f"speaker role rule {part!r} must look like 'first=agent'")
        if key not in ("first", "*") and not _SPK.fullmatch(key):
            raise ValueError(f"speaker role rule {part!r}: the key must be 'first', 'spk_N' or '*'")
        rules.append((key, role))
    return tuple(rules)


def format_speaker_roles(rules: tuple[tuple[str, str], ...]) -> str:
    """The ``--speaker-roles`` spelling of rules (the inverse of ``parse_speaker_roles``;
    '' for none)."""
    return ",".join(f"{key}={role}" for key, role in rules)


def role_of(index: int, rules: tuple[tuple[str, str], ...], default_role: str) -> str:
    """The role of diarized speaker ``index``: its ``spk_N`` rule, else ``first`` for
    speaker 0, else ``*``, else ``default_role``."""
    by_key = dict(rules)
    for key in (speaker_label(index), "first" if index == 0 else None, "*"):
        if key is not None and key in by_key:
            return by_key[key]
    return default_role


@dataclass(frozen=True)
class Speakers:
    """The diarization of one recording: a timeline per track, and the role rules."""

    timelines: tuple[Timeline, ...]
    roles: tuple[tuple[str, str], ...]
    min_piece_s: float
    version: str

    def role(self, index: int, default_role: str) -> str:
        return role_of(index, self.roles, default_role)
