"""What the ``sentistream train`` / ``evaluate`` runners share: the shipped bundle names,
the dataset from ``--data``, figures with group-bootstrap CIs, and the report dicts
(rendered by :mod:`sentistream.pipelines.train.reports`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.bundle import BundleMeta
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.cards import render_markdown
from sentistream.models.training.datasets import read_dataset
from sentistream.models.training.examples import Example

SHARED = ("ravdess_audio", "tess", "ckplus48", "meld", "tweeteval")
SEEDS = {"text": 13}  # the recipes' own default seeds (models/training/text.py: 13)
EPOCHS = {"face": 6}  # default --epochs: face is a fine-tune (one epoch ~2.5 min on 2 cores)


@dataclass(frozen=True)
class TrainRequest:
    """One ``sentistream train|evaluate MODEL`` invocation, typed and frozen: built once
    from the command line (``pipelines/train/cli.py``) and handed to the runner.

    ``seed`` and ``dev_fraction`` are resolved (the model's own default when not given);
    ``delegate_args`` repeats only the options the user gave, for a recipe's own parser;
    ``argv`` is the command line that reproduces the run; ``say`` prints progress.
    """

    command: str
    model: str
    data: Path
    layout: str = "auto"
    seed: int = 0
    dev_fraction: float = 0.2
    report: Path | None = None
    cache: Path = Path("/tmp/sentistream-train-cache")
    threads: int = 1
    bootstrap: int = 1000
    quiet: bool = False
    bundle: str | None = None
    out: Path | None = None
    name: str | None = None
    epochs: int = 200
    checkpoint_dir: Path | None = None
    split: str | None = None
    folds: int = 4
    pairs_per_class: int = 150
    hidden: tuple[int, ...] = (0, 16)
    voiced_only: bool = False
    argv: str = ""
    delegate_args: tuple[str, ...] = ()
    say: Callable[[str], None] = field(default=lambda message: None, compare=False)


def is_root(data: Path, needs: Sequence[str]) -> bool:
    return data.is_dir() and all((data / n).is_dir() for n in needs)


def load_examples(args: TrainRequest, labelled: bool = True) -> list[Example]:
    examples = read_dataset(args.data, args.layout)
    if args.split:
        examples = [e for e in examples if e.split == args.split]
    if labelled:
        examples = [e for e in examples if e.label in LABELS]
    if not examples:
        raise ValueError(f"data {args.data}: no items labelled {LABELS} (split {args.split!r})")
    return examples


def summary(
    args: TrainRequest, examples: list[Example], probs: np.ndarray, confidence: np.ndarray
) -> dict[str, Any]:
    """Figures with group-bootstrap CIs (groups = speaker / subject / dialogue).

    When the data carries fewer than the three labels (a binary positive / negative set such
    as SST-2), ``present_labels`` adds the view restricted to the labels present: the
    model's probabilities renormalised over those labels, so a ``neutral`` answer is not
    simply counted wrong.
    """
    from sentistream.models.training.metrics import classification_summary

    y = np.array([LABELS.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    kw = {"seed": args.seed, "n_boot": args.bootstrap, "groups": groups}
    out = classification_summary(y, probs.argmax(axis=1), confidence, 3, **kw)
    present = np.unique(y)
    if 1 < len(present) < len(LABELS):
        sub = probs[:, present] / np.clip(probs[:, present].sum(axis=1, keepdims=True), 1e-12, None)
        y_sub = np.searchsorted(present, y)
        restricted = classification_summary(
            y_sub, sub.argmax(axis=1), sub.max(axis=1), len(present), **kw
        )
        out["present_labels"] = {"labels": [LABELS[i] for i in present], **restricted}
    return out


def data_block(args: TrainRequest, examples: list[Example]) -> dict[str, Any]:
    corpora = sorted({e.corpus for e in examples})
    return {
        "path": str(args.data),
        "layout": args.layout,
        "corpora": corpora,
        "n_items": len(examples),
        "n_groups": len({e.group for e in examples}),
        "class_counts": {k: sum(e.label == k for e in examples) for k in LABELS},
    }


def eval_report(
    args: TrainRequest,
    model_id: str,
    examples: list[Example],
    metrics: dict[str, Any],
    task: str,
) -> dict[str, Any]:
    return {
        "model": args.model,
        "model_id": model_id,
        "task": task,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "data": data_block(args, examples),
        "metrics": metrics,
        "headline": {"model_id": model_id, **{k: headline_of(v) for k, v in metrics.items()}},
    }


def headline_of(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "accuracy", "accuracy_ci95", "macro_f1", "weighted_f1", "weighted_f1_ci95", "ece")
    head = {k: m[k] for k in keys if k in m}
    if "present_labels" in m:
        head["present_labels"] = headline_of(m["present_labels"]) | {
            "labels": m["present_labels"]["labels"]
        }
    return head


def delegated_report(
    args: TrainRequest, meta: BundleMeta, recipe: str, headline: dict[str, Any]
) -> dict[str, Any]:
    """Report of a run of a model's own recipe (its card and ``report.json`` are its own)."""
    return {
        "model": meta.kind,
        "name": meta.name,
        "model_id": meta.model_id,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "delegated_to": recipe,
        "bundle_folder": meta.path,
        "headline": {"model_id": meta.model_id, **headline},
    }


def trained_report(
    args: TrainRequest,
    meta: Any,
    examples: list[Example],
    sides: dict[str, list[Example]],
    metrics: dict[str, Any],
    task: str,
) -> dict[str, Any]:
    report = eval_report(args, meta.model_id, examples, metrics, task)
    report.update(
        name=meta.name,
        bundle=meta.path,
        splits={s: {"n": len(v), "groups": len({e.group for e in v})} for s, v in sides.items()},
    )
    report["failure_modes"] = [
        "trained on the given data only: expect lower figures on "
        "other speakers, channels, domains and languages"
    ]
    return report


def card_of(report: Any) -> Any:
    """A ``write_bundle`` card function: the report of ``report(meta)`` as a model card."""
    return lambda meta: render_markdown(report(meta), card=True)
