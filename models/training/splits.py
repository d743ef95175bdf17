"""Leak-free splits: whole groups (speaker, subject, dialogue, call) go to one side.

* :func:`held_out_groups`: the one seeded draw of dev groups every splitter uses.
* :func:`group_split` / :func:`assign_splits`: train / dev (/ test) lists of ``Example``.
* :func:`dev_mask`: the same draw as a boolean mask over (N,) group ids (the text recipe's
  dev dialogues of MELD train).
* :func:`group_folds`: k folds of whole groups (cross-validation, fusion pairs).
* :data:`DEV_VOICE_GROUPS` / :func:`is_dev_voice`: the speakers the pipeline dev set
  (``sentistream evaluate devset``) takes its voices from; no voice model trains on them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sentistream.models.training.examples import SPLITS, Example

# The pipeline dev set's voices (``<corpus>:<speaker number>``): RAVDESS actors 21-22 and
# Emo-DB speakers 15-16. Voice training and the fusion's voice scores leave them out.
DEV_VOICE_GROUPS: tuple[str, ...] = ("ravdess:21", "ravdess:22", "emodb:15", "emodb:16")


def is_dev_voice(group: str) -> bool:
    """Whether a speaker group (``ravdess-21`` as the corpus readers write it, or
    ``ravdess:21``) is one of :data:`DEV_VOICE_GROUPS`."""
    corpus, _, speaker = group.replace(":", "-").partition("-")
    key = f"{corpus}:{int(speaker)}" if speaker.isdigit() else f"{corpus}:{speaker}"
    return key in DEV_VOICE_GROUPS


def held_out_groups(groups: Sequence | np.ndarray, dev_fraction: float, seed: int) -> set:
    """``max(1, round(dev_fraction * n))`` of the ``n`` distinct groups (sorted), drawn
    without replacement by a generator seeded with ``seed``; at least one group is left."""
    if not 0.0 < dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction!r}")
    unique = np.unique(np.asarray(groups))
    if len(unique) < 2:
        raise ValueError(f"examples must span at least 2 groups to split, got {unique.tolist()}")
    n_dev = min(len(unique) - 1, max(1, round(len(unique) * dev_fraction)))
    rng = np.random.default_rng(seed)
    return set(rng.choice(unique, size=n_dev, replace=False).tolist())


def dev_mask(groups: np.ndarray, dev_fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: the items whose group :func:`held_out_groups` holds out."""
    held = held_out_groups(groups, dev_fraction, seed)
    return np.isin(groups, list(held))


def group_split(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """Split by group (:func:`held_out_groups`). Returns (train, dev) with ``split`` set;
    the order within each side is the input order."""
    dev_groups = held_out_groups([e.group for e in examples], dev_fraction, seed)
    train = [e._replace(split="train") for e in examples if e.group not in dev_groups]
    dev = [e._replace(split="dev") for e in examples if e.group in dev_groups]
    return train, dev


def assign_splits(
    examples: Sequence[Example], dev_fraction: float, seed: int
) -> dict[str, list[Example]]:
    """``{"train", "dev", "test"}`` lists: the data's own splits where it has them; a dev
    side missing from the data is split off ``train`` (or off the unsplit items) by group.

    Raises ValueError when a group appears in two of the data's own splits.
    """
    sides: dict[str, list[Example]] = {s: [] for s in SPLITS}
    for e in examples:
        sides[e.split or "train"].append(e._replace(split=e.split or "train"))
    seen: dict[str, str] = {}
    for side, items in sides.items():
        for e in items:
            if seen.setdefault(e.group, side) != side:
                raise ValueError(f"group {e.group!r} is in both {seen[e.group]!r} and {side!r}")
    if not sides["dev"] and sides["train"]:
        sides["train"], sides["dev"] = group_split(sides["train"], dev_fraction, seed)
    return sides


def group_folds(groups: Sequence[str] | np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """(N,) fold index per item: the groups, shuffled (seeded), dealt round-robin."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    uniq = sorted(set(np.asarray(groups).tolist()))
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_by_group = {uniq[j]: i % n_folds for i, j in enumerate(order)}
    return np.array([fold_by_group[g] for g in np.asarray(groups).tolist()], dtype=np.int64)
