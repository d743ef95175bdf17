"""The voice recipe's parts (models/training/voice_fit.py): metrics, the channel recipe on
synthetic speakers, out-of-fold scores, reading the shared clips (dev speakers left out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.splits import DEV_VOICE_GROUPS, is_dev_voice
from sentistream.models.training.voice_fit import (
    Clip,
    Config,
    Recipe,
    fit,
    held_out_views,
    out_of_fold,
    read_clips,
    scores,
    select,
)
from sentistream.models.voice.features import EMOTIONS, valence_arousal


def test_scores() -> None:
    result = scores(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]))
    assert result["accuracy"] == 0.75
    assert result["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert scores(np.array([0, 0]), np.array([0, 1]))["macro_f1"] == pytest.approx(1 / 3)


def test_dev_voice_groups_in_either_spelling() -> None:
    assert DEV_VOICE_GROUPS == ("ravdess:21", "ravdess:22", "emodb:15", "emodb:16")
    assert is_dev_voice("ravdess-21") and is_dev_voice("emodb:16") and is_dev_voice("emodb-15")
    assert not is_dev_voice("ravdess-20") and not is_dev_voice("tess-OAF")


def _synthetic(n_per: int = 28, seed: int = 0):
    """Four speakers acting the 7 emotions; each speaker adds a large offset (their voice)."""
    from sentistream.models.voice.features import EMOTION_VALENCE

    rng = np.random.default_rng(seed)
    clips, rows = [], []
    for s in range(4):
        offset = rng.normal(0, 6, 35)
        for i in range(n_per):
            k = i % len(EMOTIONS)
            rows.append(offset + np.eye(7)[k].repeat(5) * 2.0 + rng.normal(0, 1, 35))
            clips.append(Clip(f"c{s}-{i}", "x", f"s{s}", EMOTIONS[k], EMOTION_VALENCE[k], k))
    return clips, np.asarray(rows)


def test_channel_recipe_removes_speaker_offsets() -> None:
    clips, xs = _synthetic()  # (N, 35) features
    idx, speaker = np.arange(len(clips)), np.array([c.speaker for c in clips])
    train, test = idx[speaker != "s0"], idx[speaker == "s0"]
    y = np.array([c.valence for c in clips])
    cfg = Config(C=0.3, prosody_weight=0.0)
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
    order, p = out_of_fold(xs, clips, cfg, "channel", n_folds=2, seed=0)
    assert sorted(order) == list(idx) and p.shape == (len(clips), 3)
    assert np.mean(p.argmax(1) == y[order]) > 0.8


@pytest.mark.data
def test_read_clips_maps_labels(shared_data: Path) -> None:
    clips = read_clips(shared_data)  # RAVDESS actors 01-20 + TESS OAF/YAF + Emo-DB (8 of 10)
    assert len({c.speaker for c in clips}) == 20 + 2 + 8 and len(clips) == 20 * 60 + 280 + 408
    assert not any(is_dev_voice(c.speaker) for c in clips)
    assert {c.path.rsplit(".", 1)[1] for c in clips} == {"wav", "flac"}
    assert {c.emotion for c in clips} == {*EMOTIONS, "calm", "boredom"}
    boredom = [c for c in clips if c.emotion == "boredom"]
    assert boredom and all(c.target == -1 and c.valence == 0 for c in boredom)
    calm = [c for c in clips if c.emotion == "calm"]
    assert calm and all(c.target == EMOTIONS.index("neutral") and c.valence == 1 for c in calm)
    surprised = [c for c in clips if c.emotion == "surprised"]
    assert {c.valence for c in surprised if c.corpus == "tess"} == {LABELS.index("positive")}
    assert {c.valence for c in surprised if c.corpus == "ravdess"} == {-1}
