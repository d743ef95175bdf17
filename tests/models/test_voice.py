"""Voice branch: Whisper front end and pooled encoder, head bundle loading, predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from faster_whisper.feature_extractor import FeatureExtractor

from sentistream.models.bundle import BundleMeta, load_bundle_meta, save_bundle_meta
from sentistream.models.voice.model import (
    LABELS,
    VoiceEmotionModel,
    VoiceHead,
    confidence_from_probs,
    load_head,
)
from sentistream.models.training.voice_train import augment, read_corpora, read_wav, scores
from sentistream.models.whisper import (
    SAMPLE_RATE,
    encode_pooled,
    load_whisper,
    load_whisper_asr,
    log_mel_spectrogram,
    resample_to_16k,
)

BUNDLE = "voice-whisper-tiny-lr"


def _speechlike(seconds: float, seed: int = 0, f0: float = 140.0) -> np.ndarray:
    """A voiced-sounding test signal: harmonics of a wobbling f0 under a syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    audio = 0.1 * envelope * voiced + 0.005 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


@pytest.fixture(scope="module")
def encoder():  # noqa: ANN201 - ctranslate2 type
    torch.set_num_threads(1)
    return load_whisper(threads=1)


@pytest.fixture(scope="module")
def model() -> VoiceEmotionModel:
    torch.set_num_threads(1)
    return VoiceEmotionModel.load(BUNDLE, threads=1)


# -------------------------------------------------------------------- front end


@pytest.mark.parametrize("seconds", [0.5, 3.0, 7.3])
def test_log_mel_matches_faster_whisper(seconds: float) -> None:
    audio = _speechlike(seconds)
    ours = log_mel_spectrogram(audio)
    ref = FeatureExtractor()(audio)
    assert ours.shape == ref.shape == (80, (audio.size + 160) // 160)
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.data
def test_log_mel_matches_faster_whisper_on_real_clip(shared_data: Path) -> None:
    audio, sr = read_wav(shared_data / "ravdess_audio/Actor_01/03-01-03-01-01-01-01.wav")
    wave16 = resample_to_16k(audio, sr)
    np.testing.assert_allclose(log_mel_spectrogram(wave16), FeatureExtractor()(wave16), atol=1e-4)


def test_log_mel_batch_normalises_each_clip_alone() -> None:
    quiet, loud = _speechlike(1.0, seed=1) * 0.01, _speechlike(1.0, seed=2)
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
def test_encode_pooled_batch_equals_items(encoder) -> None:  # noqa: ANN001
    clips = [_speechlike(s, seed=i) for i, s in enumerate([3.0, 1.2, 2.9, 0.25, 4.4, 3.1])]
    batch = encode_pooled(encoder, clips, batch_size=4)
    items = np.concatenate([encode_pooled(encoder, [c]) for c in clips])
    assert batch.shape == (6, 768) and np.isfinite(batch).all()
    np.testing.assert_allclose(batch, items, atol=1e-3, rtol=1e-3)
    assert not np.allclose(batch[0], batch[1])


@pytest.mark.slow
def test_encode_pooled_chunks_long_clips(encoder) -> None:  # noqa: ANN001
    long = _speechlike(31.0)
    out = encode_pooled(encoder, [long, long[: SAMPLE_RATE * 20]])
    assert out.shape == (2, 768) and np.isfinite(out).all()
    with pytest.raises(ValueError, match=r"audios\[1\]"):
        encode_pooled(encoder, [long, np.zeros(0, np.float32)])


# -------------------------------------------------------------------- head and bundle


def _write_bundle(folder: Path, head: VoiceHead, params: dict[str, object]) -> Path:
    torch.save(head.state_dict(), folder / "v.pt")
    meta = BundleMeta(
        name="v", model_id="v@test", kind="voice", labels=LABELS, weights="v.pt", params=params
    )
    return save_bundle_meta(meta, folder)


def test_strict_load_rejects_mismatched_weights(tmp_path: Path) -> None:
    linear = VoiceHead(in_features=768, hidden=0, arousal=True)
    path = _write_bundle(tmp_path, linear, {"in_features": 768, "hidden": 32, "arousal": True})
    with pytest.raises(ValueError, match="do not match the head"):
        load_head(load_bundle_meta(str(path), expected_kind="voice"))
    with pytest.raises(ValueError, match="do not match the head"):
        VoiceEmotionModel.load(str(path))
    path = _write_bundle(tmp_path, linear, {"in_features": 768, "hidden": 0, "arousal": True})
    assert isinstance(load_head(load_bundle_meta(str(path))), VoiceHead)


def test_load_rejects_bundle_of_another_kind(tmp_path: Path) -> None:
    path = _write_bundle(tmp_path, VoiceHead(in_features=8), {"in_features": 8})
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "kind": "face"}))
    with pytest.raises(ValueError, match="expected 'voice'"):
        VoiceEmotionModel.load(str(path))


def test_confidence_is_one_minus_normalised_entropy() -> None:
    probs = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    expected = [0.0, 1.0, 1 - np.log(2) / np.log(3)]
    np.testing.assert_allclose(confidence_from_probs(probs), expected, atol=1e-9)


def test_scores_and_augment() -> None:
    result = scores(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    assert result["accuracy"] == 0.75
    assert result["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    audio = _speechlike(1.0)
    assert augment(audio, "speed1.1", 0).size == pytest.approx(audio.size / 1.1, abs=2)
    noisy = augment(audio, "noise20", 0)
    snr = 10 * np.log10(np.sum(audio**2) / np.sum((noisy - audio) ** 2))
    assert snr == pytest.approx(20, abs=0.5)


# -------------------------------------------------------------------- shipped model


@pytest.mark.slow
def test_predictions_in_range(model: VoiceEmotionModel) -> None:
    clips = [_speechlike(3.0), _speechlike(0.4, seed=3, f0=220), np.zeros(8000, np.float32)]
    preds = model.predict(clips)
    assert len(preds) == 3 and model.predict([]) == []
    assert model.model_id.startswith(BUNDLE + "@") and model.labels == LABELS
    for p in preds:
        assert -1 <= p.valence <= 1 and 0 <= p.confidence <= 1
        assert p.arousal is not None and -1 <= p.arousal <= 1
        assert set(p.probs) == set(LABELS) and sum(p.probs.values()) == pytest.approx(1, abs=1e-5)
        assert p.valence == pytest.approx(p.probs["positive"] - p.probs["negative"], abs=1e-6)


@pytest.mark.slow
def test_predict_batch_equals_items(model: VoiceEmotionModel) -> None:
    clips = [_speechlike(s, seed=i) for i, s in enumerate([2.0, 3.5, 1.0])]
    batch = model.predict(clips)
    for clip, pred in zip(clips, batch, strict=True):
        (alone,) = model.predict([clip])
        assert alone.valence == pytest.approx(pred.valence, abs=1e-4)


@pytest.mark.slow
@pytest.mark.data
def test_happy_reads_more_positive_than_angry_or_sad(
    model: VoiceEmotionModel, shared_data: Path
) -> None:
    """A sanity check on a few real clips (these speakers are in the shipped head's
    training set: held-out figures are in the model card, not here)."""
    clips = [c for c in read_corpora(shared_data) if c.emotion in ("happy", "angry", "sad")]
    chosen = [c for e in ("happy", "angry", "sad") for c in clips if c.emotion == e][::6]
    audios = [resample_to_16k(*read_wav(Path(c.path))) for c in chosen]
    valence = np.array([p.valence for p in model.predict(audios)])
    emotion = np.array([c.emotion for c in chosen])
    assert (emotion == "happy").sum() >= 3 and (emotion != "happy").sum() >= 6
    assert valence[emotion == "happy"].mean() > valence[emotion == "angry"].mean()
    assert valence[emotion == "happy"].mean() > valence[emotion == "sad"].mean()
