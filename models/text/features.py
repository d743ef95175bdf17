"""The text model's pure input side: text normalisation and validation, VADER lexicon
scores, surface cues, and the assembly of feature groups into the head's input.

No model, no I/O (VADER's lexicon loads once, on first use).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

VADER_DIM = 4  # neg, neu, pos, compound
SURFACE_DIM = 5  # log1p counts: "!", "?", words, all-caps words, "..."
FEATURES_KNOWN = ("minilm", "vader", "surface")
VADER_NEUTRAL_BAND = 0.05  # |compound| < 0.05 is neutral (Hutto & Gilbert 2014)

_TRANSLATE = str.maketrans(
    {"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2014": "-", "\u2013": "-"}
)


def normalize_text(text: str) -> str:
    """Typographic quotes and dashes to ASCII, ``…`` to ``...``, whitespace collapsed."""
    return " ".join(text.translate(_TRANSLATE).replace("\u2026", "...").split())


def check_texts(texts: Sequence[str]) -> list[str]:
    """Validate and normalise texts; raises ValueError naming the first bad one."""
    if isinstance(texts, str):
        raise ValueError(f"texts must be a list of strings, got a single str {texts[:40]!r}")
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValueError(f"texts[{i}] must be str, got {type(text).__name__}")
        if not text.strip():
            raise ValueError(f"texts[{i}] is empty or whitespace ({text!r})")
        out.append(normalize_text(text))
    return out


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: Sequence[str]) -> np.ndarray:
    """VADER ``neg, neu, pos, compound`` scores, shape (N, 4) float32 (N may be 0)."""
    analyzer = _vader()
    rows = [analyzer.polarity_scores(normalize_text(t)) for t in texts]
    out = [[r["neg"], r["neu"], r["pos"], r["compound"]] for r in rows]
    return np.asarray(out, dtype=np.float32).reshape(len(rows), VADER_DIM)


def vader_valence(texts: Sequence[str]) -> np.ndarray:
    """VADER compound score per text, shape (N,) float32 in [-1, 1]: the fallback rule."""
    return vader_scores(texts)[:, 3]


def surface_features(texts: Sequence[str]) -> np.ndarray:
    """Punctuation and shape cues, shape (N, 5) float32: log1p of the counts of ``!``,
    ``?``, words, all-caps words (2+ letters) and ``...`` in the normalised text."""
    rows = []
    for text in texts:
        t = normalize_text(text)
        words = t.split()
        caps = sum(1 for w in words if len(w) > 1 and w.isupper())
        rows.append([t.count("!"), t.count("?"), len(words), caps, t.count("...")])
    return np.log1p(np.asarray(rows, dtype=np.float32).reshape(len(rows), SURFACE_DIM))


def vader_labels(texts: Sequence[str], band: float = VADER_NEUTRAL_BAND) -> np.ndarray:
    """VADER rule as a classifier: index into :data:`LABELS`, shape (N,) int64."""
    compound = vader_valence(texts)
    return np.where(compound >= band, 2, np.where(compound <= -band, 0, 1)).astype(np.int64)


def feature_dims(embedding_dim: int) -> dict[str, int]:
    """Width of each feature group."""
    return {"minilm": embedding_dim, "vader": VADER_DIM, "surface": SURFACE_DIM}


def assemble_features(features: Sequence[str], groups: Mapping[str, np.ndarray]) -> np.ndarray:
    """Concatenate feature groups (each (N, d_i)) in ``features`` order -> (N, sum d_i)."""
    missing = [name for name in features if name not in groups]
    if missing:
        raise ValueError(f"feature groups {missing} requested but not computed")
    return np.concatenate([groups[name] for name in features], axis=1).astype(np.float32)
