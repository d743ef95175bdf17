"""The shared Whisper front end (log-mel, resampling) and pooled encoder (models/whisper.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from faster_whisper.feature_extractor import FeatureExtractor

from sentistream.models.audio import SAMPLE_RATE, read_audio
from sentistream.models.whisper import (
    encode_pooled,
    load_whisper,
    load_whisper_asr,
    log_mel_spectrogram,
    resample_to_16k,
)


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201 - ctranslate2 type
    torch.set_num_threads(1)
    return load_whisper(threads=1)


# -------------------------------------------------------------------- front end


@pytest.mark.parametrize("seconds", [0.5, 3.0, 7.3])
def test_log_mel_matches_faster_whisper(speechlike, seconds: float) -> None:
    audio = speechlike(seconds)
    ours = log_mel_spectrogram(audio)
    ref = FeatureExtractor()(audio)
    assert ours.shape == ref.shape == (80, (audio.size + 160) // 160)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.data
def test_log_mel_matches_faster_whisper_on_real_clip(shared_data: Path) -> None:
    wave16 = read_audio(shared_data / "ravdess_audio/Actor_01/03-01-03-01-01-01-01.wav")
    np.testing.assert_allclose(log_mel_spectrogram(wave16), FeatureExtractor()(wave16), atol=1e-4)


def test_log_mel_batch_normalises_each_clip_alone(speechlike) -> None:
    quiet, loud = speechlike(1.0, seed=1) * 0.01, speechlike(1.0, seed=2)
    batch = log_mel_spectrogram(np.stack([quiet, loud]), padding=0)
    np.testing.assert_allclose(batch[0], log_mel_spectrogram(quiet, padding=0), atol=1e-5)


@pytest.mark.parametrize("sr", [48_000, 24_414, 8_000])
def test_resample_keeps_duration_and_pitch(sr: int) -> None:
    t = np.arange(sr) / sr
    out = resample_to_16k(np.sin(2 * np.pi * 440 * t).astype(np.float32), sr)
    assert out.dtype == np.float32 and abs(out.size - SAMPLE_RATE) <= 40
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * SAMPLE_RATE / out.size
    assert abs(peak_hz - 440) < 2


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="sr"):
        resample_to_16k(np.zeros(10, np.float32), 0)
    with pytest.raises(ValueError, match="audio"):
        resample_to_16k(np.zeros((2, 10), np.float32), 16_000)


# -------------------------------------------------------------------- encoder


@pytest.mark.slow
def test_encoder_is_cached_and_shared_with_asr(encoder) -> None:  # noqa: ANN001
    assert load_whisper(threads=1) is encoder
    assert load_whisper_asr(threads=1).model is encoder


@pytest.mark.slow
def test_encode_pooled_batch_equals_items(speechlike, encoder) -> None:  # noqa: ANN001
    clips = [speechlike(s, seed=i) for i, s in enumerate([3.0, 1.2, 2.9, 0.25, 4.4, 3.1])]
    batch = encode_pooled(encoder, clips, batch_size=4)
    items = np.concatenate([encode_pooled(encoder, [c]) for c in clips])
    assert batch.shape == (6, 768) and np.isfinite(batch).all()
    np.testing.assert_allclose(batch, items, atol=1e-3, rtol=1e-3)
    assert not np.allclose(batch[0], batch[1])


@pytest.mark.slow
def test_encode_pooled_chunks_long_clips(speechlike, encoder) -> None:  # noqa: ANN001
    long = speechlike(31.0)
    out = encode_pooled(encoder, [long, long[: SAMPLE_RATE * 20]])
    assert out.shape == (2, 768) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=r"audios\[1\]"):
        encode_pooled(encoder, [long, np.zeros(0, np.float32)])
