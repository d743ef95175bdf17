"""Model cards and report Markdown, all rendered from a bundle's metadata and its report.

* :func:`render_markdown`: any ``sentistream train`` / ``evaluate`` report as Markdown, or
  (``card=True``) the model card of a bundle trained by the generic path or the fusion.
* :func:`pair`, :func:`table`: the small formatting helpers the recipe cards share
  (``models/training/recipe_cards.py``: the voice, text and face recipes' own cards, whose
  reports have more structure than the generic one).

Every card ends with the same intended use and out-of-scope text (:data:`INTENDED`,
:data:`OUT_OF_SCOPE`). Pure string functions: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

INTENDED = (
    "one signal in aggregate sentiment analytics of recordings whose speakers were informed, "
    "reviewed in aggregate over many segments, not per person"
)
OUT_OF_SCOPE = (
    "decisions about individuals (hiring, performance, credit, insurance, health, law "
    "enforcement); emotion recognition of employees at work or of students (prohibited "
    "under EU AI Act Art. 5(1)(f)); any data whose subjects did not agree to it"
)


def _ci(m: dict[str, Any], key: str) -> str:
    lo, hi = m.get(f"{key}_ci95", (None, None))
    return f"{m[key]:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def metrics_table(metrics: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| side | n | accuracy [95 % CI] | macro F1 [95 % CI] | weighted F1 [95 % CI] | ECE |",
        "|---|---|---|---|---|---|",
    ]
    for side, m in metrics.items():
        if isinstance(m, dict) and "accuracy" in m and "n" in m:
            rows.append(
                f"| {side} | {m['n']} | {_ci(m, 'accuracy')} | {_ci(m, 'macro_f1')} | "
                f"{_ci(m, 'weighted_f1')} | {m['ece']:.3f} |"
            )
    return "\n".join(rows)


def subset_table(table: list[dict[str, Any]]) -> str:
    """The 7-subset comparison as Markdown (accuracy / weighted F1 / ECE per method)."""
    rows = [
        "| present | n | learned acc | learned wF1 | learned ECE | fixed acc | fixed wF1 | "
        "fixed ECE | best single | single acc | single wF1 | single ECE | "
        "learned - fixed acc [95 % CI] |",
        "|---" * 13 + "|",
    ]
    for r in table:
        le, fx, bs = r["learned"], r["fixed"], r["best_single"]
        d = r["learned_minus_fixed_accuracy"]
        rows.append(
            f"| {r['subset']} | {r['n']} | {le['accuracy']:.3f} | {le['weighted_f1']:.3f} | "
            f"{le['ece']:.3f} | {fx['accuracy']:.3f} | {fx['weighted_f1']:.3f} | "
            f"{fx['ece']:.3f} | {r['best_single_modality']} | {bs['accuracy']:.3f} | "
            f"{bs['weighted_f1']:.3f} | {bs['ece']:.3f} | {d['diff']:+.3f} "
            f"[{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] |"
        )
    return "\n".join(rows)


def render_markdown(report: dict[str, Any], card: bool = False) -> str:
    """A report (or, with ``card``, a model card) in Markdown, from the report dict."""
    title = report.get("name") or f"{report.get('model')} evaluation"
    out = [
        f"# {title}{' (model card)' if card else ''}",
        "",
        f"`model_id`: `{report.get('model_id', '')}`",
        "",
    ]
    if report.get("task"):
        out += [f"Task: {report['task']}.", ""]
    if report.get("summary"):
        out += [report["summary"], ""]
    out += ["Reproduce:", "", f"    {report.get('command', '')}", ""]
    if report.get("component_model_ids"):
        ids = ", ".join(f"{m} `{i}`" for m, i in report["component_model_ids"].items())
        out += [
            f"Trained on the scores of: {ids}. `LearnedFusion` refuses results of other "
            "component models unless loaded with `allow_other_components=True`.",
            "",
        ]
    if report.get("data"):
        out += ["## Data and licences", ""]
        out += [f"- {k}: {v}" for k, v in report["data"].items()] + [""]
    if report.get("splits"):
        out += ["## Splits (by group: speaker / subject / dialogue)", ""]
        out += [f"- {k}: {v}" for k, v in report["splits"].items()] + [""]
    if report.get("metrics"):
        out += ["## Metrics", "", metrics_table(report["metrics"]), ""]
        out += ["CIs: percentile bootstrap over groups (speakers / subjects / dialogues).", ""]
    if report.get("calibration"):
        out += ["## Calibration", ""] + [f"- {k}: {v}" for k, v in report["calibration"].items()]
        out += [""]
    if report.get("components"):
        out += [
            "## Component models on their held-out items",
            "",
            metrics_table(
                {
                    f"{m} ({c['n_items']} items, {c['how']})": c["emitted_confidence"]
                    for m, c in report["components"].items()
                }
            ),
            "",
        ]
    if report.get("comparison"):
        comp = report["comparison"]
        out += [
            f"## Every subset of present modalities ({comp['evaluated_on']})",
            "",
            subset_table(comp["subsets"]),
            "",
            "fixed = the pipeline's confidence-weighted rule (`fuse_fixed`, enabled = all "
            "three); best single = the subset member with the best accuracy on these rows "
            "(chosen on the test rows themselves: optimistic). CI of the difference: "
            "paired bootstrap over examples (pairs reuse items, so it is too narrow).",
            "",
            f"Verdict: {json.dumps(comp['verdict'])}",
            "",
        ]
    if report.get("delegated_to"):
        out += [
            f"Trained by `{report['delegated_to']}`; its own model card and report are in "
            f"`{report['bundle_folder']}`.",
            "",
            "```json",
            json.dumps(report["headline"], indent=2),
            "```",
            "",
        ]
    if report.get("failure_modes"):
        out += ["## Known failure modes", ""] + [f"- {f}" for f in report["failure_modes"]]
        out += [""]
    if card:
        out += [
            "## Intended use",
            "",
            report.get("intended_use", INTENDED),
            "",
            "## Out of scope",
            "",
            report.get("out_of_scope", OUT_OF_SCOPE),
            "",
        ]
    return "\n".join(out)


def pair(d: dict[str, Any], a: str = "accuracy", b: str = "macro_f1") -> str:
    return f"{d[a]:.3f} / {d[b]:.3f}" if a in d else "-"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(r) + " |" for r in lines)


def kept_card(folder: Path, task: str, command: str) -> Callable[[Any], str]:
    """The ``card`` argument of ``write_bundle`` for a converted bundle: the hand-written
    ``card.md`` already in ``folder`` if there is one (a re-conversion keeps it), else a
    short generated card naming the ``task``, the bundle's data and the ``command``."""
    existing = folder / "card.md"
    kept = existing.read_text(encoding="utf-8") if existing.is_file() else None

    def card(meta: Any) -> str:
        report = {
            "name": meta.name,
            "model_id": meta.model_id,
            "task": task,
            "data": meta.training_data,
            "command": command,
        }
        return kept or render_markdown(report, card=True)

    return card
