"""The pieces of the voice recipe (:mod:`sentistream.models.training.voice`): labelled
clips, cached features (clean and augmented), the normalisations, and class-balanced
logistic regressions chosen by inner leave-one-speaker-out.

A *recipe* is a normalisation (``plain``; ``channel``: by the speaker's earlier clips;
``speaker``: by all its clips) and a grid of :class:`Config` (L2 ``C``, prosody weight,
augmentation, 7 emotions summed to valence or a flat valence head).
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
import torchaudio

from sentistream.models.audio import SAMPLE_RATE, read_audio
from sentistream.models.labels import VALENCE_LABELS
from sentistream.models.training import corpora
from sentistream.models.training.metrics import accuracy_f1, softmax_t
from sentistream.models.voice import features as vf
from sentistream.models.whisper import (
    FRONTEND_VERSION,
    default_model_dir,
    encode_pooled,
    load_whisper,
)

AUGMENTS = ("speed0.9", "speed1.1", "noise20")
KINDS = ("clean", *AUGMENTS)
FEATURES_VERSION = "v2-meanstd-prosody-1"
EMOTIONS = vf.EMOTIONS


class Clip(NamedTuple):
    """``valence``: VALENCE_LABELS index (-1: ambiguous); ``target``: EMOTIONS index (calm:
    neutral)."""

    path: str
    corpus: str
    speaker: str
    emotion: str
    valence: int
    target: int


class Config(NamedTuple):
    C: float
    prosody_weight: float  # 0: prosody unused
    augment: bool
    hierarchical: bool = True  # emotions summed to valence; False: a valence head


class Recipe(NamedTuple):
    mode: str  # plain | channel | speaker
    grid: tuple[Config, ...]


def make_grid(
    weights: tuple[float, ...], augments: tuple[bool, ...], hierarchical: bool = True
) -> tuple[Config, ...]:
    product = itertools.product((0.03, 0.3), weights, augments)
    return tuple(Config(c, w, a, hierarchical) for c, w, a in product)


FULL = make_grid((0.0, 6.0), (False, True))
RECIPES = {f"v2-{m}": Recipe(m, FULL) for m in ("plain", "channel", "speaker")}
ABLATIONS = {  # LOSO only; C by inner CV
    "plain, flat valence head": Recipe("plain", make_grid((0,), (False,), False)),
    "plain, hierarchical": Recipe("plain", make_grid((0,), (False,))),
    "channel, flat valence head": Recipe("channel", make_grid((0,), (False,), False)),
    "channel, hierarchical": Recipe("channel", make_grid((0,), (False,))),
    "channel, hier. + prosody": Recipe("channel", make_grid((6.0,), (False,))),
    "channel, hier. + prosody + augment": Recipe("channel", make_grid((6.0,), (True,))),
}


def scores(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 over the classes present in either array."""
    return accuracy_f1(y, pred, max(len(EMOTIONS), int(np.max(y, initial=0)) + 1))


def read_clips(data: Path) -> list[Clip]:
    """Every clip of ``data/ravdess_audio`` and ``data/tess`` (the ``corpora`` readers)."""
    examples = corpora.read_ravdess(data / "ravdess_audio") + corpora.read_tess(data / "tess")
    clips = []
    for e in examples:
        emo = "surprised" if e.emotion == "pleasant_surprise" else e.emotion
        valence = VALENCE_LABELS.index(e.label) if e.label in VALENCE_LABELS else -1
        target = EMOTIONS.index("neutral" if emo == "calm" else emo)
        clips.append(Clip(e.path_or_text, e.corpus, e.group, emo, valence, target))
    return clips


def augment(audio: np.ndarray, kind: str, seed: int) -> np.ndarray:
    """(samples,) 16 kHz -> augmented copy: ``speedF`` (tempo and pitch by F), ``noiseD``
    (white noise at D dB SNR, seeded) or ``clean``."""
    wave_t = torch.from_numpy(audio)[None]
    if kind == "clean":
        return audio
    if kind.startswith("speed"):
        out, _ = torchaudio.functional.speed(wave_t, SAMPLE_RATE, float(kind[5:]))
    elif kind.startswith("noise"):
        gen = torch.Generator().manual_seed(seed)
        noise = torch.randn(wave_t.shape, generator=gen)
        out = torchaudio.functional.add_noise(wave_t, noise, torch.tensor([float(kind[5:])]))
    else:
        raise ValueError(f"kind must be 'clean', 'speedF' or 'noiseD', got {kind!r}")
    return out[0].numpy().astype(np.float32)


def extract(
    clips: list[Clip], cache: Path, seed: int, kinds: tuple[str, ...] = KINDS
) -> dict[str, np.ndarray]:
    """(N, 788) features per kind: Whisper mean+std (768) ++ prosody (20), cached."""
    cache.mkdir(parents=True, exist_ok=True)
    model_dir, out = default_model_dir(), {}
    audio: list[np.ndarray] | None = None
    for kind in kinds:
        spec = [FEATURES_VERSION, FRONTEND_VERSION, model_dir, kind, seed, [c.path for c in clips]]
        path = cache / f"{kind}-{hashlib.sha1(json.dumps(spec).encode()).hexdigest()[:16]}.npz"
        if not path.is_file():
            print(f"extracting {kind} ({len(clips)} clips)", file=sys.stderr)
            if audio is None:
                audio = [read_audio(c.path) for c in clips]
            waves = [augment(a, kind, seed + i) for i, a in enumerate(audio)]
            pooled = encode_pooled(load_whisper(model_dir, "cpu", "int8", threads=1), waves)
            np.savez(path, meanstd=pooled, prosody=[vf.prosody_features(w) for w in waves])
        with np.load(path) as z:
            out[kind] = np.concatenate([z["meanstd"], z["prosody"]], 1).astype(np.float64)
    return out


def column(clips: list[Clip], field: str) -> np.ndarray:
    return np.array([getattr(c, field) for c in clips])


class Fitted(NamedTuple):
    model: Any  # sklearn LogisticRegression
    mean: np.ndarray
    scale: np.ndarray  # prosody columns divided by the prosody weight (1e30 when 0)
    hierarchical: bool

    def logits(self, x: np.ndarray) -> np.ndarray:
        return self.model.decision_function((x - self.mean) / self.scale)


def fit(
    xs: dict[str, np.ndarray], clips: list[Clip], idx: np.ndarray, cfg: Config, mode: str
) -> Fitted:
    """Class-balanced logistic regression on ``idx`` (clean + augmented copies, each copy
    z-scored per speaker unless ``mode == "plain"``) -> :class:`Fitted`."""
    from sklearn.linear_model import LogisticRegression

    speaker, kinds = column(clips, "speaker")[idx], KINDS if cfg.augment else ("clean",)
    x = np.concatenate(
        [xs[k][idx] if mode == "plain" else vf.zscore(xs[k][idx], speaker) for k in kinds]
    )
    y = np.tile(column(clips, "target" if cfg.hierarchical else "valence")[idx], len(kinds))
    mean, scale = x.mean(0), np.maximum(x.std(0), 1e-6)
    prosody = 1 / cfg.prosody_weight if cfg.prosody_weight > 0 else 1e30
    scale[-len(vf.PROSODY_NAMES) :] *= prosody
    model = LogisticRegression(C=cfg.C, class_weight="balanced", max_iter=5000)
    model.fit(((x - mean) / scale)[y >= 0], y[y >= 0])
    return Fitted(model, mean, scale, cfg.hierarchical)


View = tuple[np.ndarray, np.ndarray, np.ndarray]


def held_out_views(
    xs: dict[str, np.ndarray],
    clips: list[Clip],
    train: np.ndarray,
    test: np.ndarray,
    mode: str,
    seed: int,
    orders: int = 3,
) -> list[View]:
    """The test features as the recipe sees them: [(clip indices, positions in their
    channel, (n, D) features)], one per random order of each speaker's clips (``channel``)."""
    x, speaker = xs["clean"], column(clips, "speaker")
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
    xs: dict[str, np.ndarray], clips: list[Clip], idx: np.ndarray, recipe: Recipe, seed: int
) -> tuple[Config, float]:
    """The config with the best inner leave-one-speaker-out valence macro-F1 on ``idx``."""
    speaker, y = column(clips, "speaker"), column(clips, "valence")
    best: tuple[float, Config] | None = None
    for cfg in recipe.grid:
        f1s = []
        for held in np.unique(speaker[idx]):
            tr, va = idx[speaker[idx] != held], idx[speaker[idx] == held]
            ((order, _, x),) = held_out_views(xs, clips, tr, va, recipe.mode, seed, orders=1)
            z, yy = fit(xs, clips, tr, cfg, recipe.mode).logits(x), y[order]
            pred = probs(z[yy >= 0], cfg.hierarchical)[0].argmax(1)
            f1s.append(scores(yy[yy >= 0], pred)["macro_f1"])
        if best is None or np.mean(f1s) > best[0] + 1e-9:
            best = (float(np.mean(f1s)), cfg)
    assert best is not None
    return best[1], best[0]


def final_heads(
    xs: dict[str, np.ndarray], clips: list[Clip], seed: int
) -> tuple[vf.VoiceHeads, dict[str, Any]]:
    """The shipped heads: ``plain`` and ``channel``, selected and fitted on all speakers."""
    every, info = np.arange(len(clips)), {}
    heads = vf.VoiceHeads(in_features=xs["clean"].shape[1])
    for mode, head in (("plain", heads.plain), ("channel", heads.channel)):
        cfg, f1 = select(xs, clips, every, RECIPES[f"v2-{mode}"], seed)
        f = fit(xs, clips, every, cfg, mode)
        state = {"mean": f.mean, "scale": f.scale, "linear.weight": f.model.coef_}
        state |= {"linear.bias": f.model.intercept_}
        head.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
        info[mode] = {"config": cfg._asdict(), "inner_cv_macro_f1": f1}
    prior = vf.channel_prior(xs["clean"], column(clips, "speaker"))
    for buffer, value in zip((heads.prior_mean, heads.prior_var), prior, strict=True):
        buffer.copy_(torch.from_numpy(value))
    return heads.eval(), info
