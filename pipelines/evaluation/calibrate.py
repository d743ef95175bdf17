"""``sentistream evaluate calibrate``: fit the confidence calibration on labelled media.

    sentistream evaluate calibrate --data DEV/manifest.jsonl --out bundles/
    sentistream evaluate pipeline --data OTHER/manifest.jsonl \
        --calibration bundles/confidence-calibration

Runs the batch job on the manifest (as ``evaluate pipeline`` does, with raw confidences),
labels every row per source the way the report reads it (``report.label_of``: the
modality's valence with the fusion's neutral band; the fused label), and fits one
isotonic map per source from raw confidence to "the label was right"
(``models/calibration.py``). The bundle records the model ids it was fitted on. Judge it
on *other* clips: ``evaluate devset --seed 1`` draws other faces and sentences.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.bundle import BundleMeta, write_bundle
from sentistream.models.calibration import SOURCES, calibration_state, fit_isotonic
from sentistream.models.training.metrics import expected_calibration_error
from sentistream.pipelines.batch import BatchSettings, run_job
from sentistream.pipelines.evaluation.pipeline import (
    MODEL_COLUMNS,
    models_of,
    read_labelled_manifest,
    read_rows,
)
from sentistream.pipelines.evaluation.report import LABELS, label_of
from sentistream.transforms.config import PipelineConfig

NAME = "confidence-calibration"
MIN_ROWS = 20


def row_outcomes(
    rows: Sequence[dict[str, Any]], labels: dict[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per source: (raw confidences, whether each row's label was its clip's label)."""
    out: dict[str, tuple[list[float], list[bool]]] = {s: ([], []) for s in SOURCES}
    for row in rows:
        truth = labels.get(row["video_id"])
        if truth is None:
            continue
        if row["fused_label"] in LABELS:
            out["fused"][0].append(float(row["fused_confidence"]))
            out["fused"][1].append(row["fused_label"] == truth)
        for m in SOURCES[:-1]:
            if row[f"{m}_present"] and row[f"{m}_confidence"] is not None:
                out[m][0].append(float(row[f"{m}_confidence"]))
                out[m][1].append(LABELS[label_of(float(row[f"{m}_valence"]))] == truth)
    return {s: (np.array(c), np.array(k)) for s, (c, k) in out.items()}


def fit_calibration(
    manifest: Path, output: Path, out: Path, config: PipelineConfig, beam_args: Sequence[str] = ()
) -> BundleMeta:
    """Fit the maps on the rows of ``manifest`` and write the bundle ``out/NAME/``."""
    config = dataclasses.replace(
        config, fusion=dataclasses.replace(config.fusion, calibration=None)
    )
    clips = read_labelled_manifest(manifest)
    result = run_job(BatchSettings(manifest=str(manifest), output=str(output)), config, beam_args)
    rows = read_rows(result.paths.scores_prefix)
    outcomes = row_outcomes(rows, {c["video_id"]: c["label"] for c in clips})
    maps, metrics = {}, {}
    for source, (conf, correct) in outcomes.items():
        if len(conf) < MIN_ROWS:
            continue
        maps[source] = fit_isotonic(conf, correct)
        calibrated = np.array([maps[source](c) for c in conf])
        metrics[source] = {
            "n_rows": len(conf),
            "accuracy": round(float(correct.mean()), 4),
            "ece_raw": round(expected_calibration_error(conf, correct), 4),
            "ece_calibrated_in_sample": round(expected_calibration_error(calibrated, correct), 4),
        }
    if not maps:
        raise ValueError(f"{manifest}: fewer than {MIN_ROWS} scored rows per source")
    fitted_on = _model_ids(rows)
    return write_bundle(
        out,
        name=NAME,
        kind="calibration",
        version="1",
        labels=LABELS,
        state=calibration_state(maps),
        params={"fitted_on": fitted_on, "method": "isotonic (pool-adjacent-violators)"},
        training_data={"manifest": str(manifest), "n_clips": len(clips)},
        metrics=metrics,
        card=_card,
    )


def _model_ids(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Source -> the one model id its rows carry (face / voice / text / fused)."""
    seen = models_of(rows)
    ids = {}
    for source, column in MODEL_COLUMNS.items():
        if len(seen[column]) > 1:
            raise ValueError(f"rows of several {source} models {seen[column]}: fit one each")
        if seen[column]:
            ids[source] = seen[column][0]
    return ids


def _card(meta: BundleMeta) -> str:
    lines = [
        f"# {meta.model_id} (confidence calibration)",
        "",
        "Maps each confidence column (face, voice, text, fused) to the observed probability",
        "that the row's label is right (isotonic regression), fitted on labelled dev clips",
        f"(`{meta.training_data.get('manifest')}`, {meta.training_data.get('n_clips')} clips),",
        "for these models only:",
        "",
        *[f"- {k}: `{v}`" for k, v in sorted(meta.params["fitted_on"].items())],
        "",
        "| source | rows | accuracy | ECE raw | ECE calibrated (in sample) |",
        "|---|---|---|---|---|",
        *[
            f"| {s} | {m['n_rows']} | {m['accuracy']} | {m['ece_raw']} | "
            f"{m['ece_calibrated_in_sample']} |"
            for s, m in meta.metrics.items()
            if isinstance(m, dict)
        ],
        "",
        "Judge it on other clips (`sentistream evaluate pipeline --calibration ...`).",
    ]
    return "\n".join(lines) + "\n"
