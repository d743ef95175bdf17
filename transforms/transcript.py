"""What was said in a segment: the one place that chooses caption text or speech recognition.

The decoder only carries the caption cue's text (``SegmentRecord.caption``, when the
sidecar is read: ``SegmentConfig.prefer_captions``); the ``Transcript`` step sets
``SegmentRecord.transcript``, once, with ``settle``. With speech recognition in the data
path that step is ``RunInference(AsrHandler)`` (``transforms/asr.py``), else a plain map of
``settle_captions``. Per record (``asr_decision``, when ASR runs):

- the policy does not enable ``text``: not transcribed (``policy``);
- it has caption text and ``AsrConfig.prefer_captions``: the captions win (``captions``);
- it has no audio: not transcribed (``no_audio``);
- its segmenter is ``window`` (voice activity detection found no speech there): an empty
  ASR transcript without running the model (``no_speech_window``);
- otherwise it is transcribed (``transcribe``).

A record that is not transcribed, or whose transcription failed, keeps the caption text
as its transcript when it has one (source ``captions``), else none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sentistream.models.asr.transcriber import SegmentText
from sentistream.transforms.config import AsrConfig
from sentistream.transforms.records import Element, SegmentRecord, Transcript, Word

SOURCE_ASR = "asr"
SOURCE_CAPTIONS = "captions"

# Decisions of asr_decision (also the suffixes of the ASR step's skip counters).
TRANSCRIBE = "transcribe"
SKIP_POLICY = "policy"
SKIP_CAPTIONS = "captions"
SKIP_NO_AUDIO = "no_audio"
NO_SPEECH_WINDOW = "no_speech_window"


def asr_decision(record: SegmentRecord, config: AsrConfig) -> str:
    """What speech recognition does with ``record`` (pure): one of ``transcribe``,
    ``policy``, ``captions``, ``no_audio`` or ``no_speech_window`` (see the module
    docstring)."""
    if not record.allows("text"):
        return SKIP_POLICY
    if config.prefer_captions and record.caption is not None and record.caption.strip():
        return SKIP_CAPTIONS
    if not record.has_audio or record.audio is None or record.audio.size == 0:
        return SKIP_NO_AUDIO
    if record.segmenter == "window":
        return NO_SPEECH_WINDOW
    return TRANSCRIBE


def caption_transcript(record: SegmentRecord) -> Transcript | None:
    """The caption text as a transcript (confidence 1.0), or None without captions."""
    if record.caption is None:
        return None
    return Transcript(text=record.caption, source=SOURCE_CAPTIONS, confidence=1.0)


def asr_transcript(result: SegmentText, start_s: float, default_language: str | None) -> Transcript:
    """A recognition result as a ``Transcript``, word times moved to the recording."""
    return Transcript(
        text=result.text,
        source=SOURCE_ASR,
        confidence=float(result.confidence),
        language=result.language or default_language or "en",
        words=tuple(
            Word(
                text=w.text.strip(),
                start_s=round(start_s + w.start_s, 3),
                end_s=round(start_s + w.end_s, 3),
                probability=round(float(w.probability), 4),
            )
            for w in result.words
        ),
    )


def empty_transcript(language: str | None) -> Transcript:
    """The transcript of a segment with no speech: no text, source ``asr``, confidence 0."""
    return Transcript(text="", source=SOURCE_ASR, confidence=0.0, language=language or "en")


def settle(
    record: SegmentRecord, recognised: Transcript | None, drop: Iterable[str] = ()
) -> SegmentRecord:
    """``record`` with its transcript set (``recognised``, else the caption text) and the
    ``drop`` inputs cleared: the only place a transcript is set."""
    transcript = recognised if recognised is not None else caption_transcript(record)
    return dataclasses.replace(record.dropping(drop), transcript=transcript)


def settle_captions(element: Element, drop: Iterable[str] = ()) -> Element:
    """The transcript step without speech recognition; dead letters and recording ends
    pass through."""
    if not isinstance(element, SegmentRecord):
        return element
    return settle(element, None, drop)
