"""Text (words) model: pure functions, strict bundle loading, the shipped model's behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.bundle import resolve_bundle
from sentistream.models.text.model import (
    DEFAULT_BUNDLE,
    LABELS,
    TextHead,
    TextSentimentModel,
    build_text_head,
    normalize_text,
    probs_to_predictions,
    surface_features,
    vader_labels,
    vader_valence,
)

NEGATIVE = "This is terrible, I hate it and I want a refund."
POSITIVE = "This is wonderful, I love it, thank you so much!"
NEUTRAL = "The meeting is scheduled for Tuesday at 3 pm."


def fake_encoder(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for MiniLM: (N, 384) from a hash of each text."""
    rows = [np.random.default_rng(sum(map(ord, t))).standard_normal(384) for t in texts]
    return np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)


@pytest.fixture(scope="module")
def model() -> TextSentimentModel:
    torch.set_num_threads(1)
    return TextSentimentModel.load(DEFAULT_BUNDLE)


# ---------------------------------------------------------------- fast


def test_vader_valence_signs_and_shape() -> None:
    out = vader_valence([NEGATIVE, POSITIVE, NEUTRAL])
    assert out.shape == (3,)
    assert out[0] < -0.5 and out[1] > 0.5 and abs(out[2]) < 0.05
    assert vader_valence([]).shape == (0,)


def test_normalize_and_surface_features() -> None:
    assert normalize_text("I\u2019m  fine\u2026 ") == "I'm fine..."
    feats = surface_features(["WOW!! really?", "ok"])
    assert feats.shape == (2, 5) and feats.dtype == np.float32
    assert feats[0, 0] == pytest.approx(np.log1p(2)) and feats[1, 0] == 0.0


def test_probs_to_predictions() -> None:
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype=np.float32)
    preds = probs_to_predictions(probs, LABELS)
    assert preds[0].valence == pytest.approx(-0.6) and preds[1].valence == pytest.approx(0.7)
    assert preds[0].confidence == pytest.approx(0.7)
    assert sum(preds[1].probs.values()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="probs must have shape"):
        probs_to_predictions(probs[:, :2], LABELS)


def test_head_shapes_and_bad_params() -> None:
    head = TextHead(in_dim=8, num_classes=3, hidden=4)
    assert head(torch.zeros(5, 8)).shape == (5, 3)
    with pytest.raises(ValueError, match="features"):
        build_text_head({"features": ["glove"], "embedding_dim": 384}, num_classes=3)
    with pytest.raises(ValueError, match="in_dim"):
        TextHead(in_dim=0, num_classes=3)


def test_empty_text_raises() -> None:
    m = TextSentimentModel.load(DEFAULT_BUNDLE, encoder=fake_encoder)
    assert len(m.predict(["fine"])) == 1
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        m.predict(["fine", "   "])
    with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
        m.predict([""])
    assert m.predict([]) == []


def test_strict_load_fails_on_mismatched_bundle(tmp_path: Path) -> None:
    src = resolve_bundle(DEFAULT_BUNDLE)
    meta = json.loads(src.read_text())
    shutil.copy(src.parent / meta["weights"], tmp_path / meta["weights"])
    meta["params"]["hidden"] = 16  # weights are a linear head
    bad = tmp_path / "mismatched.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not match its params"):
        TextSentimentModel.load(str(bad), encoder=fake_encoder)


def test_wrong_kind_and_encoder_shape(tmp_path: Path) -> None:
    src = resolve_bundle(DEFAULT_BUNDLE)
    meta = json.loads(src.read_text())
    shutil.copy(src.parent / meta["weights"], tmp_path / meta["weights"])
    meta["kind"] = "voice"
    (tmp_path / "voice.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="expected 'text'"):
        TextSentimentModel.load(str(tmp_path / "voice.json"), encoder=fake_encoder)
    m = TextSentimentModel.load(DEFAULT_BUNDLE, encoder=lambda t: np.zeros((len(t), 10)))
    with pytest.raises(ValueError, match="encoder returned shape"):
        m.predict(["hello"])


# ---------------------------------------------------------------- real model


@pytest.mark.slow
def test_shipped_model_polarity(model: TextSentimentModel) -> None:
    neg, pos, neu = model.predict([NEGATIVE, POSITIVE, NEUTRAL])
    assert model.model_id.startswith("text-minilm-vader-lr@")
    assert model.labels == LABELS
    assert neg.valence < -0.4 and max(neg.probs, key=neg.probs.__getitem__) == "negative"
    assert pos.valence > 0.4 and max(pos.probs, key=pos.probs.__getitem__) == "positive"
    assert abs(neu.valence) < 0.2 and max(neu.probs, key=neu.probs.__getitem__) == "neutral"
    for p in (neg, pos, neu):
        assert -1.0 <= p.valence <= 1.0 and 0.0 <= p.confidence <= 1.0


@pytest.mark.slow
def test_batch_equals_items(model: TextSentimentModel) -> None:
    texts = [NEGATIVE, POSITIVE, NEUTRAL, "Oh my God!", "Whatever, fine."]
    batched = model.predict_proba(texts)
    singles = np.concatenate([model.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, singles, atol=1e-5)


@pytest.mark.slow
@pytest.mark.data
def test_beats_vader_on_meld_dev_sample(model: TextSentimentModel, shared_data: Path) -> None:
    from sentistream.models.training.text_train import load_meld, weighted_f1

    dev = load_meld(shared_data / "meld" / "dev_sent_emo.csv")
    idx = np.random.default_rng(0).choice(len(dev.texts), size=300, replace=False)
    texts, y = [dev.texts[i] for i in idx], dev.y[idx]
    ours = weighted_f1(y, model.predict_proba(texts).argmax(axis=1))
    vader = weighted_f1(y, vader_labels(texts))
    assert ours > vader + 0.1, (ours, vader)
