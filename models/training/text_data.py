"""Text training data: MELD and TweetEval readers, the dialogue split, cached features.

Used by :mod:`sentistream.models.training.text_train` (and the fusion's held-out text scores).
Embeddings are cached on disk by content hash, never in the repository.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from sentistream.models.text.model import (
    LABELS,
    load_minilm_encoder,
    normalize_text,
    surface_features,
    vader_scores,
)


class Corpus(NamedTuple):
    """Texts with labels (index into LABELS) and a group id (dialogue) per text."""

    texts: list[str]
    y: np.ndarray  # (N,) int64
    groups: np.ndarray  # (N,) int64; -1 where there is no dialogue


def load_meld(path: Path) -> Corpus:
    """A MELD ``*_sent_emo.csv``: Utterance, Sentiment, Dialogue_ID."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    texts = [normalize_text(r["Utterance"]) for r in rows]
    y = np.array([LABELS.index(r["Sentiment"]) for r in rows], dtype=np.int64)
    groups = np.array([int(r["Dialogue_ID"]) for r in rows], dtype=np.int64)
    return Corpus(texts, y, groups)


def load_tweeteval(folder: Path) -> Corpus:
    """TweetEval sentiment validation: val_text.txt / val_labels.txt (0 neg, 1 neu, 2 pos)."""
    mapping = dict(line.split("\t") for line in (folder / "mapping.txt").read_text().splitlines())
    if [mapping[str(i)].strip() for i in range(3)] != list(LABELS):
        raise ValueError(f"unexpected TweetEval mapping {mapping}")
    texts = (folder / "val_text.txt").read_text(encoding="utf-8").splitlines()
    labels = (folder / "val_labels.txt").read_text(encoding="utf-8").split()
    if len(texts) != len(labels):
        raise ValueError(f"TweetEval: {len(texts)} texts but {len(labels)} labels")
    y = np.array([int(v) for v in labels], dtype=np.int64)
    return Corpus([normalize_text(t) for t in texts], y, np.full(len(y), -1, dtype=np.int64))


def split_by_dialogue(groups: np.ndarray, dev_fraction: float, seed: int) -> np.ndarray:
    """Boolean dev mask (N,) holding out whole dialogues, seeded."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    unique = np.unique(groups)
    rng = np.random.default_rng(seed)
    held = rng.choice(unique, size=max(1, round(len(unique) * dev_fraction)), replace=False)
    return np.isin(groups, held)


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
