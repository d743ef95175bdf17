"""Speech recognition of many short segments with faster-whisper, packed into windows.

Whisper pads every input to 30 s, so transcribing 2-3 s segments one at a time spends
most of its compute on padding. Here segments are *packed*: each segment's audio is
trimmed to its loud part (plus a short pad), the trimmed pieces are concatenated with
``gap_s`` seconds of digital silence between them into windows of at most ``pack_s``
seconds, each window is transcribed once, and the window's words are split back among
its segments by a monotonic alignment (:func:`assign_words`, in
:mod:`sentistream.models.asr.align`; Whisper's word times alone are too rough at
pauses). A segment longer than ``pack_s`` is transcribed alone (faster-whisper walks
through it in 30 s windows). A packed segment whose result looks like a decoding failure
(implausible speaking rate, repetition loop) is transcribed again alone.

Guards against Whisper's hallucinations (text invented for silence or noise):

1. Energy gate: a segment whose RMS is below ``silence_rms`` (about -54 dBFS, the voice
   branch's silence level) never reaches the model; it gets no words, reason ``silence``.
2. faster-whisper's own rule drops a 30 s window whose no-speech probability is above
   0.6 while its mean token log-probability is below -1.
3. Punctuation-only tokens, and words timed outside every packed segment (in the
   padding after the last one), are dropped.
4. A segment whose words' mean probability is below ``min_mean_prob`` loses all its
   words (reason ``low_confidence``): hallucinated text on noise is low-probability,
   while the first word of real speech alone often is (so no per-word cut by default).

``confidence`` of a segment is the mean probability of its kept words (0.0 without words).

No I/O and no Beam. The model is a ``faster_whisper.WhisperModel`` (see
:func:`sentistream.models.whisper.load_whisper_asr`) or anything with its
``transcribe``. Measured figures: ``docs/asr.md``.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sentistream.models.asr.align import AsrWord, Span, assign_words

if TYPE_CHECKING:
    import faster_whisper

from sentistream.models.audio import SAMPLE_RATE

WINDOW_S = 30.0  # Whisper's input window

REASON_SILENCE = "silence"
REASON_NO_WORDS = "no_words"
REASON_LOW_CONFIDENCE = "low_confidence"


@dataclass(frozen=True)
class AsrOptions:
    """Decoding and packing parameters.

    beam_size, language: passed to faster-whisper (``language=None`` detects it).
    pack_s: most seconds of audio (segments and gaps) per packed window; 0 = no packing
        (every segment transcribed alone, the baseline).
    gap_s: digital silence between packed segments.
    trim_level: samples quieter than this (absolute amplitude) at a segment's edges are
        trimmed before packing; ``pad_s`` of audio is kept on each side of the loud part.
    silence_rms: segments quieter than this RMS are not transcribed (reason ``silence``).
    min_word_prob: words below this probability are dropped (0 keeps all).
    min_mean_prob: segments whose kept words average below this lose them all.
    max_compression_ratio, min_words_per_s, max_words_per_s: a packed segment whose text
        is above this gzip ratio (a repetition loop), or that got fewer or more words per
        second of its trimmed audio than people say (Whisper skipped it, or repeated it or
        its neighbour's words landed in it), is transcribed again alone.
    temperatures: decoding temperatures for segments transcribed alone (fallback order);
        packed windows decode at the first one only.
    """

    beam_size: int = 1
    language: str | None = "en"
    pack_s: float = 28.0
    gap_s: float = 1.0
    trim_level: float = 0.01
    pad_s: float = 0.2
    silence_rms: float = 2e-3
    min_word_prob: float = 0.0
    min_mean_prob: float = 0.35
    max_compression_ratio: float = 2.4
    min_words_per_s: float = 1.0
    max_words_per_s: float = 4.5
    temperatures: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)

    def __post_init__(self) -> None:
        if not 1 <= self.beam_size <= 16:
            raise ValueError(f"beam_size must be in 1..16, got {self.beam_size!r}")
        if self.pack_s != 0 and not 1 <= self.pack_s <= WINDOW_S:
            raise ValueError(f"pack_s must be 0 or in [1, 30] seconds, got {self.pack_s!r}")
        if not 0 <= self.gap_s <= 5:
            raise ValueError(f"gap_s must be in [0, 5] seconds, got {self.gap_s!r}")
        if self.pad_s < 0:
            raise ValueError(f"pad_s must be >= 0, got {self.pad_s!r}")
        if not 0 <= self.min_word_prob <= 1 or not 0 <= self.min_mean_prob <= 1:
            raise ValueError(
                f"min_word_prob and min_mean_prob must be in [0, 1], got "
                f"{self.min_word_prob!r}, {self.min_mean_prob!r}"
            )
        if not self.temperatures:
            raise ValueError("temperatures must not be empty")


class SegmentText(NamedTuple):
    """What one segment said: text, words, confidence (mean word probability), language.

    ``reason`` says why there are no words (``silence``, ``no_words``,
    ``low_confidence``); None when there are words.
    """

    text: str
    words: tuple[AsrWord, ...]
    confidence: float
    language: str | None
    reason: str | None = None


class PackedWindow(NamedTuple):
    """(samples,) float32 audio at 16 kHz and the spans of the segments packed in it."""

    audio: np.ndarray
    spans: tuple[Span, ...]


def rms(audio: np.ndarray) -> float:
    """Root mean square of ``audio`` (0.0 when empty)."""
    if audio.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def trim_bounds(audio: np.ndarray, *, level: float, pad_s: float) -> tuple[int, int]:
    """(first, stop) sample indices of the part of ``audio`` louder than ``level``, widened
    by ``pad_s`` on each side; the whole clip when nothing is that loud."""
    loud = np.flatnonzero(np.abs(audio) > level)
    if loud.size == 0:
        return 0, int(audio.size)
    pad = int(round(pad_s * SAMPLE_RATE))
    return max(0, int(loud[0]) - pad), min(int(audio.size), int(loud[-1]) + 1 + pad)


def pack(
    audios: Sequence[np.ndarray],
    *,
    pack_s: float,
    gap_s: float,
    trim_level: float = 0.0,
    pad_s: float = 0.0,
) -> tuple[list[PackedWindow], list[int]]:
    """Greedily pack segments, in order, into windows of at most ``pack_s`` seconds.

    Args:
        audios: N segments, each (samples,) float32 mono at 16 kHz.
        pack_s: most seconds per window (trimmed segments plus gaps between them).
        gap_s: silence between consecutive segments of a window.
        trim_level, pad_s: see :func:`trim_bounds` (level 0 trims only exact zeros).

    Returns:
        (windows, alone): the packed windows, and the indices of segments longer than
        ``pack_s`` after trimming, to be transcribed alone. Every index is in exactly one.
    """
    if not 0 < pack_s <= WINDOW_S:
        raise ValueError(f"pack_s must be in (0, 30] seconds, got {pack_s!r}")
    gap = np.zeros(int(round(gap_s * SAMPLE_RATE)), np.float32)
    limit = int(round(pack_s * SAMPLE_RATE))
    windows: list[PackedWindow] = []
    alone: list[int] = []
    pieces: list[np.ndarray] = []
    spans: list[Span] = []
    cursor = 0

    def flush() -> None:
        nonlocal pieces, spans, cursor
        if spans:
            windows.append(PackedWindow(np.concatenate(pieces), tuple(spans)))
        pieces, spans, cursor = [], [], 0

    for i, audio in enumerate(audios):
        wave = np.asarray(audio, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"audios[{i}] must be 1-D, got shape {wave.shape}")
        a, b = trim_bounds(wave, level=trim_level, pad_s=pad_s)
        piece = wave[a:b]
        if piece.size > limit:
            alone.append(i)
            continue
        need = piece.size + (gap.size if spans else 0)
        if cursor + need > limit:
            flush()
        if spans:
            pieces.append(gap)
            cursor += gap.size
        spans.append(Span(i, cursor / SAMPLE_RATE, piece.size / SAMPLE_RATE, a / SAMPLE_RATE))
        pieces.append(piece)
        cursor += piece.size
    flush()
    return windows, alone


def compression_ratio(text: str) -> float:
    """gzip compression ratio of ``text`` (Whisper's repetition-loop detector)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def finish(words: Sequence[AsrWord], language: str | None, options: AsrOptions) -> SegmentText:
    """Apply the word and segment guards and build the segment's text (pure)."""
    kept = tuple(
        w
        for w in words
        if w.probability >= options.min_word_prob and any(ch.isalnum() for ch in w.text)
    )
    if not kept:
        return SegmentText("", (), 0.0, language, REASON_NO_WORDS)
    confidence = float(np.mean([w.probability for w in kept]))
    if confidence < options.min_mean_prob:
        return SegmentText("", (), 0.0, language, REASON_LOW_CONFIDENCE)
    text = "".join(w.text for w in kept).strip()
    return SegmentText(text, kept, round(confidence, 4), language, None)


class Transcriber:
    """Transcribes lists of segments with one faster-whisper model.

    ``calls`` counts model invocations (``WhisperModel.transcribe``), ``retries`` the
    packed segments transcribed again alone, ``audio_s`` the seconds of audio sent to the
    model (packed windows, gaps included).
    """

    def __init__(self, model: faster_whisper.WhisperModel, options: AsrOptions) -> None:
        self.model = model
        self.options = options
        self.calls = 0
        self.retries = 0
        self.audio_s = 0.0

    def transcribe(self, audios: Sequence[np.ndarray]) -> list[SegmentText]:
        """One :class:`SegmentText` per segment of ``audios`` ((samples,) float32, 16 kHz)."""
        opts = self.options
        results: list[SegmentText | None] = [None] * len(audios)
        todo: list[int] = []
        for i, audio in enumerate(audios):
            wave = np.asarray(audio, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"audios[{i}] must be 1-D, got shape {wave.shape}")
            if rms(wave) < opts.silence_rms:
                results[i] = SegmentText("", (), 0.0, opts.language, REASON_SILENCE)
            else:
                todo.append(i)
        if opts.pack_s == 0:
            for i in todo:
                results[i] = self._alone(audios[i])
            return [r for r in results if r is not None]
        windows, alone = pack(
            [audios[i] for i in todo],
            pack_s=opts.pack_s,
            gap_s=opts.gap_s,
            trim_level=opts.trim_level,
            pad_s=opts.pad_s,
        )
        for k in alone:
            results[todo[k]] = self._alone(audios[todo[k]])
        for window in windows:
            if len(window.spans) == 1:
                index = todo[window.spans[0].item]
                results[index] = self._alone(audios[index])
                continue
            words, starts, language = self._run(window.audio, opts.temperatures[:1])
            per_span = assign_words(
                words, window.spans, tolerance_s=max(opts.gap_s, 0.5), segment_starts=starts
            )
            for span, span_words in zip(window.spans, per_span, strict=True):
                index = todo[span.item]
                if self._suspicious(span, span_words):
                    self.retries += 1
                    results[index] = self._alone(audios[index])
                else:
                    results[index] = finish(span_words, language, opts)
        assert all(r is not None for r in results)
        return [r for r in results if r is not None]

    def _suspicious(self, span: Span, words: Sequence[AsrWord]) -> bool:
        """Whether a packed segment's words look like a decoding failure: an implausible
        speaking rate (Whisper sometimes skips or repeats a sentence of a long window) or
        a repetition loop."""
        opts = self.options
        text = "".join(w.text for w in words)
        if len(words) < opts.min_words_per_s * span.length_s:
            return True
        if len(words) > opts.max_words_per_s * max(span.length_s, 1.0):
            return True
        return compression_ratio(text) > opts.max_compression_ratio

    def _alone(self, audio: np.ndarray) -> SegmentText:
        opts = self.options
        wave = np.asarray(audio, dtype=np.float32)
        a, b = trim_bounds(wave, level=opts.trim_level, pad_s=opts.pad_s)
        words, _, language = self._run(wave[a:b], opts.temperatures)
        shift = a / SAMPLE_RATE
        moved = [
            AsrWord(w.text, round(w.start_s + shift, 3), round(w.end_s + shift, 3), w.probability)
            for w in words
        ]
        return finish(moved, language, opts)

    def _run(
        self, audio: np.ndarray, temperatures: tuple[float, ...]
    ) -> tuple[list[AsrWord], frozenset[int], str | None]:
        """Transcribe one clip: its words (times in the clip), the indices of the words
        that start a Whisper segment, and the language."""
        opts = self.options
        self.calls += 1
        self.audio_s += audio.size / SAMPLE_RATE
        segments, info = self.model.transcribe(
            audio,
            language=opts.language,
            beam_size=opts.beam_size,
            temperature=list(temperatures),
            word_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        words: list[AsrWord] = []
        starts: set[int] = set()
        for segment in segments:
            starts.add(len(words))
            words.extend(
                AsrWord(w.word, float(w.start), float(w.end), float(w.probability))
                for w in segment.words or ()
            )
        return words, frozenset(starts), info.language
