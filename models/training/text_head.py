"""The text recipe's first stage and its data: MELD / TweetEval as arrays, cached sentence
features, and a head (standardiser -> linear or MLP -> temperature) trained on them.

:func:`train_head` on frozen MiniLM + VADER features is the recipe's linear probe
(:mod:`sentistream.models.training.text` fine-tunes from it) and the whole of ``train
text`` on the user's own data; :func:`evaluate` gives the MELD dev figures of a bundle.
Embeddings are cached on disk by content hash, never in the repository.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.text.features import (
    normalize_text,
    surface_features,
    vader_labels,
    vader_scores,
)
from sentistream.models.text.model import TextHead, TextSentimentModel, load_minilm_encoder
from sentistream.models.training import corpora, metrics
from sentistream.models.training.examples import Example

EMBEDDING_DIM = 384
SEED, DEV_FRACTION = 13, 0.2  # the recipe's internal dev: whole MELD train dialogues


class Corpus(NamedTuple):
    """Normalised texts with labels (index into LABELS) and a group id (dialogue) per text."""

    texts: list[str]
    y: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) int64 dialogue id; -1 where there is no dialogue


def corpus_of(examples: Sequence[Example]) -> Corpus:
    """Examples of ``read_meld`` / ``read_tweeteval`` -> a :class:`Corpus` (MELD's dialogue
    id from the group ``meld-<split>-<id>``)."""
    texts = [normalize_text(e.path_or_text) for e in examples]
    y = np.array([LABELS.index(e.label) for e in examples], dtype=np.int64)
    dialogue = [int(e.group.rsplit("-", 1)[1]) if e.corpus == "meld" else -1 for e in examples]
    return Corpus(texts, y, np.array(dialogue, dtype=np.int64))


def load_meld(path: Path) -> Corpus:
    """A MELD ``*_sent_emo.csv``."""
    return corpus_of(corpora.read_meld(path))


def load_tweeteval(folder: Path) -> Corpus:
    """The TweetEval sentiment split(s) in ``folder`` (the shared data has validation)."""
    return corpus_of(corpora.read_tweeteval(folder))


def load_sst2(folder: Path, split: str) -> Corpus:
    """One split of SST-2 (``read_sst2``): binary phrases labelled negative / positive."""
    return corpus_of([e for e in corpora.read_sst2(folder) if e.split == split])


def cached_features(texts: list[str], cache: Path, encoder_factory: Any) -> dict[str, np.ndarray]:
    """MiniLM embeddings (cached on disk by content hash) and VADER scores for texts."""
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:16]
    path = cache / f"minilm-{digest}.npy"
    if path.is_file():
        emb = np.load(path)
    else:
        emb = encoder_factory()(texts)
        cache.mkdir(parents=True, exist_ok=True)
        np.save(path, emb)
    return {"minilm": emb, "vader": vader_scores(texts), "surface": surface_features(texts)}


def lazy_encoder() -> Callable[[], Any]:
    """A factory for ``cached_features``: loads the MiniLM encoder on its first call (only
    when some embedding is not cached yet) and returns that same encoder afterwards."""
    encoders: list[Any] = []

    def encoder() -> Any:
        if not encoders:
            encoders.append(load_minilm_encoder())
        return encoders[0]

    return encoder


class Config(NamedTuple):
    features: tuple[str, ...]
    hidden: int
    weight_decay: float
    class_weight: str  # "none" | "balanced" | "sqrt"


def grid(hidden_sizes: Sequence[int]) -> list[Config]:
    """The head grid of ``train text`` on the user's data."""
    feats = [("minilm", "vader"), ("minilm", "vader", "surface")]
    modes = ["none", "sqrt", "balanced"]
    return [Config(f, h, 1e-2, m) for f, h, m in itertools.product(feats, hidden_sizes, modes)]


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    """(C,) weights: ``none`` ones, ``balanced`` N/(C*count), ``sqrt`` its square root."""
    counts = np.bincount(y, minlength=len(LABELS)).astype(np.float64)
    balanced = len(y) / (len(LABELS) * np.maximum(counts, 1.0))
    if mode == "none":
        return np.ones(len(LABELS))
    if mode == "balanced":
        return balanced
    if mode == "sqrt":
        return np.sqrt(balanced)
    raise ValueError(f"class_weight must be none|balanced|sqrt, got {mode!r}")


def weighted_f1(y: np.ndarray, pred: np.ndarray) -> float:
    return metrics.weighted_f1(y, pred, len(LABELS))


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    config: Config,
    *,
    seed: int,
    max_epochs: int = 60,
    patience: int = 8,
) -> tuple[TextHead, float, int]:
    """Minibatch AdamW (lr 1e-3, batch 128) with early stopping on dev weighted F1.

    Returns the best head (temperature 1), its dev weighted F1 and its epoch.
    """
    torch.manual_seed(seed)
    head = TextHead(
        in_dim=x.shape[1],
        num_classes=len(LABELS),
        hidden=config.hidden,
        dropout=0.3 if config.hidden else 0.0,
    )
    head.mean.copy_(torch.from_numpy(x.mean(axis=0)))
    head.scale.copy_(torch.from_numpy(np.maximum(x.std(axis=0), 1e-6)))
    weight = torch.tensor(class_weights(y, config.class_weight), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optim = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=config.weight_decay)
    xt, yt, xd = torch.from_numpy(x), torch.from_numpy(y), torch.from_numpy(x_dev)
    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, 0, {k: v.clone() for k, v in head.state_dict().items()})
    for epoch in range(1, max_epochs + 1):
        head.train()
        for idx in torch.randperm(len(yt), generator=gen).split(128):
            optim.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            optim.step()
        head.eval()
        with torch.no_grad():
            score = weighted_f1(y_dev, head(xd).argmax(dim=1).numpy())
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= patience:
            break
    head.load_state_dict(best[2], strict=True)
    return head.eval(), best[0], best[1]


def fit_head_temperature(head: TextHead, x_dev: np.ndarray, y_dev: np.ndarray) -> float:
    """Set ``head.temperature`` by :func:`metrics.fit_temperature` on dev; returns it."""
    with torch.no_grad():
        logits = head.raw_logits(torch.from_numpy(x_dev)).numpy()
    temperature = metrics.fit_temperature(logits, y_dev)
    head.temperature.fill_(temperature)
    return temperature


def classification_report(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    f1 = metrics.per_class_f1(y, pred, len(LABELS))
    return {
        "n": len(y),
        "weighted_f1": weighted_f1(y, pred),
        "macro_f1": float(f1.mean()),
        "accuracy": metrics.accuracy(y, pred),
        "per_class_f1": {label: float(v) for label, v in zip(LABELS, f1, strict=True)},
        "confusion_rows_true_cols_pred": metrics.confusion(y, pred, len(LABELS)),
    }


def _ece(probs: np.ndarray, y: np.ndarray) -> float:
    return metrics.expected_calibration_error(probs.max(axis=1), probs.argmax(axis=1) == y)


def evaluate(model: TextSentimentModel, corpus: Corpus, *, seed: int) -> dict[str, Any]:
    """Metrics of a loaded model on a corpus, with the VADER rule as baseline."""
    x = torch.from_numpy(model.features(corpus.texts))
    with torch.inference_mode():
        raw = model.head.raw_logits(x)
        probs = torch.softmax(raw / model.head.temperature, dim=-1).numpy()
        probs_t1 = torch.softmax(raw, dim=-1).numpy()
    if not np.allclose(probs[:64], model.predict_proba(corpus.texts[:64]), atol=1e-5):
        raise RuntimeError("evaluation path disagrees with predict_proba()")
    pred = probs.argmax(axis=1)
    start = time.perf_counter()
    model.predict(corpus.texts[:256])
    ms = 1000 * (time.perf_counter() - start) / len(corpus.texts[:256])
    ci = metrics.bootstrap_ci(metrics.weighted_f1, corpus.y, pred, len(LABELS), seed=seed)
    return {
        "meld_dev": {
            **classification_report(corpus.y, pred),
            "weighted_f1_ci95": ci,
            "ece_10_bins": _ece(probs, corpus.y),
            "ece_10_bins_before_temperature": _ece(probs_t1, corpus.y),
        },
        "meld_dev_vader_baseline": classification_report(corpus.y, vader_labels(corpus.texts)),
        "ms_per_sentence_batched_cpu_1thread": ms,
    }
