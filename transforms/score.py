"""The processing transform shared by batch and streaming: ``VideoRef`` -> output rows.

    VideoRef -> DecodeAndSegment -> Face -> Asr -> Voice -> Text -> Fuse
             -> ScoreRow | DeadLetterRow

A linear chain of per-element steps (no Flatten, join or shuffle), so it runs live in
local streaming as well as in batch, on Dataflow and on Flink. A modality that no policy
rule enables is not even loaded. Routing the two row kinds to their sinks is the
pipeline's job (``split_rows``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam

from sentistream.transforms.asr import ScoreAsr
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.decode import DecodeAndSegmentFn
from sentistream.transforms.face import ScoreFace
from sentistream.transforms.fusion import FIXED_RULE_ID, fuse_fixed
from sentistream.transforms.records import (
    MODALITIES,
    REASON_DISABLED_BY_POLICY,
    DeadLetter,
    ModalityResult,
    SegmentRecord,
)
from sentistream.transforms.schema import SCHEMA_VERSION, DeadLetterRow, ScoreRow
from sentistream.transforms.text import ScoreText
from sentistream.transforms.voice import ScoreVoice

SCORES = "scores"
DEAD_LETTERS = "dead_letters"


def enabled_anywhere(config: PipelineConfig) -> tuple[str, ...]:
    """Modalities that at least one policy rule can enable."""
    allowed = {m for _, mods in config.policy.rules for m in mods}
    return tuple(m for m in MODALITIES if m in allowed)


def to_score_row(
    record: SegmentRecord,
    config: PipelineConfig,
    processed_at: float,
    learned: Any | None = None,
) -> ScoreRow:
    """Fuse one scored segment and flatten it into an output row (pure).

    ``learned``: a loaded learned-fusion bundle (``models.fusion.LearnedFusion``); None =
    the documented fixed rule.
    """
    results = dict(record.results)
    for m in MODALITIES:
        if m not in results and not record.policy.allows(m):
            results[m] = ModalityResult.absent(m, REASON_DISABLED_BY_POLICY)
    if learned is not None:
        fused = learned.fuse(results, record.policy.enabled)
        fusion_model_id = learned.model_id
    else:
        fused = fuse_fixed(
            results,
            record.policy.enabled,
            neutral_band=config.fusion.neutral_band,
            min_confidence=config.fusion.min_confidence,
        )
        fusion_model_id = FIXED_RULE_ID
    face, voice, text = (results.get(m) for m in MODALITIES)
    transcript = record.transcript
    detail = {m: dict(r.detail) for m, r in results.items() if r.detail}
    return ScoreRow(
        schema_version=SCHEMA_VERSION,
        video_id=record.ref.resolved_id,
        source_uri=record.ref.uri,
        segment_id=record.segment_id,
        channel=record.channel,
        speaker=record.speaker,
        role=record.speaker,
        start_s=round(record.start_s, 3),
        end_s=round(record.end_s, 3),
        segmenter=record.segmenter,
        transcript=transcript.text if transcript else None,
        transcript_source=transcript.source if transcript else "none",
        asr_confidence=transcript.confidence if transcript and transcript.source == "asr" else None,
        face_present=bool(face and face.present),
        face_valence=face.valence if face else None,
        face_confidence=face.confidence if face else None,
        face_expression=max(face.probs, key=face.probs.__getitem__)
        if face and face.probs
        else None,
        face_reason=_reason(face),
        voice_present=bool(voice and voice.present),
        voice_valence=voice.valence if voice else None,
        voice_arousal=voice.arousal if voice else None,
        voice_confidence=voice.confidence if voice else None,
        voice_reason=_reason(voice),
        text_present=bool(text and text.present),
        text_valence=text.valence if text else None,
        text_confidence=text.confidence if text else None,
        text_reason=_reason(text),
        fused_valence=fused.valence,
        fused_label=fused.label,
        fused_confidence=fused.confidence,
        modalities_present=",".join(fused.present),
        modalities_enabled=",".join(record.policy.enabled),
        policy_id=record.policy.policy_id,
        policy_rule=record.policy.rule,
        face_model_id=face.model_id if face else None,
        voice_model_id=voice.model_id if voice else None,
        text_model_id=text.model_id if text else None,
        fusion_model_id=fusion_model_id,
        detail_json=json.dumps(detail, sort_keys=True, default=str),
        metadata_json=json.dumps(dict(record.ref.metadata), sort_keys=True, default=str),
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


class FuseFn(beam.DoFn):
    """Last step: scored ``SegmentRecord`` -> ``ScoreRow``; ``DeadLetter`` -> row."""

    def __init__(self, config: PipelineConfig, clock: Callable[[], float] = time.time) -> None:
        self._config = config
        self._clock = clock  # injectable for tests
        self._learned: Any | None = None

    def setup(self) -> None:
        if self._config.fusion.bundle:
            from sentistream.models.fusion.learned import LearnedFusion

            self._learned = LearnedFusion.load(self._config.fusion.bundle)

    def process(self, element: SegmentRecord | DeadLetter) -> Iterator[ScoreRow | DeadLetterRow]:
        now = self._clock()
        if isinstance(element, DeadLetter):
            yield to_dead_letter_row(element, now)
            return
        try:
            yield to_score_row(element, self._config, now, self._learned)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the stream
            yield to_dead_letter_row(
                DeadLetter(
                    uri=element.ref.uri,
                    video_id=element.ref.resolved_id,
                    stage="fuse",
                    error_type=type(exc).__name__,
                    error=str(exc),
                    segment_id=element.segment_id,
                ),
                now,
            )


class ScoreVideos(beam.PTransform):
    """PCollection[VideoRef] -> PCollection[ScoreRow | DeadLetterRow]."""

    def __init__(self, config: PipelineConfig, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._config = config
        self._clock = clock

    def expand(self, refs):
        cfg = self._config
        steps = {
            "face": ScoreFace(cfg.face),
            "voice": ScoreVoice(cfg.voice),
            "text": ScoreText(cfg.text),
        }
        records = refs | "DecodeAndSegment" >> beam.ParDo(
            DecodeAndSegmentFn(cfg.decode, cfg.segment, cfg.policy)
        )
        enabled = enabled_anywhere(cfg)
        if "face" in enabled:
            records = records | "Face" >> steps["face"]
        if cfg.asr.enabled and "text" in enabled:
            # Before the voice step, which drops the audio.
            records = records | "Asr" >> ScoreAsr(cfg.asr)
        for modality in ("voice", "text"):
            if modality in enabled:
                records = records | modality.capitalize() >> steps[modality]
        return records | "Fuse" >> beam.ParDo(FuseFn(cfg, self._clock))


def split_rows(rows):
    """Route rows to two PCollections: (scores, dead_letters)."""
    parts = rows | "SplitRows" >> beam.Partition(
        lambda row, _: 1 if isinstance(row, DeadLetterRow) else 0, 2
    )
    return parts[0], parts[1]
