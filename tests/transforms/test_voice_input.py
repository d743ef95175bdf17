"""transforms/voice.py ``voice_input``: which segments reach the voice model, and the
reason given for the ones that do not."""

from __future__ import annotations

import numpy as np
import pytest

from sentistream.transforms.records import SegmentRecord, VideoRef
from sentistream.transforms.voice import voice_input

SR = 16_000


def _record(audio: np.ndarray | None, segmenter: str = "vad") -> SegmentRecord:
    return SegmentRecord(
        ref=VideoRef(uri="/m/a.mp4", video_id="a"),
        segment_id="s",
        channel=0,
        speaker="unknown",
        start_s=0.0,
        end_s=2.0,
        segmenter=segmenter,
        has_video=False,
        has_audio=audio is not None,
        audio=audio,
    )


@pytest.mark.parametrize(
    ("audio", "segmenter", "reason"),
    [
        (None, "vad", "no_audio_stream"),
        (np.zeros(2 * SR, np.float32), "window", "silence"),
        (np.zeros(2 * SR, np.float32), "vad", "silence"),
        (np.random.default_rng(0).normal(0, 0.3, 2 * SR).astype(np.float32), "window", "no_speech"),
        (np.full(2 * SR, np.nan, np.float32), "vad", "invalid_audio"),
        (np.array([0.1, np.inf] * SR, np.float32), "captions", "invalid_audio"),
        (np.full(SR // 10, 0.2, np.float32), "vad", "too_short"),
    ],
)
def test_segments_the_voice_model_cannot_score_say_why(audio, segmenter, reason) -> None:
    out = voice_input(_record(audio, segmenter), min_speech_s=0.3)
    assert not isinstance(out, np.ndarray) and out.reason == reason


def test_speech_reaches_the_model() -> None:
    audio = (0.2 * np.sin(np.arange(2 * SR) / 7)).astype(np.float32)
    assert isinstance(voice_input(_record(audio, "captions"), min_speech_s=0.3), np.ndarray)
