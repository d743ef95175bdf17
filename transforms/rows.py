"""A scored segment (or a dead letter) as an output row (pure; no Beam).

``to_score_row`` fuses the segment's modality results (the fixed rule of
``transforms/fusion.py`` or a learned fusion bundle) and flattens record, results, policy
decision and transcript into a ``ScoreRow``; ``to_dead_letter_row`` does the same for a
``DeadLetter``. The schema of both is in ``transforms/schema.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.fusion import FIXED_RULE_ID, fuse_fixed
from sentistream.transforms.records import MODALITIES, DeadLetter, ModalityResult, SegmentRecord
from sentistream.transforms.schema import SCHEMA_VERSION, DeadLetterRow, ScoreRow

#: A row carries at most this much of its input's metadata (JSON characters): rows stay
#: far below a Kafka broker's default 1 MB message limit whatever the event carried.
MAX_METADATA_CHARS = 16_384
TRUNCATED_KEY = "_truncated"


def fusion_model_id(fusion_id: str, calibration_id: str | None) -> str:
    """The row's ``fusion_model_id``: the fusion's id, and the calibration's if any."""
    return fusion_id if calibration_id is None else f"{fusion_id}+calibrated:{calibration_id}"


def metadata_json(metadata: Mapping[str, str]) -> str:
    """The row's ``metadata_json``: the metadata as sorted JSON, or, when that is longer
    than ``MAX_METADATA_CHARS``, the keys that fit (in sorted order, values cut to 1,024
    characters) and ``"_truncated": "<n> of <m> keys, <chars> chars"``, so it says so."""
    full = json.dumps(dict(metadata), sort_keys=True, default=str)
    if len(full) <= MAX_METADATA_CHARS:
        return full
    kept: dict[str, str] = {}
    budget = MAX_METADATA_CHARS - 200
    for key in sorted(metadata):
        value = str(metadata[key])[:1024]
        cost = len(json.dumps({key[:256]: value}))
        if cost > budget:
            break
        kept[key[:256]] = value
        budget -= cost
    kept[TRUNCATED_KEY] = f"{len(kept)} of {len(metadata)} keys kept, {len(full)} chars in all"
    return json.dumps(kept, sort_keys=True)


def to_score_row(
    record: SegmentRecord,
    config: PipelineConfig,
    processed_at: float,
    learned: Any | None = None,
    calibration: Any | None = None,
) -> ScoreRow:
    """Fuse one scored segment and flatten it into an output row (pure).

    ``learned``: a loaded learned-fusion bundle (``models.fusion.LearnedFusion``); None =
    the documented fixed rule. ``calibration``: a ``models.calibration.ConfidenceCalibration``
    mapping each confidence column to the probability that its label is right (fusion
    itself uses the raw confidences); None = raw confidences.
    """
    cal = calibration.calibrate if calibration is not None else (lambda _, c: c)
    policy = record.policy
    if policy is None:
        raise ValueError(f"segment {record.segment_id} reached fusion without a policy decision")
    results = record.results
    if learned is not None:
        fused = learned.fuse(results, policy.enabled)
        fused_id = learned.model_id
    else:
        fused = fuse_fixed(
            results,
            policy.enabled,
            neutral_band=config.fusion.neutral_band,
            min_confidence=config.fusion.min_confidence,
        )
        fused_id = FIXED_RULE_ID
    face, voice, text = (results.get(m) for m in MODALITIES)
    transcript = record.transcript
    detail = {m: dict(r.detail) for m, r in results.items() if r.detail}
    return ScoreRow(
        schema_version=SCHEMA_VERSION,
        video_id=record.ref.resolved_id,
        source_uri=record.ref.uri,
        segment_id=record.segment_id,
        channel=record.channel,
        speaker=record.speaker_id or record.speaker,
        role=record.speaker,
        start_s=round(record.start_s, 3),
        end_s=round(record.end_s, 3),
        segmenter=record.segmenter,
        partial=record.partial,
        speech_level_dbfs=record.level_dbfs,
        transcript=transcript.text if transcript else None,
        transcript_source=transcript.source if transcript else "none",
        asr_confidence=transcript.confidence if transcript and transcript.source == "asr" else None,
        face_present=bool(face and face.present),
        face_valence=face.valence if face else None,
        face_confidence=cal("face", face.confidence) if face else None,
        face_expression=max(face.probs, key=face.probs.__getitem__)
        if face and face.probs
        else None,
        face_reason=_reason(face),
        face_id=face.detail.get("face_id") if face else None,  # type: ignore[arg-type]
        voice_present=bool(voice and voice.present),
        voice_valence=voice.valence if voice else None,
        voice_arousal=voice.arousal if voice else None,
        voice_confidence=cal("voice", voice.confidence) if voice else None,
        voice_reason=_reason(voice),
        text_present=bool(text and text.present),
        text_valence=text.valence if text else None,
        text_confidence=cal("text", text.confidence) if text else None,
        text_reason=_reason(text),
        fused_valence=fused.valence,
        fused_label=fused.label,
        fused_confidence=cal("fused", fused.confidence) if fused.present else fused.confidence,
        modalities_present=",".join(fused.present),
        modalities_enabled=",".join(policy.enabled),
        policy_id=policy.policy_id,
        policy_rule=policy.rule,
        face_model_id=face.model_id if face else None,
        voice_model_id=voice.model_id if voice else None,
        text_model_id=text.model_id if text else None,
        fusion_model_id=fusion_model_id(
            fused_id, None if calibration is None else calibration.model_id
        ),
        detail_json=json.dumps(detail, sort_keys=True, default=str),
        metadata_json=metadata_json(record.ref.metadata),
        event_time=record.ref.event_time,
        processed_at=processed_at,
    )


def _reason(result: ModalityResult | None) -> str | None:
    if result is None:
        return "not_run"
    return None if result.present else result.reason


def to_dead_letter_row(dead: DeadLetter, processed_at: float | None = None) -> DeadLetterRow:
    return DeadLetterRow(
        schema_version=SCHEMA_VERSION,
        video_id=dead.video_id,
        source_uri=dead.uri,
        segment_id=dead.segment_id,
        stage=dead.stage,
        error_type=dead.error_type,
        error=dead.error,
        payload=dead.payload,
        processed_at=time.time() if processed_at is None else processed_at,
    )
