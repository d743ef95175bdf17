"""Synthetic media: speech, encoding, frame generators and the demo sample."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest

from sentistream.pipelines.demo import synth
from sentistream.transforms.media.captions import Cue, parse_captions

TEXT = "Hello there, this is a short test."


def test_tts_gives_float_mono_speech() -> None:
    audio, rate = synth.tts(TEXT)
    assert rate == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < audio.size / rate < 4.0
    assert 0.1 < np.abs(audio).max() <= 1.0


def test_tts_is_deterministic_across_other_calls() -> None:
    first, _ = synth.tts(TEXT)
    synth.tts("Something else entirely, with other words!", voice="en-us+Alex", rate_wpm=200)
    again, _ = synth.tts(TEXT)
    np.testing.assert_array_equal(first, again)


def test_tts_is_thread_safe() -> None:
    texts = [TEXT, "A second sentence.", TEXT, "A second sentence."]
    expected = {t: synth.tts(t)[0] for t in set(texts)}
    results: list[np.ndarray | None] = [None] * len(texts)

    def work(i: int) -> None:
        results[i] = synth.tts(texts[i])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for text, got in zip(texts, results, strict=True):
        np.testing.assert_array_equal(got, expected[text])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"text": "  "}, "text"),
        ({"text": "hi", "rate_wpm": 10}, "rate_wpm"),
        ({"text": "hi", "voice": "no-such-voice"}, "voice"),
    ],
)
def test_tts_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        synth.tts(**kwargs)


def test_trim_and_resample() -> None:
    audio = np.concatenate([np.zeros(100), np.ones(50) * 0.5, np.zeros(30)]).astype(np.float32)
    assert synth.trim_silence(audio).size == 50
    tone = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    out = synth.resample(tone, 22050, 16000)
    assert out.dtype == np.float32 and abs(out.size - 16000) <= 32


def test_frame_generators() -> None:
    face = np.full((120, 100, 3), 200, np.uint8)
    frames = list(synth.talking_head_frames(face, 5, size=(160, 96)))
    assert len(frames) == 5
    assert all(f.shape == (96, 160, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[4])  # it moves
    plain = list(synth.no_face_frames(3, size=(64, 48)))
    assert [f.shape for f in plain] == [(48, 64, 3)] * 3
    with pytest.raises(ValueError, match="face_rgb"):
        next(synth.talking_head_frames(np.zeros((4, 4)), 1))


def test_write_media_is_deterministic(tmp_path: Path) -> None:
    audio = np.sin(np.arange(8000) / 5).astype(np.float32) * 0.3

    def write(name: str) -> str:
        frames = synth.no_face_frames(10, size=(64, 48))
        path = synth.write_media(tmp_path / name, frames=frames, fps=10, audio=audio)
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert write("a.mp4") == write("b.mp4")


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("x.avi", {"frames": None, "audio": np.zeros(10, np.float32)}, "extension"),
        ("x.wav", {"frames": [np.zeros((4, 4, 3), np.uint8)]}, "frames"),
        ("x.mp4", {"frames": None}, "frames"),
        ("x.mp4", {"frames": [np.zeros((5, 4, 3), np.uint8)]}, "even"),
        ("x.mp4", {"frames": [np.zeros((4, 4, 3), np.uint8)], "fps": 0}, "fps"),
        ("x.wav", {"frames": None, "audio": np.zeros((2, 3, 4), np.float32)}, "audio"),
    ],
)
def test_write_media_rejects_bad_arguments(
    tmp_path: Path, name: str, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        synth.write_media(tmp_path / name, **kwargs)


def test_write_media_rejects_mismatched_frames(tmp_path: Path) -> None:
    frames = [np.zeros((4, 4, 3), np.uint8), np.zeros((6, 4, 3), np.uint8)]
    with pytest.raises(ValueError, match="frames"):
        synth.write_media(tmp_path / "x.mp4", frames=frames, fps=5)


def test_write_vtt(tmp_path: Path) -> None:
    cues = [Cue(0.5, 1.5, "one"), Cue(2.0, 3.25, "two")]
    path = synth.write_vtt(tmp_path / "a.vtt", cues)
    assert parse_captions(path.read_text(encoding="utf-8")) == cues


@pytest.mark.slow
def test_make_sample_is_deterministic_cached_and_labelled(tmp_path: Path) -> None:
    from sentistream.transforms.config import DecodeConfig
    from sentistream.transforms.media.decoding import MediaChunk, iter_chunks

    path = synth.make_sample(tmp_path / "a")
    stamp = path.stat().st_mtime_ns
    assert synth.make_sample(tmp_path / "a") == path and path.stat().st_mtime_ns == stamp
    other = synth.make_sample(tmp_path / "b")
    assert other.read_bytes() == path.read_bytes()
    assert "DEMO" in (path.parent / f"{synth.SAMPLE_NAME}.README.md").read_text()
    cues = parse_captions(path.with_suffix(".vtt").read_text(encoding="utf-8"))
    assert [c.text for c in cues] == [text for _, text in synth.SAMPLE_SENTENCES]
    assert cues[-1].end_s < synth.SAMPLE_DURATION_S
    items = list(iter_chunks(str(path), DecodeConfig(fps=1, chunk_s=10)))
    info, chunks = items[0], [c for c in items[1:] if isinstance(c, MediaChunk)]
    assert (info.width, info.height, info.video_fps, info.channels) == (640, 360, 25.0, 1)
    assert abs(chunks[-1].end_s - 20.0) < 0.1
    assert sum(len(c.frames) for c in chunks) == 20
