"""Cutting one audio channel's timeline into analysis spans (pure; no I/O, no Beam).

Spans come from caption cues when a transcript exists, else from voice activity
detection (Silero VAD as shipped in faster-whisper); stretches with no speech longer than
``SegmentConfig.window_s`` are covered by fixed windows so faces in silent video are
still scored.

Rules, the same for whole-file (``speech_spans`` + ``fill_gaps``) and streaming
(``StreamingSegmenter``) use:

- VAD turns are padded by ``speech_pad_ms`` and closed after ``min_silence_ms`` of
  silence; turns shorter than ``min_s`` are dropped; turns longer than ``max_s`` are split
  (by the VAD at a pause when it can, else into equal pieces).
- Caption cues are used as they are (never dropped or split).
- A gap of at least ``window_s`` between spans (or at either end of the timeline) is tiled
  with windows of ``window_s`` from its start; the remainder becomes a last, shorter
  window if it is at least ``min_s`` long.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from sentistream.models.audio import SAMPLE_RATE, speech_timestamps
from sentistream.transforms.config import SegmentConfig
from sentistream.transforms.media.captions import Cue

VAD_WINDOW = 512  # Silero's frame, in samples: buffers are cut on this grid
KIND_CAPTIONS = "captions"
KIND_VAD = "vad"
KIND_WINDOW = "window"
_EPS = 1e-6


@dataclass(frozen=True)
class Span:
    """A time range [start_s, end_s) to analyse; ``kind`` says how it was found
    (``captions`` | ``vad`` | ``window``); ``text`` is the caption text for captions."""

    start_s: float
    end_s: float
    kind: str
    text: str | None = None

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


def _check_audio(audio: np.ndarray) -> np.ndarray:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"audio must be 1-D 16 kHz mono, got shape {arr.shape}")
    return arr


def raw_speech(audio: np.ndarray, cfg: SegmentConfig) -> list[tuple[float, float]]:
    """Silero VAD turns in ``audio`` (1-D, 16 kHz) as (start_s, end_s) from its sample 0,
    padded, with VAD-side splitting at ``max_s``; no min/max post-processing."""
    return speech_timestamps(
        _check_audio(audio),
        threshold=cfg.vad_threshold,
        min_silence_ms=cfg.min_silence_ms,
        speech_pad_ms=cfg.speech_pad_ms,
        max_speech_s=cfg.max_s,
    )


def shape_turn(start_s: float, end_s: float, cfg: SegmentConfig) -> list[Span]:
    """A VAD turn as ``vad`` spans: none if shorter than ``min_s``, equal pieces of at
    most ``max_s`` if longer."""
    length = end_s - start_s
    if length < cfg.min_s - _EPS:
        return []
    n = max(1, math.ceil(length / cfg.max_s - _EPS))
    edges = [start_s + length * i / n for i in range(n + 1)]
    return [Span(round(a, 3), round(b, 3), KIND_VAD) for a, b in itertools.pairwise(edges)]


def speech_spans(
    audio_16k_mono: np.ndarray, cfg: SegmentConfig, offset_s: float = 0.0
) -> list[Span]:
    """Speech turns (``vad`` spans) in a whole recording; times are ``offset_s`` + the
    position in ``audio_16k_mono`` (1-D float32 at 16 kHz)."""
    spans: list[Span] = []
    for start, end in raw_speech(audio_16k_mono, cfg):
        spans += shape_turn(offset_s + start, offset_s + end, cfg)
    return spans


def window_spans(gap_start_s: float, gap_end_s: float, cfg: SegmentConfig) -> list[Span]:
    """Fixed windows covering the gap [gap_start_s, gap_end_s) (see the module rules)."""
    if gap_end_s - gap_start_s < cfg.window_s - _EPS:
        return []
    spans, t = [], gap_start_s
    while t + cfg.window_s <= gap_end_s + _EPS:
        spans.append(Span(round(t, 3), round(t + cfg.window_s, 3), KIND_WINDOW))
        t += cfg.window_s
    if gap_end_s - t >= cfg.min_s - _EPS:
        spans.append(Span(round(t, 3), round(gap_end_s, 3), KIND_WINDOW))
    return spans


def fill_gaps(
    spans: Sequence[Span], start_s: float, end_s: float, cfg: SegmentConfig
) -> list[Span]:
    """``spans`` (sorted) with windows added in every gap of at least ``window_s``
    within [start_s, end_s)."""
    out: list[Span] = []
    cursor = start_s
    for span in spans:
        out += window_spans(cursor, span.start_s, cfg)
        out.append(span)
        cursor = max(cursor, span.end_s)
    return out + window_spans(cursor, end_s, cfg)


def caption_spans(cues: Iterable[Cue]) -> list[Span]:
    """Caption cues as ``captions`` spans, sorted."""
    return [
        Span(c.start_s, c.end_s, KIND_CAPTIONS, c.text)
        for c in sorted(cues, key=lambda c: (c.start_s, c.end_s))
        if c.end_s > c.start_s
    ]


class StreamingSegmenter:
    """Segments ONE audio channel chunk by chunk, with bounded memory.

    ``feed`` each decoded chunk in order; it returns the spans that are now final (no
    later audio can change them), in time order. A speech turn still open at a chunk's
    end is carried into the next call (at most ``max_s`` of it: longer turns are split),
    so the audio kept is about ``max_s`` + the silence guard + one chunk. ``retain_from_s``
    tells the caller from when it must keep audio and frames: no future span starts
    earlier. With ``cues`` the cue ranges are the spans and VAD never runs; with chunks
    whose audio is None the whole timeline is windows.
    """

    def __init__(self, cfg: SegmentConfig, cues: Sequence[Cue] | None = None) -> None:
        self.cfg = cfg
        self._cues = caption_spans(cues) if cues is not None else None
        self._next_cue = 0
        self._origin: float | None = None
        self._end: float | None = None  # end of the last chunk fed
        self._done = False
        self._gap_start = 0.0  # where the current span-free stretch began
        self._win_cursor = 0.0  # start of the next window in that stretch
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # sample index (from origin) of _buf[0], on the VAD grid
        self._audio_seen = False  # VAD mode: some chunk had audio
        self._emitted = 0
        self._open: tuple[float, float] | None = None
        # guard: a VAD turn ending this close to the buffer end may still grow.
        self._guard_s = (cfg.min_silence_ms + cfg.speech_pad_ms) / 1000 + 2 * VAD_WINDOW / 16e3

    @property
    def retain_from_s(self) -> float:
        """Earliest time any future span may start (audio/frames before it can go)."""
        if self._origin is None:
            return 0.0
        times = [self._win_cursor]
        if self._audio_seen:
            times.append(self._origin + self._buf_start / SAMPLE_RATE)
        if self._cues is not None and self._next_cue < len(self._cues):
            times.append(self._cues[self._next_cue].start_s)
        return min(times)

    @property
    def open_turn(self) -> tuple[float, float] | None:
        """The speech turn still open after the last ``feed`` (VAD only): its start and
        the end of the audio fed so far, or None. Its final span starts there (give or
        take the VAD's re-run over the trimmed buffer) and ends later."""
        return self._open

    @property
    def carried_s(self) -> float:
        """Seconds of audio held for the next call (the bounded carry)."""
        return self._buf.size / SAMPLE_RATE

    def feed(
        self,
        chunk_audio_mono: np.ndarray | None,
        chunk_start_s: float,
        chunk_end_s: float,
        final: bool,
    ) -> list[Span]:
        """Add one chunk ([chunk_start_s, chunk_end_s), audio sample 0 at its start, or
        None) and return the spans that became final; ``final`` flushes everything."""
        if self._done:
            raise ValueError("feed called after a final chunk; make a new StreamingSegmenter")
        if chunk_end_s < chunk_start_s:
            raise ValueError(f"chunk_end_s ({chunk_end_s}) must be >= chunk_start_s")
        if self._origin is None:
            self._origin = self._gap_start = self._win_cursor = chunk_start_s
        elif chunk_start_s < (self._end or 0.0) - 1e-3:
            raise ValueError(
                f"chunk_start_s ({chunk_start_s}) must not be before the previous chunk's "
                f"end ({self._end}): feed chunks in order"
            )
        self._end = chunk_end_s
        self._done = final
        if self._cues is not None:
            spans = self._feed_cues(chunk_end_s, final)
        elif chunk_audio_mono is None and not self._audio_seen:
            spans = self._emit_windows(chunk_end_s, close=final)
        else:
            audio = np.zeros(0, np.float32) if chunk_audio_mono is None else chunk_audio_mono
            spans = self._feed_audio(_check_audio(audio), chunk_start_s, chunk_end_s, final)
        self._emitted += len(spans)
        if final and not self._emitted and chunk_end_s - self._origin >= self.cfg.min_s - _EPS:
            # A recording shorter than one window, with no speech: one window covers it,
            # so even a short silent clip gets a row (its faces are still scored).
            spans = [Span(round(self._origin, 3), round(chunk_end_s, 3), KIND_WINDOW)]
            self._emitted = 1
        return spans

    def _emit_windows(self, settled_s: float, close: bool) -> list[Span]:
        """Full windows that end by ``settled_s``; with ``close`` the gap ends there."""
        out: list[Span] = []
        w = self.cfg.window_s
        if settled_s - self._gap_start < w - _EPS:
            return out
        while self._win_cursor + w <= settled_s + _EPS:
            start = self._win_cursor
            out.append(Span(round(start, 3), round(start + w, 3), KIND_WINDOW))
            self._win_cursor += w
        if close and settled_s - self._win_cursor >= self.cfg.min_s - _EPS:
            out.append(Span(round(self._win_cursor, 3), round(settled_s, 3), KIND_WINDOW))
            self._win_cursor = settled_s
        return out

    def _add_span(self, span: Span) -> list[Span]:
        out = self._emit_windows(span.start_s, close=True)
        self._gap_start = self._win_cursor = max(self._gap_start, span.end_s)
        return [*out, span]

    def _feed_cues(self, chunk_end_s: float, final: bool) -> list[Span]:
        assert self._cues is not None
        out: list[Span] = []
        while self._next_cue < len(self._cues):
            cue = self._cues[self._next_cue]
            if final and cue.start_s >= chunk_end_s:  # cues past the end of the media
                self._next_cue = len(self._cues)
                break
            if cue.end_s > chunk_end_s and not final:
                break
            if final and cue.end_s > chunk_end_s:
                cue = Span(cue.start_s, chunk_end_s, cue.kind, cue.text)
            out += self._add_span(cue)
            self._next_cue += 1
        settled = chunk_end_s
        if self._next_cue < len(self._cues):
            settled = min(settled, self._cues[self._next_cue].start_s)
        return out + self._emit_windows(settled, close=final)

    def _feed_audio(
        self, audio: np.ndarray, chunk_start_s: float, chunk_end_s: float, final: bool
    ) -> list[Span]:
        assert self._origin is not None
        first = round((chunk_start_s - self._origin) * SAMPLE_RATE)
        if not self._audio_seen:  # the buffer starts with the first chunk that has audio
            self._audio_seen = True
            self._buf_start = first // VAD_WINDOW * VAD_WINDOW
        last = round((chunk_end_s - self._origin) * SAMPLE_RATE)
        have = self._buf_start + self._buf.size
        audio = audio[max(have - first, 0) : max(last - first, 0)]  # drop overlap, excess
        pad_before = max(first - have, 0)
        pad_after = max(last - (max(first, have) + audio.size), 0)  # audio ended early
        self._buf = np.concatenate(
            [self._buf, np.zeros(pad_before, np.float32), audio, np.zeros(pad_after, np.float32)]
        )
        buf_t0 = self._origin + self._buf_start / SAMPLE_RATE
        buf_end = buf_t0 + self._buf.size / SAMPLE_RATE
        horizon = buf_end if final else buf_end - self._guard_s
        out: list[Span] = []
        open_start: float | None = None
        self._open = None
        for start, end in raw_speech(self._buf, self.cfg):
            start, end = buf_t0 + start, buf_t0 + end
            if end > horizon - _EPS and not final:
                open_start = start
                turn_start = round(max(start, self._win_cursor), 3)
                self._open = (turn_start, round(buf_end, 3)) if buf_end > turn_start else None
                break
            start = max(start, self._win_cursor)  # never overlap what was already emitted
            for span in shape_turn(start, end, self.cfg):
                out += self._add_span(span)
        pad_s = self.cfg.speech_pad_ms / 1000
        settled = horizon - pad_s if open_start is None else min(open_start, horizon - pad_s)
        out += self._emit_windows(buf_end if final else settled, close=final)
        keep_from = max(buf_t0, self._gap_start, min(settled, horizon - 2 * pad_s))
        self._trim(keep_from)
        return out

    def _trim(self, keep_from_s: float) -> None:
        assert self._origin is not None
        idx = int((keep_from_s - self._origin) * SAMPLE_RATE) // VAD_WINDOW * VAD_WINDOW
        cut = min(max(idx - self._buf_start, 0), self._buf.size)
        if self._done:
            cut = self._buf.size
        self._buf = self._buf[cut:].copy() if cut else self._buf
        self._buf_start += cut


def segment_whole(
    audio_16k_mono: np.ndarray | None,
    cfg: SegmentConfig,
    start_s: float,
    end_s: float,
    cues: Sequence[Cue] | None = None,
) -> list[Span]:
    """Segment a whole timeline at once (the reference the streaming segmenter matches)."""
    return StreamingSegmenter(cfg, cues=cues).feed(audio_16k_mono, start_s, end_s, final=True)
