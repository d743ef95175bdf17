"""Word-to-segment alignment for packed ASR windows (:mod:`sentistream.models.asr.transcriber`).

A packed window is transcribed once; its words (times in the window) are then cut into
consecutive runs, one per packed segment, by dynamic programming (:func:`assign_words`),
and moved to each segment's own time. Pure functions: no I/O, no model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

# Costs of the word-to-segment alignment (:func:`assign_words`), in seconds of misplacement.
SPLIT_COST_S = 2.0  # starting a new segment inside a sentence and inside a Whisper segment
EMPTY_COST_S = 1.0  # a packed segment that gets no word at all
INSTANT_WEIGHT = 0.25  # weight of a word timed with (near) zero duration: its time is unsure
_SENTENCE_END = (".", "?", "!")


class AsrWord(NamedTuple):
    """One recognised word; times in seconds from the start of its segment's audio."""

    text: str
    start_s: float
    end_s: float
    probability: float


class Span(NamedTuple):
    """Where one segment sits in a packed window.

    item: position of the segment in the caller's list.
    offset_s: start of its (trimmed) audio in the window.
    length_s: length of its trimmed audio.
    trim_s: seconds trimmed from the head of the segment's audio (word times are shifted
        back by this to be relative to the segment's own start).
    """

    item: int
    offset_s: float
    length_s: float
    trim_s: float


def _distance(word: AsrWord, span: Span) -> float:
    """Seconds between a word's time range and a span (0 when they overlap)."""
    return max(span.offset_s - word.end_s, word.start_s - (span.offset_s + span.length_s), 0.0)


def assign_words(
    words: Sequence[AsrWord],
    spans: Sequence[Span],
    *,
    tolerance_s: float,
    segment_starts: frozenset[int] = frozenset(),
) -> list[list[AsrWord]]:
    """Split a window's words (times in the window) among its packed segments.

    Whisper's word times (cross-attention alignment) are rough at pauses: the last word
    of a sentence is often put at the start of the next speech, a whole phrase sometimes
    at one instant. So words are not placed one by one: the words, in order, are cut into
    consecutive runs, one run per span (possibly empty), by dynamic programming that
    minimises the total cost

    - each word's distance in seconds to its span (weighted ``INSTANT_WEIGHT`` for a word
      timed with zero duration),
    - ``SPLIT_COST_S`` for a cut that is neither after a sentence end (``. ? !``) nor at
      the start of a Whisper segment (``segment_starts``: indices into ``words``),
    - ``EMPTY_COST_S`` for each span left with no word.

    Punctuation-only tokens, and words farther than ``tolerance_s`` from every span (in
    the silence after the last one, where only hallucinations can be), are dropped first.
    Returned times are relative to each segment's own (untrimmed) audio, clipped to the
    segment's span.

    Returns:
        One list of words per span, in the order of ``spans``.
    """
    if not spans:
        return []
    kept: list[AsrWord] = []
    starts: set[int] = set()
    pending_start = False
    for i, word in enumerate(words):
        pending_start = pending_start or i in segment_starts
        near = min(_distance(word, s) for s in spans) <= tolerance_s
        if near and any(ch.isalnum() for ch in word.text):
            if pending_start:
                starts.add(len(kept))
            kept.append(word)
            pending_start = False
    out: list[list[AsrWord]] = [[] for _ in spans]
    if not kept:
        return out
    n, m = len(kept), len(spans)
    place = [
        [(INSTANT_WEIGHT if w.end_s - w.start_s < 0.02 else 1.0) * _distance(w, s) for s in spans]
        for w in kept
    ]
    cost = [[math.inf] * m for _ in range(n)]
    back = [[0] * m for _ in range(n)]
    for k in range(m):
        cost[0][k] = EMPTY_COST_S * k + place[0][k]
    for i in range(1, n):
        free = i in starts or kept[i - 1].text.rstrip().endswith(_SENTENCE_END)
        split = 0.0 if free else SPLIT_COST_S
        for k in range(m):
            best, arg = cost[i - 1][k], k
            for j in range(k):
                c = cost[i - 1][j] + split + EMPTY_COST_S * (k - j - 1)
                if c < best:
                    best, arg = c, j
            cost[i][k] = best + place[i][k]
            back[i][k] = arg
    last = min(range(m), key=lambda k: cost[n - 1][k] + EMPTY_COST_S * (m - 1 - k))
    for i in range(n - 1, -1, -1):
        out[last].append(_to_segment_time(kept[i], spans[last]))
        last = back[i][last]
    for run in out:
        run.reverse()
    return out


def _to_segment_time(word: AsrWord, span: Span) -> AsrWord:
    """``word`` with times moved from the window to its segment's own audio."""

    def local(t: float) -> float:
        inside = min(max(t, span.offset_s), span.offset_s + span.length_s)
        return round(inside - span.offset_s + span.trim_s, 3)

    return word._replace(start_s=local(word.start_s), end_s=local(word.end_s))
