"""What the ``sentistream train`` / ``evaluate`` runners share: the shipped bundle names,
the dataset from ``--data``, figures with group-bootstrap CIs, and the report dicts
(rendered by :mod:`sentistream.pipelines.train.reports`).
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.bundle import DEFAULT_BUNDLES
from sentistream.models.training.datasets import LABELS, Example, read_dataset
from sentistream.pipelines.train.reports import render_markdown

SHARED = ("ravdess_audio", "tess", "ckplus48", "meld", "tweeteval")


def is_root(data: Path, needs: Sequence[str]) -> bool:
    return data.is_dir() and all((data / n).is_dir() for n in needs)


def load_examples(args: argparse.Namespace, labelled: bool = True) -> list[Example]:
    examples = read_dataset(args.data, args.layout)
    if getattr(args, "split", None):
        examples = [e for e in examples if e.split == args.split]
    if labelled:
        examples = [e for e in examples if e.label in LABELS]
    if not examples:
        raise ValueError(f"data {args.data}: no items labelled {LABELS} (split {args.split!r})")
    return examples


def summary(
    args: argparse.Namespace, examples: list[Example], probs: np.ndarray, confidence: np.ndarray
) -> dict[str, Any]:
    """Figures with group-bootstrap CIs (groups = speaker / subject / dialogue)."""
    from sentistream.models.training.metrics import classification_summary

    y = np.array([LABELS.index(e.label) for e in examples])
    groups = np.array([e.group for e in examples])
    return classification_summary(
        y, probs.argmax(axis=1), confidence, 3, seed=args.seed, n_boot=args.bootstrap, groups=groups
    )


def data_block(args: argparse.Namespace, examples: list[Example]) -> dict[str, Any]:
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
    args: argparse.Namespace,
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
    return {k: m[k] for k in keys if k in m}


def model_id_of(name: str, out: Path) -> str:
    """``NAME@1+<sha256 of the weights, 8 hex>``: a changed model never reuses an id."""
    return f"{name}@1+{hashlib.sha256((out / f'{name}.pt').read_bytes()).hexdigest()[:8]}"


def delegated_report(
    args: argparse.Namespace, model: str, theirs: dict[str, Any], headline: dict[str, Any]
) -> dict[str, Any]:
    """Report of a run of a model's own training script (its card and report are its own)."""
    from sentistream.models.bundle import load_bundle_meta

    name = DEFAULT_BUNDLES[model]
    model_id = load_bundle_meta(str(args.out / f"{name}.json"), expected_kind=model).model_id
    return {
        "model": model,
        "name": name,
        "model_id": model_id,
        "seed": args.seed,
        "command": f"sentistream {args.argv}",
        "delegated_to": f"models/{model}_train.py",
        "bundle_folder": str(args.out),
        "headline": {"model_id": model_id, **headline},
        "details": theirs,
    }


def trained_report(
    args: argparse.Namespace,
    meta: Any,
    examples: list[Example],
    sides: dict[str, list[Example]],
    metrics: dict[str, Any],
    task: str,
) -> dict[str, Any]:
    report = eval_report(args, meta.model_id, examples, metrics, task)
    report.update(
        name=meta.name,
        bundle=str(args.out / f"{meta.name}.json"),
        splits={s: {"n": len(v), "groups": len({e.group for e in v})} for s, v in sides.items()},
    )
    report["failure_modes"] = [
        "trained on the given data only: expect lower figures on "
        "other speakers, channels, domains and languages"
    ]
    (args.out / f"{meta.name}.md").write_text(render_markdown(report, card=True))
    return report
