"""Fusion examples: the records (per-modality held-out scores, pair sets), pairing of
separately scored items into folds, the user's score table, and the subsets of modalities.

Pure numpy functions (``read_score_table`` reads a file): no models, no training.
:mod:`sentistream.models.training.fusion.train` describes the whole procedure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import NamedTuple

import numpy as np

from sentistream.models.fusion.learned import MODALITIES
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.examples import read_table_rows
from sentistream.models.training.splits import group_folds

SUBSETS: tuple[tuple[str, ...], ...] = tuple(
    s for k in range(1, len(MODALITIES) + 1) for s in combinations(MODALITIES, k)
)
SUBSET_MASKS = np.array([[m in s for m in MODALITIES] for s in SUBSETS])  # (7, 3) bool

Progress = Callable[[str], None]
#: (N, 3, 3) inputs (absent modalities zeroed) -> (N,) class index (-1: no answer), (N,) conf.
Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class ModalityScores(NamedTuple):
    """Held-out scores of one component model on real labelled items (arrays are (N,))."""

    modality: str
    items: np.ndarray  # str: path or text
    y: np.ndarray  # int, index into LABELS
    groups: np.ndarray  # str: subject / speaker / dialogue
    valence: np.ndarray
    confidence: np.ndarray
    probs: np.ndarray  # (N, 3) negative / neutral / positive
    model_id: str
    how: str


class PairSet(NamedTuple):
    """Examples for fusion: ``x`` (N, 3, 3) (valence, confidence, available) per modality,
        ``single_pred`` (N, 3) each modality's own class (-1: unavailable), ``y`` (N,),
        ``group`` (N,) fold or group id, ``split`` (N,) ``train``/``dev``/``test``/``""``;
    ``components``: the component model id of each modality, where known."""

    x: np.ndarray
    single_pred: np.ndarray
    y: np.ndarray
    group: np.ndarray
    split: np.ndarray
    components: dict[str, str] | None = None  # modality -> the model_id that scored it


def say(progress: Progress | None, message: str) -> None:
    """``progress(message)`` when there is a progress callback."""
    if progress is not None:
        progress(message)


# --------------------------------------------------------------------------- pairs


def make_pairs(
    scores: Mapping[str, ModalityScores], *, n_folds: int, per_class: int, seed: int
) -> PairSet:
    """``per_class`` pairs per fold and class; each part is drawn from its modality's items
    of that class and fold (cycling through a seeded permutation, so all are used)."""
    rng = np.random.default_rng(seed)
    folds = {m: group_folds(s.groups, n_folds, seed + k) for k, (m, s) in enumerate(scores.items())}
    x, single, ys, fold_ids = [], [], [], []
    for f in range(n_folds):
        for k in range(len(LABELS)):
            xb = np.zeros((per_class, len(MODALITIES), 3), dtype=np.float32)
            sb = np.full((per_class, len(MODALITIES)), -1, dtype=np.int64)
            for m, name in enumerate(MODALITIES):
                s = scores.get(name)
                pool = (
                    np.array([], dtype=np.int64)
                    if s is None
                    else (np.flatnonzero((folds[name] == f) & (s.y == k)))
                )
                if s is None or len(pool) == 0:
                    continue
                pick = np.resize(rng.permutation(pool), per_class)
                xb[:, m] = np.stack([s.valence[pick], s.confidence[pick], np.ones(per_class)], 1)
                sb[:, m] = s.probs[pick].argmax(axis=1)
            if (sb >= 0).any():
                x.append(xb)
                single.append(sb)
                ys.append(np.full(per_class, k))
                fold_ids.append(np.full(per_class, f"fold{f}"))
    return PairSet(
        np.concatenate(x),
        np.concatenate(single),
        np.concatenate(ys),
        np.concatenate(fold_ids),
        np.full(sum(map(len, ys)), ""),
        {name: s.model_id for name, s in scores.items()},
    )


def read_score_table(path: Path, neutral_band: float = 0.2) -> PairSet:
    """A table of per-modality scores with labels (CSV, JSONL or Parquet): ``label``,
    optional ``group`` and ``split``, and per modality ``<m>_valence``, ``<m>_confidence``,
    optional ``<m>_present`` and ``<m>_label`` (the modality's own class; default: its
    valence against ``neutral_band``), optional ``<m>_model_id`` (the component model that
    scored it; one id per modality). The pipeline's output columns fit as they are."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        rows = [
            {k: "" if v is None else str(v) for k, v in r.items()}
            for r in pq.read_table(path).to_pylist()
        ]
    else:
        rows = read_table_rows(path)
    n = len(rows)
    x = np.zeros((n, len(MODALITIES), 3), dtype=np.float32)
    single = np.full((n, len(MODALITIES)), -1, dtype=np.int64)
    y, group, split = np.zeros(n, dtype=np.int64), [], []
    ids: dict[str, set[str]] = {m: set() for m in MODALITIES}
    for i, r in enumerate(rows):
        label = r.get("label", "").strip().lower()
        if label not in LABELS:
            raise ValueError(f"{path} row {i + 1}: label must be one of {LABELS}, got {label!r}")
        y[i] = LABELS.index(label)
        group.append(r.get("group", "").strip() or f"row-{i + 1}")
        split.append(r.get("split", "").strip().lower())
        for m, name in enumerate(MODALITIES):
            v, c = r.get(f"{name}_valence", "").strip(), r.get(f"{name}_confidence", "").strip()
            flag = r.get(f"{name}_present", "true").strip().lower()
            if not v or not c or flag in ("false", "0", "no"):
                continue
            x[i, m] = (np.clip(float(v), -1, 1), np.clip(float(c), 0, 1), 1.0)
            if r.get(f"{name}_model_id", "").strip():
                ids[name].add(r[f"{name}_model_id"].strip())
            own = r.get(f"{name}_label", "").strip().lower()
            band = 2 if float(v) > neutral_band else 0 if float(v) < -neutral_band else 1
            single[i, m] = LABELS.index(own) if own in LABELS else band
    mixed = {m: sorted(v) for m, v in ids.items() if len(v) > 1}
    if mixed:
        raise ValueError(f"{path}: rows scored by several models of one modality: {mixed}")
    components = {m: v.pop() for m, v in ids.items() if v}
    return PairSet(x, single, y, np.array(group), np.array(split), components)


def split_rows(pairs: PairSet, dev_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """train / dev / test row indices from ``pairs.split``; a missing dev side is taken off
    train by group (about ``dev_fraction`` of its groups)."""
    if np.isin(pairs.split, ["", "train", "dev", "test"], invert=True).any():
        raise ValueError("split must be train, dev, test or empty")
    sides = {s: np.flatnonzero(pairs.split == s) for s in ("dev", "test")}
    train = np.flatnonzero(np.isin(pairs.split, ["", "train"]))
    if len(sides["dev"]) == 0:
        n = max(2, round(1 / dev_fraction))
        held = group_folds(pairs.group[train], n, seed) == 0
        sides["dev"], train = train[held], train[~held]
    for name, idx in (("train", train), ("dev", sides["dev"])):
        if len(idx) == 0:
            raise ValueError(f"the {name} side is empty: give more groups or a split column")
    return {"train": train, **sides}


# ------------------------------------------------------------------------- subsets


def apply_subset(x: np.ndarray, subset: Sequence[str]) -> np.ndarray:
    """(N, 3, 3) inputs with every modality outside ``subset`` zeroed (absent)."""
    keep = np.array([m in subset for m in MODALITIES], dtype=np.float32)
    return x * keep[None, :, None]


def valid_subsets(x: np.ndarray) -> np.ndarray:
    """(N, 7) bool: which of ``SUBSETS`` each row has all modalities of."""
    avail = x[:, :, 2] > 0.5
    return np.asarray((~SUBSET_MASKS[None] | avail[:, None]).all(axis=-1))


def expand_subsets(
    x: np.ndarray, y: np.ndarray, *, with_subsets: bool = False
) -> tuple[np.ndarray, ...]:
    """Every row under every subset it supports: (M, 3, 3) inputs, (M,) labels (and,
    ``with_subsets``, (M,) subset indices)."""
    rows, subs = np.nonzero(valid_subsets(x))
    out = (x[rows] * SUBSET_MASKS[subs][:, :, None], y[rows])
    return (*out, subs) if with_subsets else out
