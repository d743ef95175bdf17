"""Voice model (models/voice/): prosody, channel normalisation, hierarchical heads, bundle
loading, the shipped bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.audio import read_audio
from sentistream.models.bundle import BundleMeta, load_bundle_meta, save_bundle_meta
from sentistream.models.training.corpora import read_emodb, read_ravdess
from sentistream.models.training.splits import is_dev_voice
from sentistream.models.voice.features import (
    EMOTIONS,
    PROSODY_NAMES,
    ChannelStats,
    VoiceHeads,
    channel_normalise,
    channel_prior,
    prosody_features,
    valence_arousal,
    zscore,
)
from sentistream.models.voice.model import (
    LABELS,
    VoiceEmotionModel,
    confidence_from_probs,
    load_heads,
)

REPO = Path(__file__).resolve().parents[2]

BUNDLE = "voice-whisper-tiny-v3"


# -------------------------------------------------------------------- prosody


def test_prosody_shape_pitch_and_level(speechlike) -> None:
    low, high = (
        prosody_features(speechlike(2.0, f0=140)),
        prosody_features(speechlike(2.0, f0=220)),
    )
    assert low.shape == (len(PROSODY_NAMES),) and low.dtype == np.float32
    assert np.isfinite(low).all() and np.isfinite(high).all()
    f0 = PROSODY_NAMES.index("f0_median_st")
    assert high[f0] - low[f0] == pytest.approx(12 * np.log2(220 / 140), abs=1.0)
    assert low[f0] == pytest.approx(12 * np.log2(140 / 100), abs=1.0)
    loud = prosody_features(speechlike(2.0, f0=140, gain=1.0))
    energy = PROSODY_NAMES.index("energy_db_mean")
    assert loud[energy] - low[energy] == pytest.approx(20.0, abs=0.5)
    dur = PROSODY_NAMES.index("log_duration_s")
    assert low[dur] == pytest.approx(np.log(2.0), abs=1e-3)


def test_prosody_handles_short_and_silent_clips(speechlike) -> None:
    for audio in (np.zeros(100, np.float32), speechlike(0.05), np.zeros(8000, np.float32)):
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
    expected = {
        "neutral": 1,
        "happy": 2,
        "sad": 0,
        "angry": 0,
        "fearful": 0,
        "disgust": 0,
        "surprised": 2,
    }
    assert [int(np.argmax(v)) for v in valence] == [expected[e] for e in EMOTIONS]
    np.testing.assert_allclose(valence.sum(1), 1.0)
    assert arousal[EMOTIONS.index("angry")] == 1.0 and arousal[EMOTIONS.index("sad")] == 0.0
    mixed = np.full((1, len(EMOTIONS)), 1 / len(EMOTIONS))
    assert valence_arousal(mixed)[1][0] == pytest.approx(4 / 6)


def _write(folder: Path, heads: VoiceHeads, params: dict[str, object]) -> Path:
    torch.save(heads.state_dict(), folder / "weights.pt")
    params = {"head": "emotion-hierarchical-v2", **params}
    meta = BundleMeta("v", "v@test", "voice", LABELS, "weights.pt", params)
    return save_bundle_meta(meta, folder)


def test_bundle_loads_strictly(tmp_path: Path) -> None:
    path = _write(tmp_path, VoiceHeads(in_features=10), {"in_features": 12})
    with pytest.raises(ValueError, match="do not match the heads"):
        load_heads(load_bundle_meta(str(path)))
    with pytest.raises(ValueError, match="do not match the heads"):
        VoiceEmotionModel.load(str(tmp_path))
    path = _write(tmp_path, VoiceHeads(in_features=12), {"in_features": 12})
    assert isinstance(load_heads(load_bundle_meta(str(path))), VoiceHeads)
    valence = VoiceHeads(in_features=12, n_classes=3)
    path = _write(tmp_path, valence, {"in_features": 12, "target": "valence"})
    assert load_heads(load_bundle_meta(str(path))).plain.linear.out_features == 3
    with pytest.raises(ValueError, match="do not match the heads"):
        load_heads(load_bundle_meta(str(_write(tmp_path, valence, {"in_features": 12}))))


def test_first_clips_of_a_channel_use_the_plain_head(tmp_path: Path) -> None:
    """Until a channel has ``min_channel_clips`` clips its clips are scored alone; from
    then on by the channel head on channel-normalised features."""
    torch.manual_seed(0)
    heads = VoiceHeads(in_features=12, n_classes=3)
    heads.channel.linear.weight.data.mul_(-1.0)  # make the two heads disagree
    _write(tmp_path, heads, {"in_features": 12, "target": "valence", "min_channel_clips": 3})
    meta = load_bundle_meta(str(tmp_path))
    model = VoiceEmotionModel(heads=load_heads(meta), meta=meta, encoder=None)
    x = np.random.default_rng(0).normal(size=(5, 12))
    alone, _ = model.emotion_probs(x)
    mixed, stats = model.emotion_probs(x, normalise="channel")
    np.testing.assert_allclose(mixed[:2], alone[:2], atol=1e-6)
    assert not np.allclose(mixed[2:], alone[2:], atol=1e-3) and stats.n == 5
    later, _ = model.emotion_probs(x[2:], normalise="channel", channel=stats)
    assert not np.allclose(later, model.emotion_probs(x[2:])[0], atol=1e-3)  # position >= 3


def test_load_rejects_other_heads_and_kinds(tmp_path: Path) -> None:
    path = _write(tmp_path, VoiceHeads(in_features=8), {"in_features": 8})
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "params": {**data["params"], "head": "linear-v1"}}))
    with pytest.raises(ValueError, match="params\\['head'\\]"):
        load_heads(load_bundle_meta(str(path)))
    path.write_text(json.dumps({**data, "kind": "face"}))
    with pytest.raises(ValueError, match="expected 'voice'"):
        VoiceEmotionModel.load(str(path))


def test_confidence_is_one_minus_normalised_entropy() -> None:
    probs = np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    expected = [0.0, 1.0, 1 - np.log(2) / np.log(3)]
    np.testing.assert_allclose(confidence_from_probs(probs), expected, atol=1e-9)


# -------------------------------------------------------------------- shipped bundle


@pytest.fixture(scope="module")
def model() -> VoiceEmotionModel:
    torch.set_num_threads(1)
    return VoiceEmotionModel.load(BUNDLE, threads=1)


def test_shipped_bundle_metadata() -> None:
    meta = load_bundle_meta(BUNDLE, expected_kind="voice")
    assert meta.params["head"] == "emotion-hierarchical-v2" and meta.labels == LABELS
    assert meta.params["in_features"] == 768 + len(PROSODY_NAMES)
    assert tuple(meta.params["emotions"]) == EMOTIONS
    assert meta.metrics["report"] == f"docs/reports/{BUNDLE}.json"
    report = json.loads((REPO / meta.metrics["report"]).read_text())
    assert report["model_id"] == meta.model_id and "v3-channel" in report["recipes"]
    assert set(meta.training_data["speakers"]) == set(report["n_clips"])
    assert not any(is_dev_voice(s) for s in meta.training_data["speakers"])
    state = torch.load(meta.weights_path, weights_only=True)
    n_classes = len(EMOTIONS) if meta.params["target"] == "emotion" else len(LABELS)
    heads = VoiceHeads(in_features=meta.params["in_features"], n_classes=n_classes)
    heads.load_state_dict(state, strict=True)


@pytest.mark.slow
def test_predictions_in_range_and_batch_equals_items(speechlike, model: VoiceEmotionModel) -> None:
    clips = [speechlike(2.5, seed=1), speechlike(1.0, seed=2, f0=220), speechlike(3.0, 3)]
    assert model.model_id.startswith(BUNDLE + "@") and model.predict([]) == []
    batch = model.predict(clips)
    for clip, p in zip(clips, batch, strict=True):
        assert -1 <= p.valence <= 1 and 0 <= p.confidence <= 1
        assert (p.arousal is not None) == (model.target == "emotion")
        assert sum(p.probs.values()) == pytest.approx(1, abs=1e-5)
        assert model.predict([clip])[0].valence == pytest.approx(p.valence, abs=1e-4)


@pytest.mark.slow
def test_channel_mode_carries_stats(speechlike, model: VoiceEmotionModel) -> None:
    clips = [speechlike(2.0, seed=i, f0=120 + 20 * i) for i in range(4)]
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
    model: VoiceEmotionModel, shared_data: Path
) -> None:
    """Sanity on a few clips of the dev speakers the bundle never heard (DEV_VOICE_GROUPS)."""
    trained = set(model.meta.training_data["speakers"])
    examples = read_ravdess(shared_data / "ravdess_audio") + read_emodb(shared_data / "emodb")
    clips = [e for e in examples if is_dev_voice(e.group) and e.group not in trained]
    chosen = [e for e in clips if e.emotion in ("happy", "angry", "sad")][::4]
    audios = [read_audio(c.path_or_text) for c in chosen]
    valence = np.array([p.valence for p in model.predict(audios)])
    emotion = np.array([c.emotion for c in chosen])
    assert valence[emotion == "happy"].mean() > valence[emotion == "angry"].mean()
    assert valence[emotion == "happy"].mean() > valence[emotion == "sad"].mean()
