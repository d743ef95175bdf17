"""models/audio.py: every container the pipeline reads decodes to 16 kHz mono float32."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from sentistream.models.audio import SAMPLE_RATE, read_audio


def write_tone(path: Path, codec: str, rate: int, channels: int = 1, hz: float = 440.0) -> None:
    """One second of a sine (the right channel at half amplitude), encoded with PyAV."""
    t = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * hz * t)
    planes = np.stack([left, 0.5 * left][:channels]).astype(np.float32)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
        frame.sample_rate = rate
        fmt = stream.codec_context.codec.audio_formats[0].name
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize(
    ("name", "codec", "rate", "channels"),
    [
        ("tone.wav", "pcm_s16le", 48_000, 1),
        ("tone.flac", "flac", 16_000, 1),
        ("tone.flac", "flac", 24_000, 2),
        ("tone.mp3", "libmp3lame", 44_100, 2),
    ],
)
def test_formats_decode_to_16k_mono(
    tmp_path: Path, name: str, codec: str, rate: int, channels: int
):
    path = tmp_path / name
    write_tone(path, codec, rate, channels)
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size - SAMPLE_RATE) <= 0.08 * SAMPLE_RATE  # mp3 adds encoder padding
    peak_hz = np.argmax(np.abs(np.fft.rfft(audio))) * SAMPLE_RATE / audio.size
    assert abs(peak_hz - 440) < 3
    level = 0.5 if channels == 1 else 0.375  # channels averaged
    assert np.abs(audio).max() == pytest.approx(level, rel=0.1)


def test_bad_files_raise_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing.wav does not exist"):
        read_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.flac"
    junk.write_bytes(b"not audio at all" * 10)
    with pytest.raises(ValueError, match="junk.flac"):
        read_audio(junk)


@pytest.mark.data
def test_voiced_audio_drops_pauses_around_and_inside_speech(shared_data: Path) -> None:
    from sentistream.models.audio import speech_timestamps, voiced_audio

    clip = read_audio(next(iter(sorted((shared_data / "ravdess_audio").rglob("*.flac")))))
    speech = sum(b - a for a, b in speech_timestamps(clip, min_silence_ms=200))
    assert 0.5 < speech <= clip.size / SAMPLE_RATE
    pause = np.zeros(SAMPLE_RATE, np.float32)
    padded = np.concatenate([pause, clip, pause, clip, pause])  # 3 s of silence added
    voiced = voiced_audio(padded)
    assert voiced.size < padded.size - 2.5 * SAMPLE_RATE
    assert voiced.size > 1.6 * speech * SAMPLE_RATE  # both copies of the speech kept
    assert np.sqrt(np.mean(voiced**2)) > np.sqrt(np.mean(padded**2))


def test_voiced_audio_keeps_a_clip_without_speech_whole() -> None:
    from sentistream.models.audio import voiced_audio

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    hum = (0.01 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    assert np.array_equal(voiced_audio(hum), hum)
    with pytest.raises(ValueError, match="1-D"):
        voiced_audio(np.zeros((2, 100), np.float32))


@pytest.mark.parametrize("channels", [3, 6, 8, 12])
def test_many_channel_audio_decodes_without_crashing_the_process(
    tmp_path: Path, channels: int
) -> None:
    """libswresample segfaults on 8+ channels in an unnamed order; decoding runs in a
    child process here so a regression fails this test instead of killing the suite."""
    import subprocess
    import sys
    import wave

    path = tmp_path / f"ch{channels}.wav"
    rng = np.random.default_rng(channels)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(44_100)
        data = np.zeros((44_100, channels), np.int16)
        data[:, -1] = (rng.standard_normal(44_100) * 3000).astype(np.int16)  # last channel only
        w.writeframes(data.tobytes())
    code = f"""
from sentistream.models.audio import read_audio
from sentistream.transforms.config import DecodeConfig
from sentistream.transforms.media.decoding import iter_chunks
import numpy as np
mono = read_audio({str(path)!r})
chunks = iter_chunks({str(path)!r}, DecodeConfig())
audio = np.concatenate([c.audio for c in chunks if getattr(c, "audio", None) is not None], 1)
peak, std = float(np.abs(audio[:-1]).max()), float(audio[-1].std())
print(mono.size, audio.shape[0], audio.shape[1], peak, std)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    mono_n, n_ch, n, silent_peak, last_std = run.stdout.split()
    assert int(n_ch) == channels
    assert abs(int(n) - SAMPLE_RATE) < 200 and abs(int(mono_n) - SAMPLE_RATE) < 200
    assert float(silent_peak) < 1e-4  # channels stay apart: only the last one has signal
    assert float(last_std) > 0.02


def test_an_audio_frame_whose_planes_disagree_with_its_layout_is_damaged() -> None:
    """Damaged input can decode to a frame claiming N channels in M != N planes; reading
    it crashes PyAV (SIGSEGV), so it is refused before any of its data is read."""
    import av

    from sentistream.models.audio import DamagedFrame, PlanarResampler, check_frame

    good = av.AudioFrame.from_ndarray(
        np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
    )
    good.sample_rate = 16_000
    check_frame(good)
    with pytest.raises(DamagedFrame, match="channel count changes from 1 to 2"):
        check_frame(good, channels=1)
    resampler = PlanarResampler()
    resampler.resample(good)  # the first frame sets the stream's channels and rate
    mono = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    mono.sample_rate = 16_000
    with pytest.raises(DamagedFrame, match="channel count changes"):
        resampler.resample(mono)
    other_rate = av.AudioFrame.from_ndarray(
        np.zeros((2, 1024), np.float32), format="fltp", layout="stereo"
    )
    other_rate.sample_rate = 44_100
    with pytest.raises(DamagedFrame, match="sample rate changes"):
        resampler.resample(other_rate)
