"""Score rows of a labelled run -> per-condition accuracy, macro-F1 and ECE (pure).

A clip's answer is read from its rows the way an analyst would read them: every row of the
clip votes for its label with weight ``duration x confidence``; the clip's label is the
heaviest, its confidence the duration-weighted mean confidence of the rows that voted for
it. The same is done per modality from the modality's own valence and confidence (label
``neutral`` when ``|valence| < NEUTRAL_BAND``, the fusion's own band). A clip with no row
(a dead letter) or no score for a modality counts as not answered: wrong, and outside the
modality's coverage.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sentistream.models.training.metrics import classification_summary
from sentistream.transforms.config import FusionConfig

LABELS = ("negative", "neutral", "positive")
SOURCES = ("fused", "face", "voice", "text")
NEUTRAL_BAND = FusionConfig().neutral_band


@dataclass(frozen=True)
class Answer:
    """One clip's answer from one source: label index (-1: none) and its confidence."""

    label: int
    confidence: float


def label_of(valence: float, band: float = NEUTRAL_BAND) -> int:
    if abs(valence) < band:
        return LABELS.index("neutral")
    return LABELS.index("positive" if valence > 0 else "negative")


def clip_answer(rows: Sequence[Mapping[str, Any]], source: str) -> Answer:
    """The duration x confidence weighted vote of a clip's ``rows`` for ``source``."""
    weight: dict[int, float] = defaultdict(float)
    conf: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for row in rows:
        duration = max(float(row["end_s"]) - float(row["start_s"]), 1e-3)
        if source == "fused":
            if row["fused_label"] not in LABELS:
                continue
            label, c = LABELS.index(row["fused_label"]), float(row["fused_confidence"] or 0.0)
        else:
            if not row[f"{source}_present"]:
                continue
            label = label_of(float(row[f"{source}_valence"]))
            c = float(row[f"{source}_confidence"] or 0.0)
        weight[label] += duration * max(c, 1e-6)
        conf[label].append((duration, c))
    if not weight:
        return Answer(-1, 0.0)
    best = max(weight, key=weight.__getitem__)
    durations, confidences = np.array(conf[best]).T
    return Answer(best, float(np.average(confidences, weights=durations)))


def evaluate_rows(
    clips: Sequence[Mapping[str, Any]],
    rows_by_clip: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Per condition and source: accuracy, macro-F1, ECE (with CIs) and coverage.

    ``clips``: manifest rows (``video_id``, ``label``, ``group``, ``condition``);
    ``rows_by_clip``: the score rows of each ``video_id``.
    """
    report: dict[str, Any] = {"labels": list(LABELS), "neutral_band": NEUTRAL_BAND}
    by_condition: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for clip in clips:
        by_condition[clip.get("condition") or "all"].append(clip)
    conditions = {}
    for condition, items in sorted(by_condition.items()):
        conditions[condition] = _condition(items, rows_by_clip, seed=seed, n_boot=n_boot)
    report["conditions"] = conditions
    report["verdict"] = verdict(conditions)
    return report


def _condition(items, rows_by_clip, *, seed: int, n_boot: int) -> dict[str, Any]:
    y = np.array([LABELS.index(c["label"]) for c in items])
    groups = np.array([str(c.get("group", "")) for c in items])
    out: dict[str, Any] = {
        "n_clips": len(items),
        "majority_accuracy": round(float(np.bincount(y, minlength=3).max() / len(y)), 4),
    }
    for source in SOURCES:
        answers = [clip_answer(rows_by_clip.get(c["video_id"], ()), source) for c in items]
        pred = np.array([a.label for a in answers])
        conf = np.array([a.confidence for a in answers])
        summary = classification_summary(y, pred, conf, 3, seed=seed, n_boot=n_boot, groups=groups)
        summary["coverage"] = round(float(np.mean(pred >= 0)), 4)
        out[source] = summary
    return out


def verdict(conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Where fusion is below its best single present modality (the target is nowhere)."""
    below = {}
    for name, cond in conditions.items():
        singles = {s: cond[s]["accuracy"] for s in SOURCES[1:] if cond[s]["coverage"] > 0}
        if not singles:
            continue
        best = max(singles, key=singles.__getitem__)
        if cond["fused"]["accuracy"] < singles[best]:
            below[name] = {"fused": cond["fused"]["accuracy"], best: singles[best]}
    return {"fusion_below_best_single": below}


def markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown tables, one row per condition and source."""
    lines = [
        "| condition | source | accuracy [95 % CI] | macro-F1 | ECE | coverage | n |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, cond in report["conditions"].items():
        for source in SOURCES:
            s = cond[source]
            lo, hi = s["accuracy_ci95"]
            lines.append(
                f"| {name} | {source} | {s['accuracy']:.3f} [{lo:.3f}, {hi:.3f}] | "
                f"{s['macro_f1']:.3f} | {s['ece']:.3f} | {s['coverage']:.2f} | {s['n']} |"
            )
    below = report["verdict"]["fusion_below_best_single"]
    lines.append("")
    lines.append(
        "Fusion below its best single modality in: "
        + (", ".join(sorted(below)) if below else "no condition")
    )
    return "\n".join(lines) + "\n"


def group_rows(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        out[row["video_id"]].append(row)
    return out
