"""Streaming decode: every container we can write, channels, sampling, errors, memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from sentistream.pipelines.demo import synth
from sentistream.transforms.config import DecodeConfig
from sentistream.transforms.media.decoding import (
    SAMPLE_RATE,
    TAIL_S,
    MediaChunk,
    MediaDecodeError,
    MediaInfo,
    iter_chunks,
    open_media,
    probe,
)

DURATION = 2.0
FPS = 25
SIZE = (160, 96)  # width, height
VIDEO_CONTAINERS = ("mp4", "mov", "mkv", "flv", "webm")
AUDIO_CONTAINERS = ("wav", "mp3")


def stereo_tone(seconds: float, rate: int = 16000) -> np.ndarray:
    """A 440 Hz tone on the left channel, silence on the right."""
    t = np.arange(round(seconds * rate)) / rate
    return np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)]).astype(np.float32)


def gray_frames(n: int) -> list[np.ndarray]:
    """Frame i is uniformly gray at level 5 * i, so a decoded frame tells its index."""
    return [np.full((SIZE[1], SIZE[0], 3), 5 * i, np.uint8) for i in range(n)]


def decode(source: str | io.BufferedIOBase, **cfg: float) -> tuple[MediaInfo, list[MediaChunk]]:
    items = list(iter_chunks(source, DecodeConfig(**cfg)))
    assert isinstance(items[0], MediaInfo)
    chunks = items[1:]
    assert chunks and all(isinstance(c, MediaChunk) for c in chunks)
    return items[0], chunks  # type: ignore[return-value]


def check_contiguous(chunks: list[MediaChunk], chunk_s: float) -> None:
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[0].start_s == 0.0
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.end_s == nxt.start_s
        assert prev.end_s - prev.start_s == pytest.approx(chunk_s)
    for c in chunks:
        assert all(c.start_s <= f.t < c.end_s for f in c.frames)
        if c.audio is not None and not c.final:
            assert c.audio.shape[1] == round((c.end_s - c.start_s) * SAMPLE_RATE)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("media")
    out = {}
    audio = stereo_tone(DURATION)
    for ext in VIDEO_CONTAINERS:
        frames = synth.no_face_frames(round(DURATION * FPS), size=SIZE)
        out[ext] = synth.write_media(root / f"av.{ext}", frames=frames, fps=FPS, audio=audio)
    for ext in AUDIO_CONTAINERS:
        out[ext] = synth.write_media(root / f"a.{ext}", frames=None, audio=audio)
    out["video_only"] = synth.write_media(
        root / "v.mp4", frames=gray_frames(round(DURATION * FPS)), fps=FPS
    )
    return out


@pytest.mark.parametrize("ext", VIDEO_CONTAINERS + AUDIO_CONTAINERS)
def test_container_decodes_with_right_duration_channels_and_frames(
    media: dict[str, Path], ext: str
) -> None:
    info, chunks = decode(str(media[ext]), fps=5, chunk_s=0.5, max_side=640)
    is_video = ext in VIDEO_CONTAINERS
    assert (info.has_video, info.has_audio, info.channels) == (is_video, True, 2)
    assert info.duration_s == pytest.approx(DURATION, abs=0.1)
    check_contiguous(chunks, 0.5)
    # FLV does not record AAC's encoder delay, so its audio runs 64 ms (1024 samples) long.
    slack = 0.15 if ext == "flv" else 0.1
    assert chunks[-1].end_s == pytest.approx(DURATION, abs=slack)
    audio = np.concatenate([c.audio for c in chunks if c.audio is not None], axis=1)
    assert audio.dtype == np.float32 and audio.shape[0] == 2
    assert audio.shape[1] / SAMPLE_RATE == pytest.approx(DURATION, abs=slack)
    rms = np.sqrt(np.mean(audio**2, axis=1))
    assert rms[0] > 0.3 and rms[1] < 0.01  # stereo channels stay distinct
    frames = [f for c in chunks for f in c.frames]
    if is_video:
        assert (info.width, info.height, info.video_fps) == (*SIZE, FPS)
        assert len(frames) == pytest.approx(DURATION * 5, abs=1)
        assert frames[0].rgb.shape == (SIZE[1], SIZE[0], 3) and frames[0].rgb.dtype == np.uint8
        assert np.all(np.diff([f.t for f in frames]) > 0)
    else:
        assert frames == [] and info.width is None


def test_frames_are_nearest_to_sample_times(media: dict[str, Path]) -> None:
    info, chunks = decode(str(media["video_only"]), fps=3, chunk_s=0.7)
    assert not info.has_audio and info.channels == 0
    assert all(c.audio is None for c in chunks)
    check_contiguous(chunks, 0.7)
    frames = [f for c in chunks for f in c.frames]
    expected = [round(k / 3 * FPS) for k in range(6)]  # 0, 8, 17, 25, 33, 42
    assert [round(f.t * FPS) for f in frames] == expected
    levels = [float(f.rgb.mean()) / 5 for f in frames]
    np.testing.assert_allclose(levels, expected, atol=0.5)  # the pixels are those frames


def test_frames_are_scaled_to_max_side(media: dict[str, Path]) -> None:
    _, chunks = decode(str(media["mp4"]), fps=1, max_side=80)
    assert {f.rgb.shape for c in chunks for f in c.frames} == {(48, 80, 3)}


def test_fps_zero_skips_video_but_keeps_timeline(media: dict[str, Path]) -> None:
    info, chunks = decode(str(media["video_only"]), fps=0, chunk_s=0.5)
    assert info.has_video
    assert all(c.frames == () and c.audio is None for c in chunks)
    assert chunks[-1].end_s == pytest.approx(DURATION, abs=0.05)


def test_file_object_source_matches_path(media: dict[str, Path]) -> None:
    _, by_path = decode(str(media["mkv"]), fps=2, chunk_s=1)
    with open(media["mkv"], "rb") as f:
        _, by_file = decode(f, fps=2, chunk_s=1)
    assert [(c.start_s, c.end_s, len(c.frames)) for c in by_path] == [
        (c.start_s, c.end_s, len(c.frames)) for c in by_file
    ]
    np.testing.assert_array_equal(by_path[0].audio, by_file[0].audio)


def test_probe_via_open_media(media: dict[str, Path]) -> None:
    with open_media(str(media["webm"])) as container:
        info = probe(container)
    assert info.has_video and info.has_audio and "webm" in info.container


def test_decoding_is_deterministic(media: dict[str, Path]) -> None:
    runs = [decode(str(media["mp4"]), fps=2, chunk_s=1)[1] for _ in range(2)]
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)
        assert [f.t for f in a.frames] == [f.t for f in b.frames]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(MediaDecodeError, match="empty"):
        decode(str(path))
    with pytest.raises(MediaDecodeError, match="empty"):
        decode(io.BytesIO(b""))


def test_text_file_named_mp4(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("these are meeting notes, not a video\n" * 20)
    with pytest.raises(MediaDecodeError, match="not a media file"):
        decode(str(path))


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode(str(tmp_path / "nope.mp4"))


def test_subtitle_only_file_is_not_an_allowed_container(tmp_path: Path) -> None:
    path = tmp_path / "subs.srt"  # FFmpeg would open it as subtitle-only "media"
    path.write_text("1\n00:00:01,000 --> 00:00:02,000\nhello\n")
    with pytest.raises(MediaDecodeError, match="not an allowed media container"):
        decode(str(path))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("evil.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n../outside.wav\n"),
        ("evil.mp4", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1,\n../outside.wav\n"),
        ("list.ffconcat", "ffconcat version 1.0\nfile '../outside.wav'\n"),
    ],
)
def test_playlists_that_point_outside_the_input_are_refused(
    tmp_path: Path, name: str, text: str
) -> None:
    """A crafted playlist must not make FFmpeg read another file (or fetch a URL)."""
    import wave

    with wave.open(str(tmp_path / "outside.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes((np.sin(np.arange(16_000) / 5) * 8000).astype(np.int16).tobytes())
    inner = tmp_path / "in"
    inner.mkdir()
    (inner / name).write_text(text + "#EXT-X-ENDLIST\n")
    with pytest.raises(MediaDecodeError, match="not an allowed media container|not a media"):
        decode(str(inner / name))


@pytest.mark.parametrize("ext", ["mp4", "webm", "mkv", "mp3"])
def test_corrupt_or_truncated_media(media: dict[str, Path], tmp_path: Path, ext: str) -> None:
    data = bytearray(media[ext].read_bytes())
    rng = np.random.default_rng(0)
    start = len(data) // 3
    data[start : start + len(data) // 3] = rng.integers(0, 256, len(data) // 3, np.uint8).tobytes()
    garbled = tmp_path / f"garbled.{ext}"
    garbled.write_bytes(bytes(data))
    with pytest.raises(MediaDecodeError, match="corrupt|truncated|not a media"):
        decode(str(garbled), fps=5)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(media[ext].read_bytes()[: len(data) // 2])
    with pytest.raises(MediaDecodeError, match="corrupt|truncated|not a media"):
        decode(str(cut), fps=5)


def _peak_decode_bytes(path: Path) -> tuple[int, int]:
    """(peak traced bytes, largest chunk's audio samples) decoding ``path``."""
    tracemalloc.start()
    biggest = 0
    try:
        for item in iter_chunks(str(path), DecodeConfig(fps=2, chunk_s=5, max_side=64)):
            if isinstance(item, MediaChunk) and item.audio is not None:
                biggest = max(biggest, item.audio.shape[1])
        return tracemalloc.get_traced_memory()[1], biggest
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_the_chunk_not_the_file(tmp_path: Path) -> None:
    def make(name: str, seconds: int) -> Path:
        t = np.arange(seconds * 16000) / 16000
        audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
        frames = (np.full((48, 64, 3), i % 250, np.uint8) for i in range(seconds * 5))
        return synth.write_media(
            tmp_path / name, frames=frames, fps=5, audio=audio, audio_codec="pcm_s16le"
        )

    short_peak, _ = _peak_decode_bytes(make("short.mkv", 20))
    long_peak, biggest = _peak_decode_bytes(make("long.mkv", 200))  # 10x longer
    assert biggest <= round((5 + TAIL_S) * SAMPLE_RATE)
    assert long_peak < 1.5 * short_peak + 1_000_000, (short_peak, long_peak)


@pytest.mark.parametrize(("video_s", "audio_s"), [(3.0, 1.0), (1.0, 4.0)])
def test_streams_of_different_lengths(tmp_path: Path, video_s: float, audio_s: float) -> None:
    audio = stereo_tone(audio_s)[:1]
    frames = synth.no_face_frames(round(video_s * FPS), size=(64, 48))
    path = synth.write_media(tmp_path / "uneven.mp4", frames=frames, fps=FPS, audio=audio)
    info, chunks = decode(str(path), fps=2, chunk_s=1.0)
    assert info.channels == 1
    assert [c.start_s for c in chunks] == [float(k) for k in range(len(chunks))]
    assert chunks[-1].final and chunks[-1].end_s == pytest.approx(max(video_s, audio_s), abs=0.1)
    total = sum(c.audio.shape[1] for c in chunks if c.audio is not None)
    assert total / SAMPLE_RATE == pytest.approx(audio_s, abs=0.1)
    assert len([f for c in chunks for f in c.frames]) == round(video_s * 2)


# ------------------------------------------------------------------ limits, non-files


def _av_file(tmp_path: Path, seconds: float = 2.0, size: tuple[int, int] = SIZE) -> Path:
    frames = synth.no_face_frames(round(seconds * FPS), size=size)
    audio = stereo_tone(seconds)
    return synth.write_media(tmp_path / "clip.mp4", frames=frames, fps=FPS, audio=audio)


@pytest.mark.parametrize(
    ("limit", "value", "message"),
    [
        ("max_channels", 1, "2 audio channels, over the max_channels limit of 1"),
        ("max_pixels", 160 * 96 - 1, "160x96 video, over the max_pixels limit"),
        ("max_duration_s", 1.0, "over the max_duration_s limit of 1"),
    ],
)
def test_header_limits_are_refused_before_decoding(
    tmp_path: Path, limit: str, value: float, message: str
) -> None:
    from sentistream.transforms.media.limits import MediaLimitError

    path = _av_file(tmp_path)
    with pytest.raises(MediaLimitError, match=message):
        decode(str(path), **{limit: value})
    decode(str(path))  # within the defaults


def test_local_inputs_that_are_not_regular_files_are_refused_without_opening(
    tmp_path: Path,
) -> None:
    import os

    from sentistream.transforms.media.limits import MediaLimitError, check_local_input

    os.mkfifo(tmp_path / "pipe.mp4")  # opening it to read would block forever
    (tmp_path / "dir.mp4").mkdir()
    for name, why in (("pipe.mp4", "FIFO"), ("dir.mp4", "a directory")):
        with pytest.raises(MediaDecodeError, match=why):
            check_local_input(str(tmp_path / name), DecodeConfig())
    with pytest.raises(FileNotFoundError):
        check_local_input(str(tmp_path / "none.mp4"), DecodeConfig())
    big = _av_file(tmp_path)
    with pytest.raises(MediaLimitError, match="over the max_bytes limit of 100"):
        check_local_input(str(big), DecodeConfig(max_bytes=100))
    check_local_input(str(big), DecodeConfig())


def test_allowed_roots_and_schemes(tmp_path: Path) -> None:
    import os

    from sentistream.transforms.media.limits import MediaLimitError, check_allowed

    inside = tmp_path / "in"
    inside.mkdir()
    (inside / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    os.symlink(tmp_path / "secret.mp4", inside / "link.mp4")
    cfg = DecodeConfig(allowed_roots=(str(inside),))
    check_allowed(str(inside / "a.mp4"), cfg)
    for escape in (inside / ".." / "secret.mp4", inside / "link.mp4", tmp_path / "in2.mp4"):
        with pytest.raises(MediaLimitError, match="outside the allowed roots"):
            check_allowed(str(escape), cfg)
    check_allowed("gs://bucket/a.mp4", DecodeConfig())  # the default schemes
    for uri in ("http://host/a.mp4", "ftp://host/a.mp4"):
        with pytest.raises(MediaLimitError, match="not one of the allowed schemes"):
            check_allowed(uri, DecodeConfig())
    with pytest.raises(MediaLimitError, match="scheme 'gs'"):
        check_allowed("gs://bucket/a.mp4", DecodeConfig(allowed_schemes=("file",)))


def test_audio_timestamps_that_jump_hours_ahead_are_damaged_not_silence(tmp_path: Path) -> None:
    """A damaged timestamp must not make the decoder fill hours of silence in memory."""
    import av

    path = tmp_path / "jump.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=16_000, layout="mono")
        for i, pts in enumerate((0, 1024, 16_000 * 3600)):  # the third frame: 1 h later
            samples = (np.sin(np.arange(1024) / 5) * 8000).astype(np.int16)[None, :]
            frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 16_000, pts
            for packet in stream.encode(frame):
                out.mux(packet)
            assert i < 3
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(MediaDecodeError, match="timestamps jump ahead by 3600 s"):
        decode(str(path))
