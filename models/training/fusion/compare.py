"""The learned fusion against the fixed rule and the best single modality, on each of the
7 non-empty subsets of modalities, with paired-bootstrap differences; and the
cross-validated out-of-fold predictions that comparison uses on paired data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.fusion.learned import MODALITIES
from sentistream.models.training.fusion.fit import TrainConfig, fit_select, net_predictor
from sentistream.models.training.fusion.pairs import (
    SUBSETS,
    PairSet,
    Predictor,
    Progress,
    apply_subset,
    valid_subsets,
)
from sentistream.models.training.metrics import (
    accuracy,
    classification_summary,
    paired_bootstrap_diff,
    weighted_f1,
)


def compare_subsets(
    pairs: PairSet,
    rows: np.ndarray,
    learned: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]],
    fixed: Predictor,
    *,
    seed: int,
    n_boot: int = 1000,
) -> list[dict[str, Any]]:
    """The 7-subset table on ``rows``: learned (``learned(subset_index, rows)``), the fixed
    rule and the best single modality (the subset member with the best accuracy on these
    very rows: an optimistic baseline). Accuracy / F1 with 95 % CIs, ECE, and paired
    bootstrap differences learned - fixed and learned - best single."""
    table = []
    ok = valid_subsets(pairs.x)
    for s, subset in enumerate(SUBSETS):
        r = rows[ok[rows, s]]
        if len(r) == 0:
            continue
        y = pairs.y[r]
        xs = apply_subset(pairs.x[r], subset)
        preds = {"learned": learned(s, r), "fixed": fixed(xs)}
        singles = {}
        for m in subset:
            k = MODALITIES.index(m)
            singles[m] = (pairs.single_pred[r, k], pairs.x[r, k, 1])
        best_m = max(singles, key=lambda m: (accuracy(y, singles[m][0]), -MODALITIES.index(m)))
        preds["best_single"] = singles[best_m]
        row: dict[str, Any] = {
            "subset": "+".join(subset),
            "n": len(r),
            "class_counts": np.bincount(y, minlength=3).tolist(),
            "best_single_modality": best_m,
        }
        for name, (pred, conf) in preds.items():
            row[name] = classification_summary(y, pred, conf, 3, seed=seed, n_boot=n_boot)
        for other in ("fixed", "best_single"):
            for metric_name, fn in (("accuracy", accuracy), ("weighted_f1", weighted_f1)):
                row[f"learned_minus_{other}_{metric_name}"] = paired_bootstrap_diff(
                    fn, y, preds["learned"][0], preds[other][0], 3, seed=seed, n_boot=n_boot
                )
        table.append(row)
    return table


def verdict(table: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of subsets where learned fusion is better / worse than the fixed rule (95 %
    CI of the accuracy difference excludes 0), and the mean figures over subsets."""
    out: dict[str, Any] = {}
    for other in ("fixed", "best_single"):
        diffs = [r[f"learned_minus_{other}_accuracy"] for r in table]
        out[f"vs_{other}"] = {
            "better": [r["subset"] for r, d in zip(table, diffs, strict=True) if d["ci95"][0] > 0],
            "worse": [r["subset"] for r, d in zip(table, diffs, strict=True) if d["ci95"][1] < 0],
        }
    for name in ("learned", "fixed", "best_single"):
        out[f"mean_{name}"] = {
            k: round(float(np.mean([r[name][k] for r in table])), 4)
            for k in ("accuracy", "weighted_f1", "ece")
        }
    return out


def cross_validate(
    pairs: PairSet,
    hiddens: Sequence[int],
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Out-of-fold learned predictions over the folds in ``pairs.group``: for each fold,
    train on the others but the next one (dev). Returns pred, conf (7, N) and fold infos."""
    folds = sorted(set(pairs.group.tolist()))
    pred = np.full((len(SUBSETS), len(pairs.y)), -1, dtype=np.int64)
    conf = np.zeros((len(SUBSETS), len(pairs.y)), dtype=np.float32)
    infos = []
    for i, f in enumerate(folds):
        dev_f = folds[(i + 1) % len(folds)]
        test = np.flatnonzero(pairs.group == f)
        dev = np.flatnonzero(pairs.group == dev_f)
        train = np.flatnonzero((pairs.group != f) & (pairs.group != dev_f))
        net, info = fit_select(
            pairs,
            train,
            dev,
            hiddens,
            config,
            seed=seed,
            progress=progress,
            checkpoint_dir=checkpoint_dir,
            tag=f"cv-{f}",
        )
        predict = net_predictor(net)
        for s, subset in enumerate(SUBSETS):
            pred[s, test], conf[s, test] = predict(apply_subset(pairs.x[test], subset))
        infos.append({"test": f, "dev": dev_f, **info})
    return pred, conf, infos
