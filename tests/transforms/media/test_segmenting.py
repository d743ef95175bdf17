"""Segmentation: VAD on synthesized speech, streaming == whole-file, windows, captions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentistream.pipelines.demo import synth
from sentistream.transforms.config import DecodeConfig, SegmentConfig
from sentistream.transforms.media.captions import Cue
from sentistream.transforms.media.decoding import MediaChunk, iter_chunks
from sentistream.transforms.media.segmenting import (
    KIND_CAPTIONS,
    KIND_VAD,
    KIND_WINDOW,
    Span,
    StreamingSegmenter,
    fill_gaps,
    segment_whole,
    speech_spans,
    window_spans,
)

RATE = 16000
CFG = SegmentConfig()
SENTENCES = (
    "I am really happy with how this turned out, thank you so much!",
    "The meeting is on Tuesday.",
    "This is awful, I am very disappointed and angry.",
)


@pytest.fixture(scope="module")
def speech() -> list[np.ndarray]:
    """The sentences as 16 kHz speech, silence trimmed."""
    out = []
    for text in SENTENCES:
        audio, rate = synth.tts(text)
        out.append(synth.resample(synth.trim_silence(audio), rate, RATE))
    return out


def place(pieces: list[np.ndarray], starts: list[float], total_s: float) -> tuple:
    """A track with ``pieces`` at ``starts``, and the true (start, end) of each."""
    track = np.zeros(round(total_s * RATE), np.float32)
    truth = []
    for piece, start in zip(pieces, starts, strict=True):
        i = round(start * RATE)
        track[i : i + piece.size] = piece
        truth.append((start, start + piece.size / RATE))
    return track, truth


def stream(
    audio: np.ndarray | None, total_s: float, chunk_s: float, seg: StreamingSegmenter
) -> tuple[list[Span], list[float], list[float]]:
    """Feed ``audio`` in chunks; (spans, carried seconds after each, retain_from_s after
    each). Checks that no span emitted later starts before an earlier retain_from_s."""
    spans: list[Span] = []
    carried, retain, emitted = [], [], []
    n = int(np.ceil(total_s / chunk_s - 1e-9))
    for k in range(n):
        a, b = k * chunk_s, min(total_s, (k + 1) * chunk_s)
        piece = None if audio is None else audio[round(a * RATE) : round(b * RATE)]
        spans += seg.feed(piece, a, b, final=k == n - 1)
        carried.append(seg.carried_s)
        retain.append(seg.retain_from_s)
        emitted.append(len(spans))
    for count, keep_from in zip(emitted, retain, strict=True):
        assert all(s.start_s >= keep_from - 1e-6 for s in spans[count:])
    return spans, carried, retain


def close(a: list[Span], b: list[Span], tol: float) -> bool:
    return len(a) == len(b) and all(
        x.kind == y.kind and abs(x.start_s - y.start_s) <= tol and abs(x.end_s - y.end_s) <= tol
        for x, y in zip(a, b, strict=True)
    )


def test_vad_finds_speech_near_the_truth(speech: list[np.ndarray]) -> None:
    track, truth = place(speech, [2.0, 7.0, 14.0], 20.0)
    spans = speech_spans(track, CFG, offset_s=100.0)
    assert [s.kind for s in spans] == [KIND_VAD] * 3
    for span, (start, end) in zip(spans, truth, strict=True):
        assert abs(span.start_s - 100.0 - start) < 0.3
        assert abs(span.end_s - 100.0 - end) < 0.3


@pytest.mark.parametrize("chunk_s", [1.3, 2.0, 5.0])
def test_streaming_matches_whole_file(speech: list[np.ndarray], chunk_s: float) -> None:
    track, _ = place(speech, [2.0, 6.3, 18.0], 30.0)
    whole = segment_whole(track, CFG, 0.0, 30.0)
    assert [s.kind for s in whole] == [KIND_VAD, KIND_VAD] + [KIND_WINDOW] * 2 + [KIND_VAD] + [
        KIND_WINDOW
    ] * 2
    spans, carried, retain = stream(track, 30.0, chunk_s, StreamingSegmenter(CFG))
    assert close(spans, whole, tol=0.1)
    assert max(carried) <= CFG.max_s + 1.0 + chunk_s
    assert retain == sorted(retain)


def test_long_speech_is_split_and_carry_stays_bounded(speech: list[np.ndarray]) -> None:
    cfg = SegmentConfig(max_s=6.0)
    pause = np.zeros(round(0.25 * RATE), np.float32)
    turn = [x for i in range(8) for x in (speech[i % 3], pause)]
    track = np.concatenate([np.zeros(RATE, np.float32), *turn, np.zeros(2 * RATE, np.float32)])
    total = track.size / RATE
    whole = segment_whole(track, cfg, 0.0, total)
    spans, carried, _ = stream(track, total, 2.0, StreamingSegmenter(cfg))
    assert close(spans, whole, tol=0.1)
    vad = [s for s in spans if s.kind == KIND_VAD]
    assert len(vad) >= 3 and all(s.duration_s <= cfg.max_s + 1e-6 for s in vad)
    assert vad[-1].end_s - vad[0].start_s > 20  # one long turn, cut into pieces
    assert max(carried) <= cfg.max_s + 1.0 + 2.0


def test_silence_gives_only_windows() -> None:
    total = 23.0
    spans, carried, _ = stream(
        np.zeros(round(total * RATE), np.float32), total, 3.0, StreamingSegmenter(CFG)
    )
    assert spans == window_spans(0.0, total, CFG)
    assert [(s.start_s, s.end_s) for s in spans] == [
        (0.0, 5.0),
        (5.0, 10.0),
        (10.0, 15.0),
        (15.0, 20.0),
        (20.0, 23.0),
    ]
    assert max(carried) < 2.0


def test_no_audio_channel_is_all_windows() -> None:
    spans, carried, retain = stream(None, 12.2, 4.0, StreamingSegmenter(CFG))
    assert [(s.start_s, s.end_s, s.kind) for s in spans] == [
        (0.0, 5.0, KIND_WINDOW),
        (5.0, 10.0, KIND_WINDOW),
        (10.0, 12.2, KIND_WINDOW),
    ]
    assert carried == [0.0, 0.0, 0.0, 0.0]
    assert retain[:2] == [0.0, 5.0]


def test_captions_are_the_spans_and_gaps_get_windows(speech: list[np.ndarray]) -> None:
    cues = [Cue(1.0, 3.0, "hello"), Cue(3.5, 4.0, "ok"), Cue(16.0, 19.0, "bye")]
    noise = np.random.default_rng(0).normal(0, 0.1, 22 * RATE).astype(np.float32)
    whole = segment_whole(noise, CFG, 0.0, 22.0, cues=cues)
    assert [(s.start_s, s.end_s, s.kind, s.text) for s in whole] == [
        (1.0, 3.0, KIND_CAPTIONS, "hello"),
        (3.5, 4.0, KIND_CAPTIONS, "ok"),
        (4.0, 9.0, KIND_WINDOW, None),
        (9.0, 14.0, KIND_WINDOW, None),
        (14.0, 16.0, KIND_WINDOW, None),
        (16.0, 19.0, KIND_CAPTIONS, "bye"),
    ]
    for chunk_s in (0.7, 2.5, 10.0):
        spans, _, retain = stream(noise, 22.0, chunk_s, StreamingSegmenter(CFG, cues=cues))
        assert spans == whole
        assert retain == sorted(retain)


def test_captions_past_the_end_are_clipped_or_dropped() -> None:
    cues = [Cue(1.0, 6.0, "runs past the end"), Cue(9.0, 10.0, "after the end")]
    spans = segment_whole(None, CFG, 0.0, 4.0, cues=cues)
    assert spans == [Span(1.0, 4.0, KIND_CAPTIONS, "runs past the end")]


def test_segmentation_is_deterministic(speech: list[np.ndarray]) -> None:
    track, _ = place(speech[:2], [1.0, 9.0], 14.0)
    runs = [stream(track, 14.0, 1.7, StreamingSegmenter(CFG))[0] for _ in range(2)]
    assert runs[0] == runs[1]


def test_window_and_gap_rules() -> None:
    assert window_spans(0.0, 4.9, CFG) == []
    assert [(s.start_s, s.end_s) for s in window_spans(1.0, 11.2, CFG)] == [(1.0, 6.0), (6.0, 11.0)]
    assert [(s.start_s, s.end_s) for s in window_spans(1.0, 11.5, CFG)][-1] == (11.0, 11.5)
    filled = fill_gaps([Span(6.0, 7.0, KIND_VAD)], 0.0, 8.0, CFG)
    assert [(s.start_s, s.kind) for s in filled] == [
        (0.0, KIND_WINDOW),
        (5.0, KIND_WINDOW),
        (6.0, KIND_VAD),
    ]


def test_feed_rejects_misuse() -> None:
    seg = StreamingSegmenter(CFG)
    with pytest.raises(ValueError, match="audio"):
        seg.feed(np.zeros((2, 10), np.float32), 0.0, 1.0, final=False)
    seg = StreamingSegmenter(CFG)
    seg.feed(np.zeros(RATE, np.float32), 0.0, 1.0, final=False)
    with pytest.raises(ValueError, match="chunk_start_s"):
        seg.feed(np.zeros(RATE, np.float32), 0.5, 1.5, final=False)
    with pytest.raises(ValueError, match="chunk_end_s"):
        seg.feed(None, 2.0, 1.0, final=False)
    seg.feed(np.zeros(RATE, np.float32), 1.0, 2.0, final=True)
    with pytest.raises(ValueError, match="final"):
        seg.feed(None, 2.0, 3.0, final=True)


def test_decoded_stereo_segments_each_channel(speech: list[np.ndarray], tmp_path: Path) -> None:
    left, truth = place(speech[:1], [1.0], 9.0)
    right, _ = place(speech[2:], [5.0], 9.0)
    path = synth.write_media(tmp_path / "call.wav", frames=None, audio=np.stack([left, right]))
    segs = [StreamingSegmenter(CFG), StreamingSegmenter(CFG)]
    spans: list[list[Span]] = [[], []]
    for item in iter_chunks(str(path), DecodeConfig(chunk_s=2.0)):
        if isinstance(item, MediaChunk):
            assert item.audio is not None
            for ch, seg in enumerate(segs):
                spans[ch] += seg.feed(item.audio[ch], item.start_s, item.end_s, item.final)
    left_vad = [s for s in spans[0] if s.kind == KIND_VAD]
    right_vad = [s for s in spans[1] if s.kind == KIND_VAD]
    assert len(left_vad) == 1 and abs(left_vad[0].start_s - truth[0][0]) < 0.3
    assert len(right_vad) == 1 and abs(right_vad[0].start_s - 5.0) < 0.3


def test_short_recording_without_speech_is_one_window():
    cfg = SegmentConfig(window_s=5.0, min_s=0.4)
    silent = np.zeros(16000 * 3, np.float32)
    spans = StreamingSegmenter(cfg).feed(silent, 0.0, 3.0, final=True)
    assert [(s.start_s, s.end_s, s.kind) for s in spans] == [(0.0, 3.0, "window")]
    assert StreamingSegmenter(cfg).feed(None, 0.0, 0.2, final=True) == []  # below min_s
