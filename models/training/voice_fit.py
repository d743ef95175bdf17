"""The pieces of the voice recipe (:mod:`sentistream.models.training.voice`): labelled
clips (RAVDESS, TESS, Emo-DB; the pipeline dev set's speakers left out), cached features,
the normalisations, and class-balanced logistic regressions chosen by inner k-fold
cross-validation by speaker.

A *recipe* is a normalisation (``plain``; ``channel``: by the speaker's earlier clips;
``speaker``: by all its clips) and a grid of :class:`Config` (L2 ``C``, prosody weight,
7 emotions summed to valence or a flat valence head).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sentistream.models.audio import read_audio, voiced_audio
from sentistream.models.labels import VALENCE_LABELS
from sentistream.models.training import corpora
from sentistream.models.training.metrics import accuracy_f1, softmax_t
from sentistream.models.training.splits import group_folds, is_dev_voice
from sentistream.models.voice import features as vf
from sentistream.models.whisper import (
    FRONTEND_VERSION,
    default_model_dir,
    encode_pooled,
    load_whisper,
)

FEATURES_VERSION = "v3-meanstd-prosody-1"
EMOTIONS = vf.EMOTIONS
INNER_FOLDS = 3  # inner model selection: k folds of whole training speakers


class Clip(NamedTuple):
    """``valence``: VALENCE_LABELS index (-1: ambiguous); ``target``: EMOTIONS index (calm:
    neutral; -1: an emotion outside EMOTIONS, Emo-DB boredom, trained for valence only)."""

    path: str
    corpus: str
    speaker: str
    emotion: str
    valence: int
    target: int


class Config(NamedTuple):
    C: float
    prosody_weight: float  # 0: prosody unused
    hierarchical: bool = True  # emotions summed to valence; False: a valence head


class Recipe(NamedTuple):
    mode: str  # plain | channel | speaker
    grid: tuple[Config, ...]


def make_grid(
    weights: tuple[float, ...] = (1.0, 6.0), hierarchical: tuple[bool, ...] = (True, False)
) -> tuple[Config, ...]:
    product = itertools.product((0.001, 0.01, 0.1), weights, hierarchical)
    return tuple(Config(c, w, h) for c, w, h in product)


FULL = make_grid()
RECIPES = {f"v3-{m}": Recipe(m, FULL) for m in ("plain", "channel")}


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes present in either array."""
    return accuracy_f1(y, pred, max(len(EMOTIONS), int(np.max(y, initial=0)) + 1))


def read_clips(data: Path) -> list[Clip]:
    """Every clip of ``data/ravdess_audio``, ``data/tess`` and ``data/emodb`` (the
    ``corpora`` readers) except the speakers of ``DEV_VOICE_GROUPS``."""
    examples = corpora.read_ravdess(data / "ravdess_audio") + corpora.read_tess(data / "tess")
    examples += corpora.read_emodb(data / "emodb")
    clips = []
    for e in examples:
        if is_dev_voice(e.group):
            continue
        emo = "surprised" if e.emotion == "pleasant_surprise" else e.emotion
        valence = VALENCE_LABELS.index(e.label) if e.label in VALENCE_LABELS else -1
        emo_key = "neutral" if emo == "calm" else emo
        target = EMOTIONS.index(emo_key) if emo_key in EMOTIONS else -1
        clips.append(Clip(e.path_or_text, e.corpus, e.group, emo, valence, target))
    return clips


def extract(
    clips: list[Clip], cache: Path, threads: int = 1, voiced_only: bool = True
) -> np.ndarray:
    """(N, 788) features: Whisper mean+std (768) ++ prosody (20), cached in ``cache``.

    ``voiced_only``: of each clip's voiced frames only (``models.audio.voiced_audio``), as
    ``VoiceEmotionModel.features`` reads a bundle whose ``params["voiced_only"]`` is set.
    """
    cache.mkdir(parents=True, exist_ok=True)
    model_dir = default_model_dir()
    spec = [FEATURES_VERSION, FRONTEND_VERSION, model_dir, [c.path for c in clips]]
    spec += ["voiced"] if voiced_only else []
    path = cache / f"clean-{hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]}.npz"
    if not path.is_file():
        print(f"extracting features ({len(clips)} clips)", file=sys.stderr)
        waves = [read_audio(c.path) for c in clips]
        waves = [voiced_audio(w) for w in waves] if voiced_only else waves
        pooled = encode_pooled(load_whisper(model_dir, "cpu", "int8", threads=threads), waves)
        np.savez(path, meanstd=pooled, prosody=[vf.prosody_features(w) for w in waves])
    with np.load(path) as z:
        return np.concatenate([z["meanstd"], z["prosody"]], 1).astype(np.float64)


def column(clips: list[Clip], field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in clips])


class Fitted(NamedTuple):
    model: Any  # sklearn LogisticRegression
    mean: np.ndarray
    scale: np.ndarray  # prosody columns divided by the prosody weight (1e30 when 0)
    hierarchical: bool

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function((x - self.mean) / self.scale)


def fit(x_all: np.ndarray, clips: list[Clip], idx: np.ndarray, cfg: Config, mode: str) -> Fitted:
    """Class-balanced logistic regression on the clips ``idx`` (z-scored per speaker unless
    ``mode == "plain"``) -> :class:`Fitted`."""
    from sklearn.linear_model import LogisticRegression

    speaker = column(clips, "speaker")[idx]
    x = x_all[idx] if mode == "plain" else vf.zscore(x_all[idx], speaker)
    y = column(clips, "target" if cfg.hierarchical else "valence")[idx]
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
    prosody = 1 / cfg.prosody_weight if cfg.prosody_weight > 0 else 1e30
    scale[-len(vf.PROSODY_NAMES) :] *= prosody
    model = LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=5000)
    model.fit(((x - mean) / scale)[y >= 0], y[y >= 0])
    return Fitted(model, mean, scale, cfg.hierarchical)


View = tuple[np.ndarray, np.ndarray, np.ndarray]


def held_out_views(
    x: np.ndarray,
    clips: list[Clip],
    train: np.ndarray,
    test: np.ndarray,
    mode: str,
    seed: int,
    orders: int = 3,
) -> list[View]:
    """The test features as the recipe sees them: [(clip indices, positions in their
    channel, (n, D) features)], one per random order of each speaker's clips (``channel``)."""
    speaker = column(clips, "speaker")
    if mode != "channel":
        feats = x[test] if mode == "plain" else vf.zscore(x[test], speaker[test])
        return [(test, np.zeros(len(test), dtype=int), feats)]
    prior, views = vf.channel_prior(x[train], speaker[train]), []
    rng, empty = np.random.default_rng(seed), vf.ChannelStats.empty(x.shape[1])
    for _ in range(orders):
        order = [rng.permutation(test[speaker[test] == s]) for s in np.unique(speaker[test])]
        rows = [vf.channel_normalise(x[o], empty, *prior)[0] for o in order]
        pos = np.concatenate([np.arange(len(o)) for o in order])
        views.append((np.concatenate(order), pos, np.concatenate(rows)))
    return views


def probs(z: np.ndarray, hierarchical: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits -> (N, 3) valence probabilities and (N, 7) emotion ones (None if flat)."""
    if not hierarchical:
        return softmax_t(z), None
    emotion = softmax_t(z)
    return vf.valence_arousal(emotion)[0], emotion


def select(
    x: np.ndarray, clips: list[Clip], idx: np.ndarray, recipe: Recipe, seed: int
) -> tuple[Config, float]:
    """The config with the best valence macro-F1 (mean over :data:`INNER_FOLDS` folds of
    whole speakers of ``idx``; ties to the earlier config)."""
    speaker, y = column(clips, "speaker"), column(clips, "valence")
    fold = group_folds(speaker[idx], min(INNER_FOLDS, len(set(speaker[idx]))), seed)
    best: tuple[float, Config] | None = None
    for cfg in recipe.grid:
        f1s = []
        for k in np.unique(fold):
            tr, va = idx[fold != k], idx[fold == k]
            ((order, _, xv),) = held_out_views(x, clips, tr, va, recipe.mode, seed, orders=1)
            z, yy = fit(x, clips, tr, cfg, recipe.mode).logits(xv), y[order]
            pred = probs(z[yy >= 0], cfg.hierarchical)[0].argmax(1)
            f1s.append(scores(yy[yy >= 0], pred)["macro_f1"])
        if best is None or np.mean(f1s) > best[0] + 1e-9:
            best = (float(np.mean(f1s)), cfg)
    assert best is not None
    return best[1], best[0]


def final_heads(
    x: np.ndarray, clips: list[Clip], seed: int
) -> tuple[vf.VoiceHeads, dict[str, Any]]:
    """The shipped heads, fitted on every training speaker: ``channel`` (what ``run``
    scores) selected on the full grid, then ``plain`` with the same target (7 emotions or
    3 valence classes: one head shape per bundle)."""
    every, info = np.arange(len(clips)), {}
    cfg, f1 = select(x, clips, every, RECIPES["v3-channel"], seed)
    grid = tuple(c for c in FULL if c.hierarchical == cfg.hierarchical)
    n_classes = len(EMOTIONS) if cfg.hierarchical else len(VALENCE_LABELS)
    heads = vf.VoiceHeads(in_features=x.shape[1], n_classes=n_classes)
    chosen = {"channel": (cfg, f1), "plain": select(x, clips, every, Recipe("plain", grid), seed)}
    for mode, head in (("plain", heads.plain), ("channel", heads.channel)):
        cfg, f1 = chosen[mode]
        f = fit(x, clips, every, cfg, mode)
        state = {"mean": f.mean, "scale": f.scale, "linear.weight": f.model.coef_}
        state |= {"linear.bias": f.model.intercept_}
        head.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
        info[mode] = {"config": cfg._asdict(), "inner_cv_macro_f1": f1}
    prior = vf.channel_prior(x, column(clips, "speaker"))
    for buffer, value in zip((heads.prior_mean, heads.prior_var), prior, strict=True):
        buffer.copy_(torch.from_numpy(value))
    return heads.eval(), info


def out_of_fold(
    x: np.ndarray, clips: list[Clip], cfg: Config, mode: str, n_folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Held-out valence probabilities of every clip: ``n_folds`` folds of whole speakers,
    each scored by ``cfg`` fitted on the others (``channel``: each speaker one channel in a
    seeded random order). Returns (clip indices, (N, 3) probabilities) in scoring order."""
    speaker, every = column(clips, "speaker"), np.arange(len(clips))
    fold, rows = group_folds(speaker, n_folds, seed), []
    for k in range(n_folds):
        tr, te = every[fold != k], every[fold == k]
        ((order, _, xv),) = held_out_views(x, clips, tr, te, mode, seed, orders=1)
        rows.append((order, probs(fit(x, clips, tr, cfg, mode).logits(xv), cfg.hierarchical)[0]))
    return np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
