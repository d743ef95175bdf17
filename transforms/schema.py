"""Output records and the one place their Parquet / Kafka schemas are derived.

``ScoreRow`` is one analysed segment; ``CallRow`` one recording and speaker, summed up
(``transforms/calls.py``); ``DeadLetterRow`` one input (or part) that failed. All are flat
frozen dataclasses; ``arrow_schema`` derives the pyarrow schema from the
annotations, and ``to_json`` gives the Kafka payload with the same field names.
Bump ``SCHEMA_VERSION`` on any change of columns or their meaning.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

# 2: ScoreRow.speech_level_dbfs; CallRow. 3: ScoreRow.partial, seg-v3 ids. 4: ``speaker`` is
# the diarized speaker (spk_N) of a mono recording, its segment ids "seg-v3+dia-v1";
# ScoreRow.face_id, the face tracked through the recording that the face columns score.
SCHEMA_VERSION = "4"

_ARROW_TYPES: dict[type, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    int: pa.int64(),
    bool: pa.bool_(),
}


@dataclass(frozen=True)
class ScoreRow:
    """One segment's scores. Column meanings are in README "Output columns"."""

    schema_version: str
    video_id: str
    source_uri: str
    segment_id: str
    channel: int
    speaker: str
    role: str
    start_s: float
    end_s: float
    segmenter: str
    partial: bool
    speech_level_dbfs: float | None
    transcript: str | None
    transcript_source: str
    asr_confidence: float | None
    face_present: bool
    face_valence: float | None
    face_confidence: float | None
    face_expression: str | None
    face_reason: str | None
    face_id: str | None
    voice_present: bool
    voice_valence: float | None
    voice_arousal: float | None
    voice_confidence: float | None
    voice_reason: str | None
    text_present: bool
    text_valence: float | None
    text_confidence: float | None
    text_reason: str | None
    fused_valence: float | None
    fused_label: str
    fused_confidence: float
    modalities_present: str
    modalities_enabled: str
    policy_id: str
    policy_rule: str
    face_model_id: str | None
    voice_model_id: str | None
    text_model_id: str | None
    fusion_model_id: str
    detail_json: str
    metadata_json: str
    event_time: float | None
    processed_at: float


@dataclass(frozen=True)
class CallRow:
    """One recording and speaker, summed up from its segment rows. Column meanings are in
    README "Call-level columns"; ``transforms/calls.py`` computes them."""

    schema_version: str
    summary_id: str
    video_id: str
    source_uri: str
    channel: int
    speaker: str
    role: str
    recording_duration_s: float
    speakers: int
    segments: int
    complete: bool
    fused_valence: float | None
    fused_label: str
    fused_confidence: float | None
    face_valence: float | None
    face_label: str | None
    face_confidence: float | None
    voice_valence: float | None
    voice_label: str | None
    voice_confidence: float | None
    text_valence: float | None
    text_label: str | None
    text_confidence: float | None
    valence_q1: float | None
    valence_q2: float | None
    valence_q3: float | None
    valence_q4: float | None
    trend: float | None
    most_negative_segment_id: str | None
    most_negative_start_s: float | None
    most_negative_valence: float | None
    most_positive_segment_id: str | None
    most_positive_start_s: float | None
    most_positive_valence: float | None
    face_coverage: float
    voice_coverage: float
    text_coverage: float
    face_missing_reason: str | None
    voice_missing_reason: str | None
    text_missing_reason: str | None
    talk_time_s: float
    non_talk_time_s: float
    words: int
    talk_speed_wpm: float | None
    interruptions: int | None
    overlap_s: float | None
    loudness_dbfs: float | None
    policy_id: str
    face_model_id: str | None
    voice_model_id: str | None
    text_model_id: str | None
    fusion_model_id: str
    metadata_json: str
    event_time: float | None
    processed_at: float


@dataclass(frozen=True)
class DeadLetterRow:
    """An input that could not be (fully) processed: where it came from, which stage
    failed and why. ``payload`` keeps the raw event for inputs that were not even parseable."""

    schema_version: str
    video_id: str
    source_uri: str
    segment_id: str | None
    stage: str
    error_type: str
    error: str
    payload: str | None
    processed_at: float


def _arrow_field(name: str, annotation: Any) -> pa.Field:
    args = typing.get_args(annotation)
    nullable = isinstance(annotation, types.UnionType) and type(None) in args
    base = next(a for a in args if a is not type(None)) if nullable else annotation
    if base not in _ARROW_TYPES:
        raise TypeError(f"column {name!r}: no Arrow type for {annotation!r}")
    return pa.field(name, _ARROW_TYPES[base], nullable=nullable)


def arrow_schema(record_type: type) -> pa.Schema:
    """The pyarrow schema of a flat record dataclass, with the schema version as metadata."""
    hints = typing.get_type_hints(record_type)
    fields = [_arrow_field(f.name, hints[f.name]) for f in dataclasses.fields(record_type)]
    return pa.schema(fields, metadata={"sentistream.schema_version": SCHEMA_VERSION})


#: Every kind of output row, in the order the sinks list them.
ROW_TYPES: tuple[type, ...] = (ScoreRow, CallRow, DeadLetterRow)
SCORE_SCHEMA = arrow_schema(ScoreRow)
CALL_SCHEMA = arrow_schema(CallRow)
DEAD_LETTER_SCHEMA = arrow_schema(DeadLetterRow)


def safe_text(value: str) -> str:
    """``value`` as valid UTF-8 text: characters that cannot be encoded (the surrogates
    Python uses for a file name that is not UTF-8, a lone ``\\ud800`` in an event) are
    written as ``\\x..`` / ``\\ud800`` escapes instead of failing the Parquet or Kafka
    write."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape" if _escapable(value) else "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")
    return value


def _escapable(value: str) -> bool:
    """Only the low surrogates U+DC80..U+DCFF that ``surrogateescape`` made from bytes."""
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {safe_text(str(k)): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_safe(v) for v in value)
    return value


def to_dict(row: ScoreRow | CallRow | DeadLetterRow) -> dict[str, Any]:
    """The row's columns, every string valid UTF-8 (``safe_text``)."""
    return {k: _safe(v) for k, v in dataclasses.asdict(row).items()}


def to_json(row: ScoreRow | CallRow | DeadLetterRow) -> bytes:
    """The Kafka payload: the same fields as the Parquet columns, UTF-8 JSON."""
    return json.dumps(to_dict(row), sort_keys=True, allow_nan=False).encode("utf-8")
