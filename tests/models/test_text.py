"""Text (words) model: pure functions, strict bundle loading, the shipped model's behaviour."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.bundle import DEFAULT_BUNDLES, resolve_bundle
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.text.features import (
    normalize_text,
    surface_features,
    vader_labels,
    vader_valence,
)
from sentistream.models.text.model import (
    TextHead,
    TextSentimentModel,
    build_text_head,
    probs_to_predictions,
)

DEFAULT_BUNDLE = DEFAULT_BUNDLES["text"]

NEGATIVE = "This is terrible, I hate it and I want a refund."
POSITIVE = "This is wonderful, I love it, thank you so much!"
NEUTRAL = "The meeting is scheduled for Tuesday at 3 pm."


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


def test_empty_text_raises(fake_encoder) -> None:
    m = TextSentimentModel.load(DEFAULT_BUNDLE, encoder=fake_encoder)
    assert len(m.predict(["fine"])) == 1
    with pytest.raises(ValueError, match=r"texts\[1\] is empty"):
        m.predict(["fine", "   "])
    with pytest.raises(ValueError, match=r"texts\[0\] is empty"):
        m.predict([""])
    assert m.predict([]) == []


def test_strict_load_fails_on_mismatched_bundle(fake_encoder, tmp_path: Path) -> None:
    src = resolve_bundle(DEFAULT_BUNDLE)
    meta = json.loads(src.read_text())
    shutil.copy(src.parent / meta["weights"], tmp_path / meta["weights"])
    meta["params"]["hidden"] = 16  # weights are a linear head
    bad = tmp_path / "mismatched.json"
    bad.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="do not match its params"):
        TextSentimentModel.load(str(bad), encoder=fake_encoder)


def test_wrong_kind_and_encoder_shape(fake_encoder, tmp_path: Path) -> None:
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
@pytest.mark.data
def test_beats_vader_on_meld_dev_sample(model: TextSentimentModel, shared_data: Path) -> None:
    from sentistream.models.training.text_head import load_meld, weighted_f1

    dev = load_meld(shared_data / "meld" / "dev_sent_emo.csv")
    idx = np.random.default_rng(0).choice(len(dev.texts), size=300, replace=False)
    texts, y = [dev.texts[i] for i in idx], dev.y[idx]
    ours = weighted_f1(y, model.predict_proba(texts).argmax(axis=1))
    vader = weighted_f1(y, vader_labels(texts))
    assert ours > vader + 0.1, (ours, vader)
