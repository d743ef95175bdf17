"""Voice v2: prosody, channel normalisation, hierarchical head, bundle loading, trainer parts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.bundle import BundleMeta, load_bundle_meta, save_bundle_meta
from sentistream.models.voice.model import LABELS, VoiceEmotionModel
from sentistream.models.voice.features import (
    EMOTIONS,
    PROSODY_NAMES,
    ChannelStats,
    VoiceEmotionModelV2,
    VoiceHeadsV2,
    channel_normalise,
    channel_prior,
    prosody_features,
    valence_arousal,
    zscore,
)
from sentistream.models.training.voice_v2_train import (
    Config,
    Recipe,
    ece,
    fit,
    held_out_views,
    read_clips,
    select,
)
from sentistream.models.whisper import SAMPLE_RATE

BUNDLE = "voice-whisper-tiny-v2"


def _speechlike(seconds: float, seed: int = 0, f0: float = 140.0, gain: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.03 * np.sin(2 * np.pi * 3 * t))) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 4 * t))
    return (gain * envelope * voiced + 0.001 * rng.standard_normal(t.size)).astype(np.float32)


# -------------------------------------------------------------------- prosody


def test_prosody_shape_pitch_and_level() -> None:
    low, high = (
        prosody_features(_speechlike(2.0, f0=140)),
        prosody_features(_speechlike(2.0, f0=220)),
    )
    assert low.shape == (len(PROSODY_NAMES),) and low.dtype == np.float32
    assert np.isfinite(low).all() and np.isfinite(high).all()
    f0 = PROSODY_NAMES.index("f0_median_st")
    assert high[f0] - low[f0] == pytest.approx(12 * np.log2(220 / 140), abs=1.0)
    assert low[f0] == pytest.approx(12 * np.log2(140 / 100), abs=1.0)
    loud = prosody_features(_speechlike(2.0, f0=140, gain=1.0))
    energy = PROSODY_NAMES.index("energy_db_mean")
    assert loud[energy] - low[energy] == pytest.approx(20.0, abs=0.5)
    dur = PROSODY_NAMES.index("log_duration_s")
    assert low[dur] == pytest.approx(np.log(2.0), abs=1e-3)


def test_prosody_handles_short_and_silent_clips() -> None:
    for audio in (np.zeros(100, np.float32), _speechlike(0.05), np.zeros(8000, np.float32)):
        assert np.isfinite(prosody_features(audio)).all()
    with pytest.raises(ValueError, match="audio"):
        prosody_features(np.zeros((2, 10), np.float32))


# -------------------------------------------------------------------- channel normalisation


def test_channel_normalise_in_one_call_equals_carried_stats() -> None:
    rng = np.random.default_rng(0)
    x, prior = rng.normal(3, 2, (9, 5)), (np.zeros(5), np.ones(5))
    whole, stats = channel_normalise(x, ChannelStats.empty(5), *prior)
    carried, parts = ChannelStats.empty(5), []
    for chunk in (x[:1], x[1:4], x[4:]):
        out, carried = channel_normalise(chunk, carried, *prior)
        parts.append(out)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)
    assert stats.n == carried.n == 9
    np.testing.assert_allclose(stats.total, x.sum(0))


def test_channel_normalise_tends_to_the_channel_zscore() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(10, 3, (400, 4))
    history = ChannelStats(400, x.sum(0), (x * x).sum(0))
    out, _ = channel_normalise(x[:3], history, np.zeros(4), np.ones(4), prior_weight=1.0)
    np.testing.assert_allclose(out, zscore(x, np.zeros(400))[:3], atol=0.02)
    # With no history the prior dominates: the first clip is pulled to the prior mean only half.
    first, _ = channel_normalise(x[:1], ChannelStats.empty(4), np.zeros(4), np.ones(4))
    np.testing.assert_allclose(first[0], (x[0] - x[0] / 2) / np.sqrt(0.5), rtol=1e-5)


def test_channel_normalise_validates() -> None:
    with pytest.raises(ValueError, match="features"):
        channel_normalise(np.zeros((2, 3)), ChannelStats.empty(4), np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="prior_weight"):
        channel_normalise(np.zeros((2, 4)), ChannelStats.empty(4), np.zeros(4), np.ones(4), 0)


def test_channel_prior_and_zscore() -> None:
    x = np.array([[0.0], [2.0], [10.0], [14.0]])
    groups = np.array(["a", "a", "b", "b"])
    mean, var = channel_prior(x, groups)
    assert mean[0] == pytest.approx(6.5) and var[0] == pytest.approx((1 + 4) / 2)
    np.testing.assert_allclose(zscore(x, groups)[:, 0], [-1, 1, -1, 1])


# -------------------------------------------------------------------- head


def test_valence_arousal_sum_the_emotions() -> None:
    p = np.eye(len(EMOTIONS))
    valence, arousal = valence_arousal(p)
    expected = {"neutral": 1, "happy": 2, "sad": 0, "angry": 0, "fearful": 0, "disgust": 0,
                "surprised": 2}  # fmt: skip
    assert [int(np.argmax(v)) for v in valence] == [expected[e] for e in EMOTIONS]
    np.testing.assert_allclose(valence.sum(1), 1.0)
    assert arousal[EMOTIONS.index("angry")] == 1.0 and arousal[EMOTIONS.index("sad")] == 0.0
    mixed = np.full((1, len(EMOTIONS)), 1 / len(EMOTIONS))
    assert valence_arousal(mixed)[1][0] == pytest.approx(4 / 6)


def _write(folder: Path, heads: VoiceHeadsV2, in_features: int) -> Path:
    torch.save(heads.state_dict(), folder / "v2.pt")
    params = {"head": "emotion-hierarchical-v2", "in_features": in_features}
    meta = BundleMeta("v2", "v2@test", "voice", LABELS, "v2.pt", params)
    return save_bundle_meta(meta, folder)


def test_v2_bundle_loads_strictly(tmp_path: Path) -> None:
    path = _write(tmp_path, VoiceHeadsV2(in_features=10), in_features=12)
    with pytest.raises(ValueError, match="do not match the v2 heads"):
        VoiceEmotionModelV2.from_meta(load_bundle_meta(str(path)), encoder=None)


# -------------------------------------------------------------------- trainer parts


def test_ece() -> None:
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    assert ece(conf, np.array([True, True, True, False])) == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
    assert ece(np.array([0.3, 0.3]), np.array([False, False])) == pytest.approx(0.3)


def _synthetic(n_per: int = 28, seed: int = 0):
    """Four speakers acting the 7 emotions; each speaker adds a large offset (their voice)."""
    from sentistream.models.voice.features import EMOTION_VALENCE
    from sentistream.models.training.voice_v2_train import KINDS, Clip

    rng = np.random.default_rng(seed)
    clips, rows = [], []
    for s in range(4):
        offset = rng.normal(0, 6, 35)
        for i in range(n_per):
            k = i % len(EMOTIONS)
            rows.append(offset + np.eye(7)[k].repeat(5) * 2.0 + rng.normal(0, 1, 35))
            clips.append(Clip(f"c{s}-{i}", "x", f"s{s}", EMOTIONS[k], EMOTION_VALENCE[k], k))
    x = np.asarray(rows)
    return clips, {k: x + (0 if k == "clean" else rng.normal(0, 0.1, x.shape)) for k in KINDS}


def test_channel_recipe_removes_speaker_offsets() -> None:
    clips, xs = _synthetic()
    idx, speaker = np.arange(len(clips)), np.array([c.speaker for c in clips])
    train, test = idx[speaker != "s0"], idx[speaker == "s0"]
    y = np.array([c.valence for c in clips])
    cfg = Config(C=0.3, prosody_weight=0.0, augment=False)
    acc = {}
    for mode in ("plain", "channel"):
        f = fit(xs, clips, train, cfg, mode)
        views = held_out_views(xs, clips, train, test, mode, seed=0)
        hits = []
        for order, pos, x in views:
            assert sorted(order) == sorted(test) and pos.min() == 0
            z = f.model.decision_function((x - f.mean) / f.scale)
            p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
            hits.append(valence_arousal(p)[0].argmax(1) == y[order])
        acc[mode] = float(np.mean(hits))
    assert len(views) == 3 and acc["channel"] > 0.8 and acc["channel"] > acc["plain"]
    chosen, f1 = select(xs, clips, train, Recipe("channel", (cfg, cfg._replace(C=0.03))), 0)
    assert chosen in (cfg, cfg._replace(C=0.03)) and 0.5 <= f1 <= 1


@pytest.mark.data
def test_read_clips_maps_labels(shared_data: Path) -> None:
    clips = read_clips(shared_data)
    assert len(clips) == 400 and len({c.speaker for c in clips}) == 4
    assert {c.emotion for c in clips} == {*EMOTIONS, "calm"}
    calm = [c for c in clips if c.emotion == "calm"]
    assert calm and all(c.target == EMOTIONS.index("neutral") and c.valence == 1 for c in calm)
    surprised = [c for c in clips if c.emotion == "surprised"]
    assert {c.valence for c in surprised if c.corpus == "tess"} == {LABELS.index("positive")}
    assert {c.valence for c in surprised if c.corpus == "ravdess"} == {-1}


# -------------------------------------------------------------------- shipped bundle


@pytest.fixture(scope="module")
def model() -> VoiceEmotionModelV2:
    torch.set_num_threads(1)
    loaded = VoiceEmotionModel.load(BUNDLE, threads=1)
    assert isinstance(loaded, VoiceEmotionModelV2)
    return loaded


def test_shipped_bundle_metadata() -> None:
    meta = load_bundle_meta(BUNDLE, expected_kind="voice")
    assert meta.params["head"] == "emotion-hierarchical-v2" and meta.labels == LABELS
    assert meta.params["in_features"] == 768 + len(PROSODY_NAMES)
    assert tuple(meta.params["emotions"]) == EMOTIONS
    report = json.loads((Path(meta.path) / meta.metrics["report"]).read_text())
    assert report["model_id"] == meta.model_id and "v1" in report
    state = torch.load(meta.weights_path, weights_only=True)
    heads = VoiceHeadsV2(in_features=meta.params["in_features"])
    heads.load_state_dict(state, strict=True)


@pytest.mark.slow
def test_predictions_in_range_and_batch_equals_items(model: VoiceEmotionModelV2) -> None:
    clips = [_speechlike(2.5, seed=1), _speechlike(1.0, seed=2, f0=220), _speechlike(3.0, 3)]
    assert model.model_id.startswith(BUNDLE + "@") and model.predict([]) == []
    batch = model.predict(clips)
    for clip, p in zip(clips, batch, strict=True):
        assert -1 <= p.valence <= 1 and 0 <= p.confidence <= 1 and p.arousal is not None
        assert sum(p.probs.values()) == pytest.approx(1, abs=1e-5)
        assert model.predict([clip])[0].valence == pytest.approx(p.valence, abs=1e-4)


@pytest.mark.slow
def test_channel_mode_carries_stats(model: VoiceEmotionModelV2) -> None:
    clips = [_speechlike(2.0, seed=i, f0=120 + 20 * i) for i in range(4)]
    together, stats = model.predict_channel(clips, None)
    first, mid = model.predict_channel(clips[:2], None)
    rest, end = model.predict_channel(clips[2:], mid)
    assert stats is not None and end is not None and stats.n == end.n == 4
    for a, b in zip(together, first + rest, strict=True):
        assert a.valence == pytest.approx(b.valence, abs=1e-4)
    assert model.predict(clips, normalise="channel")[3].valence == pytest.approx(
        together[3].valence, abs=1e-4
    )
    with pytest.raises(ValueError, match="normalise"):
        model.predict(clips, normalise="speaker")


@pytest.mark.slow
@pytest.mark.data
def test_happy_reads_more_positive_than_angry_or_sad(
    model: VoiceEmotionModelV2, shared_data: Path
) -> None:
    """Sanity on a few training clips (held-out figures are in the model card)."""
    from sentistream.models.training.voice_train import read_wav
    from sentistream.models.whisper import resample_to_16k

    chosen = [c for c in read_clips(shared_data) if c.emotion in ("happy", "angry", "sad")][::8]
    audios = [resample_to_16k(*read_wav(Path(c.path))) for c in chosen]
    valence = np.array([p.valence for p in model.predict(audios)])
    emotion = np.array([c.emotion for c in chosen])
    assert valence[emotion == "happy"].mean() > valence[emotion == "angry"].mean()
    assert valence[emotion == "happy"].mean() > valence[emotion == "sad"].mean()
