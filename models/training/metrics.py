"""Does a confidence mean what it says? ECE, reliability bins, temperature scaling, and the
classification figures (with bootstrap intervals) every report uses.

Pure numpy / torch functions: no I/O, no models.

* ``expected_calibration_error(confidence, correct)``: sum over equal-width confidence bins
  of (share of items in the bin) * |accuracy - mean confidence| (10 bins by default).
* ``reliability_bins``: the per-bin figures behind it, for a reliability table.
* ``fit_temperature(logits, y)``: the ``T`` minimising the NLL of ``softmax(logits / T)``
  on a dev side (Guo et al. 2017); it changes confidences, never the argmax.
* ``classification_summary(y, pred, confidence)``: accuracy, macro / weighted F1 with
  percentile-bootstrap 95 % intervals (resampling items, or whole groups when given), ECE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch


class ReliabilityBin(NamedTuple):
    """One confidence bin ``[lo, hi)`` (the last bin includes 1.0)."""

    lo: float
    hi: float
    n: int
    mean_confidence: float
    accuracy: float


def _check(confidence: np.ndarray, correct: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if conf.ndim != 1 or conf.shape != ok.shape:
        raise ValueError(f"confidence {conf.shape} and correct {ok.shape} must both be (N,)")
    if len(conf) == 0:
        raise ValueError("confidence is empty")
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if np.any((conf < 0) | (conf > 1)) or not np.all(np.isfinite(conf)):
        raise ValueError("confidence must lie in [0, 1]")
    return conf, ok


def reliability_bins(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1] of (N,) confidences and (N,) bool correctness."""
    conf, ok = _check(confidence, correct, n_bins)
    which = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    out = []
    for b in range(n_bins):
        sel = which == b
        n = int(sel.sum())
        out.append(
            ReliabilityBin(
                lo=b / n_bins,
                hi=(b + 1) / n_bins,
                n=n,
                mean_confidence=float(conf[sel].mean()) if n else 0.0,
                accuracy=float(ok[sel].mean()) if n else 0.0,
            )
        )
    return out


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10
) -> float:
    """ECE in [0, 1]: sum_b (n_b / N) |accuracy_b - mean confidence_b| (equal-width bins)."""
    bins = reliability_bins(confidence, correct, n_bins)
    total = sum(b.n for b in bins)
    return float(sum(b.n / total * abs(b.accuracy - b.mean_confidence) for b in bins))


def softmax_t(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """(N, K) logits -> (N, K) ``softmax(logits / temperature)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(
    logits: np.ndarray, y: np.ndarray, *, bounds: tuple[float, float] = (0.05, 20.0)
) -> float:
    """Temperature minimising the mean NLL of ``softmax(logits / T)`` for labels ``y``.

    Args:
        logits: (N, K) pre-softmax scores (log-probabilities work too).
        y: (N,) int class indices.
        bounds: T is clipped to this range.
    """
    x = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    t = torch.as_tensor(np.asarray(y, dtype=np.int64))
    if x.ndim != 2 or t.shape != (x.shape[0],) or len(t) == 0:
        raise ValueError(f"logits (N, K) and y (N,) needed, got {tuple(x.shape)}, {tuple(t.shape)}")
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optim = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(x / log_t.exp(), t)
        loss.backward()
        return loss

    optim.step(closure)
    return float(np.clip(float(log_t.detach().exp()), *bounds))


# ------------------------------------------------------------ classification figures


def per_class_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K,) F1 of each class (0 where a class is neither true nor predicted).

    ``pred`` may hold -1 (no answer): it counts as wrong for every class.
    """
    f1 = np.zeros(n_classes)
    for k in range(n_classes):
        tp = np.sum((pred == k) & (y == k))
        denom = np.sum(pred == k) + np.sum(y == k)
        f1[k] = 2 * tp / denom if denom else 0.0
    return f1


def macro_f1(y: np.ndarray, pred: np.ndarray, n_classes: int, *, over: str = "true") -> float:
    """Unweighted mean F1 over the classes present in ``y`` (``over="true"``) or in ``y``
    or ``pred`` (``over="either"``: a predicted class that never occurs counts as 0)."""
    if over not in ("true", "either"):
        raise ValueError(f"over must be 'true' or 'either', got {over!r}")
    present = np.unique(y) if over == "true" else np.union1d(y, pred[pred >= 0])
    return float(per_class_f1(y, pred, n_classes)[present.astype(int)].mean())


def confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> list[list[int]]:
    """(K, K) counts as nested lists: rows = true class, columns = predicted class."""
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(out, (np.asarray(y), np.asarray(pred)), 1)
    return out.tolist()


def accuracy_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> dict[str, float]:
    """``accuracy`` and ``macro_f1`` over the classes present in either array."""
    y, pred = np.asarray(y), np.asarray(pred)
    return {
        "accuracy": accuracy(y, pred),
        "macro_f1": macro_f1(y, pred, n_classes, over="either"),
    }


def weighted_f1(y: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Support-weighted mean F1 (scikit-learn's ``average="weighted"``)."""
    support = np.bincount(y, minlength=n_classes)
    return float(np.sum(per_class_f1(y, pred, n_classes) * support) / len(y))


def accuracy(y: np.ndarray, pred: np.ndarray, n_classes: int = 0) -> float:
    return float(np.mean(y == pred))


Metric = Callable[[np.ndarray, np.ndarray, int], float]


def bootstrap_ci(
    metric: Metric,
    y: np.ndarray,
    pred: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    n_boot: int = 1000,
    groups: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile 95 % interval of ``metric`` over ``n_boot`` resamples, of items or (when
    ``groups`` is given) of whole groups, so that correlated items move together."""
    rng = np.random.default_rng(seed)
    if groups is None:
        draws = [rng.integers(0, len(y), len(y)) for _ in range(n_boot)]
    else:
        uniq, inverse = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inverse == g) for g in range(len(uniq))]
        draws = [
            np.concatenate([members[g] for g in rng.integers(0, len(uniq), len(uniq))])
            for _ in range(n_boot)
        ]
    values = np.array([metric(y[i], pred[i], n_classes) for i in draws])
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def paired_bootstrap_diff(
    metric: Metric,
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    n_classes: int,
    *,
    seed: int,
    n_boot: int = 1000,
) -> dict[str, float | list[float]]:
    """``metric(a) - metric(b)`` on the same items, with a percentile 95 % interval from
    resampling the items (both predictions move together)."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        diffs.append(metric(y[i], pred_a[i], n_classes) - metric(y[i], pred_b[i], n_classes))
    point = metric(y, pred_a, n_classes) - metric(y, pred_b, n_classes)
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"diff": round(float(point), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}


def classification_summary(
    y: np.ndarray,
    pred: np.ndarray,
    confidence: np.ndarray,
    n_classes: int,
    *,
    seed: int = 0,
    n_boot: int = 1000,
    groups: np.ndarray | None = None,
) -> dict[str, object]:
    """Accuracy, macro / weighted F1 (each with a bootstrap 95 % CI) and ECE (10 bins) of
    (N,) predictions (-1 = no answer, counted wrong) with their (N,) confidences."""
    y, pred = np.asarray(y), np.asarray(pred)
    out: dict[str, object] = {"n": len(y)}
    for name, fn in (("accuracy", accuracy), ("macro_f1", macro_f1), ("weighted_f1", weighted_f1)):
        out[name] = round(fn(y, pred, n_classes), 4)
        lo, hi = bootstrap_ci(fn, y, pred, n_classes, seed=seed, n_boot=n_boot, groups=groups)
        out[f"{name}_ci95"] = [round(lo, 4), round(hi, 4)]
    out["ece"] = round(expected_calibration_error(confidence, pred == y), 4)
    out["mean_confidence"] = round(float(np.mean(confidence)), 4)
    out["per_class_f1"] = [round(float(v), 4) for v in per_class_f1(y, pred, n_classes)]
    return out
