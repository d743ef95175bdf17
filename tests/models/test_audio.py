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
