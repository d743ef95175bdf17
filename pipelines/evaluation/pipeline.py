"""``sentistream evaluate pipeline``: the real batch job on labelled media, scored.

    sentistream evaluate devset --data ../shared/data --out /tmp/devset
    sentistream evaluate pipeline --data /tmp/devset/manifest.jsonl [--fusion-bundle ...]

The manifest is the batch job's own (``uri``, ``video_id``, ``caption_uri``,
``metadata``; ``sentistream run --manifest`` reads the same file) plus ``label``
(negative / neutral / positive), ``group`` (speaker or subject, for bootstrap intervals
that resample whole groups) and optionally ``condition`` and per-modality ``labels``. The
media go through exactly the path ``sentistream run`` takes (decode, segment, models,
fusion), with the same processing flags; the report gives fused and per-modality
accuracy, macro-F1 and ECE with 95 % intervals, and coverage, per condition. An input
the pipeline cannot read is an error line in the report (its dead letter), never a
traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds

from sentistream.pipelines.batch import BatchSettings, run_job
from sentistream.pipelines.evaluation.report import LABELS, evaluate_rows, group_rows, markdown
from sentistream.transforms.config import PipelineConfig

_LOG = logging.getLogger(__name__)


def read_labelled_manifest(path: Path) -> list[dict[str, Any]]:
    """The manifest's rows; ``ValueError`` naming the line of a row without a valid
    ``uri`` / ``video_id`` / ``label``."""
    clips = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not a JSON object ({err.msg})") from err
        missing = [k for k in ("uri", "video_id", "label") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"{path}:{n}: needs string fields {missing}")
        if row["label"] not in LABELS:
            raise ValueError(f"{path}:{n}: label must be one of {LABELS}, got {row['label']!r}")
        clips.append(row)
    if not clips:
        raise ValueError(f"{path}: no labelled rows")
    return clips


def read_rows(prefix: str) -> list[dict[str, Any]]:
    folder = Path(prefix).parent
    files = sorted(str(p) for p in folder.glob(Path(prefix).name + "*.parquet"))
    return ds.dataset(files, format="parquet").to_table().to_pylist() if files else []


# The row column naming the model behind each source (face / voice / text / fused).
MODEL_COLUMNS = {
    "face": "face_model_id",
    "voice": "voice_model_id",
    "text": "text_model_id",
    "fused": "fusion_model_id",
}


def models_of(rows: Sequence[dict[str, Any]]) -> dict[str, list[str]]:
    """Model-id column -> the distinct ids the rows carry."""
    return {c: sorted({r[c] for r in rows if r.get(c)}) for c in MODEL_COLUMNS.values()}


def evaluate_pipeline(
    manifest: Path,
    output: Path,
    config: PipelineConfig,
    beam_args: Sequence[str] = (),
    *,
    seed: int = 0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Run the batch job on ``manifest`` into ``output`` and score its rows."""
    clips = read_labelled_manifest(manifest)
    result = run_job(BatchSettings(manifest=str(manifest), output=str(output)), config, beam_args)
    rows = read_rows(result.paths.scores_prefix)
    dead = read_rows(result.paths.dead_letters_prefix)
    report = evaluate_rows(clips, group_rows(rows), seed=seed, n_boot=n_boot)
    report["errors"] = [
        f"{d['source_uri']}: {d['stage']}: {d['error_type']}: {d['error']}" for d in dead
    ]
    report["models"] = models_of(rows)
    report["manifest"] = str(manifest)
    return report


def write_report(report: dict[str, Any], path: Path) -> Path:
    """``path`` (JSON) and its Markdown copy beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    text = markdown(report)
    if report["errors"]:
        text += "\nInputs that could not be scored:\n" + "".join(
            f"- {e}\n" for e in report["errors"]
        )
    path.with_suffix(".md").write_text(text, encoding="utf-8")
    return path
