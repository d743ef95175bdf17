"""The processing transform shared by batch and streaming: ``VideoRef`` -> output rows.

    VideoRef -> DecodeAndSegment -> DecidePolicy -> Face -> Transcript -> Voice -> Text
             -> Fuse -> ScoreRow | CallRow | DeadLetterRow

A linear chain of per-element steps (no Flatten, join or shuffle), so it runs live in
local streaming as well as in batch, on Dataflow and on Flink. Which of the middle steps
run, what the decoder produces and where each input is dropped is decided once, from the
configuration, by ``transforms/plan.py``: a modality that no policy rule enables is not
loaded, decoded or carried. Every step passes dead letters and recording ends through;
the Fuse step turns each recording end into the recording's call rows
(``transforms/calls.py``). Routing the three row kinds to their sinks is the pipeline's
job (``split_rows``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference

from sentistream.transforms.asr import AsrHandler
from sentistream.transforms.calls import OpenRecordings
from sentistream.transforms.config import PipelineConfig
from sentistream.transforms.decode import STAGE_DECODE, STAGE_SEGMENT, DecodeAndSegmentFn
from sentistream.transforms.face import FaceHandler
from sentistream.transforms.fusion import FIXED_RULE_ID
from sentistream.transforms.io.progress import ProgressLog
from sentistream.transforms.plan import FACE, TRANSCRIPT, VOICE, DataPath, plan
from sentistream.transforms.policy import apply_policy, enabled_anywhere
from sentistream.transforms.records import DeadLetter, Element, RecordingEnd
from sentistream.transforms.rows import fusion_model_id, to_dead_letter_row, to_score_row
from sentistream.transforms.schema import ROW_TYPES, CallRow, DeadLetterRow, ScoreRow
from sentistream.transforms.text import TextHandler
from sentistream.transforms.transcript import settle_captions
from sentistream.transforms.voice import VoiceHandler


def configured_model_ids(config: PipelineConfig) -> dict[str, str]:
    """The ``model_id`` of every configured component bundle that a policy rule can enable
    (face / voice / text) and of the fusion (``fused``), read from the bundles' metadata."""
    from sentistream.models.bundle import load_bundle_meta

    bundles = {"face": config.face.bundle, "voice": config.voice.bundle, "text": config.text.bundle}
    enabled = enabled_anywhere(config.policy)
    ids = {
        m: load_bundle_meta(b, expected_kind=m).model_id for m, b in bundles.items() if m in enabled
    }
    fusion = config.fusion.bundle
    ids["fused"] = (
        load_bundle_meta(fusion, expected_kind="fusion").model_id if fusion else FIXED_RULE_ID
    )
    return ids


def configured_fusion_id(config: PipelineConfig) -> str:
    """The ``fusion_model_id`` the configuration writes on its rows."""
    calibration = config.fusion.calibration
    if calibration:
        from sentistream.models.bundle import load_bundle_meta

        cal_id: str | None = load_bundle_meta(calibration, expected_kind="calibration").model_id
    else:
        cal_id = None
    return fusion_model_id(configured_model_ids(config)["fused"], cal_id)


def load_fusion(config: PipelineConfig) -> Any | None:
    """The configured learned fusion (``models.fusion.learned.LearnedFusion``), checked
    against the configured face / voice / text bundles; None for the fixed rule.

    Raises ValueError (naming both model ids) when a component bundle is not the one the
    fusion was trained on, unless ``config.fusion.allow_other_components``.
    """
    if not config.fusion.bundle:
        return None
    from sentistream.models.fusion.learned import LearnedFusion

    fusion = LearnedFusion.load(
        config.fusion.bundle, allow_other_components=config.fusion.allow_other_components
    )
    fusion.check_model_ids(configured_model_ids(config))
    return fusion


def load_calibration(config: PipelineConfig) -> Any | None:
    """The configured confidence calibration, checked against the configured bundles and
    fusion (ValueError naming the mismatch); None for raw confidences."""
    if not config.fusion.calibration:
        return None
    from sentistream.models.calibration import ConfidenceCalibration

    calibration = ConfidenceCalibration.load(config.fusion.calibration)
    calibration.check_model_ids(configured_model_ids(config))
    return calibration


#: Dead-letter stages after which nothing more of the input comes (no call row then).
FINAL_STAGES = (STAGE_DECODE, STAGE_SEGMENT)


class FuseFn(beam.DoFn):
    """Last step: scored ``SegmentRecord`` -> ``ScoreRow``; ``RecordingEnd`` -> the
    recording's ``CallRow`` s; ``DeadLetter`` -> row.

    Args:
        config: the pipeline configuration.
        clock: seconds since the epoch, for ``processed_at`` (tests inject one).
        progress: where a finished input is noted for a progress display, if anywhere.
    """

    def __init__(
        self,
        config: PipelineConfig,
        clock: Callable[[], float] = time.time,
        progress: ProgressLog | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._progress = progress
        self._learned: Any | None = None
        self._calibration: Any | None = None
        self._open = OpenRecordings()
        self._calls = Metrics.counter("sentistream.calls", "rows")
        self._unfinished = Metrics.counter("sentistream.calls", "unfinished_recordings")

    def setup(self) -> None:
        self._learned = load_fusion(self._config)
        self._calibration = load_calibration(self._config)

    def process(self, element: Element) -> Iterator[ScoreRow | CallRow | DeadLetterRow]:
        now = self._clock()
        if isinstance(element, DeadLetter):
            if element.stage in FINAL_STAGES:
                self._open.discard(element.video_id)
                self._finished(0.0)
            yield to_dead_letter_row(element, now)
            return
        if isinstance(element, RecordingEnd):
            calls = self._open.close(
                element, neutral_band=self._config.fusion.neutral_band, processed_at=now
            )
            self._calls.inc(len(calls))
            self._finished(element.duration_s)
            yield from calls
            return
        try:
            row = to_score_row(element, self._config, now, self._learned, self._calibration)
        except Exception as exc:  # noqa: BLE001 - one bad row must not stop the stream
            dead = DeadLetter.from_error(element.ref, "fuse", exc, segment_id=element.segment_id)
            yield to_dead_letter_row(dead, now)
            return
        if not element.partial:  # a partial row is replaced by its final one
            self._open.add(row, live=element.ref.live)
        yield row

    def finish_bundle(self) -> None:
        stale = self._open.end_bundle()  # none on a fused stage; counted if a runner splits
        if stale:
            self._unfinished.inc(stale)

    def _finished(self, media_s: float) -> None:
        if self._progress is not None:
            self._progress.note(media_s)


class ScoreVideos(beam.PTransform):
    """PCollection[VideoRef] -> PCollection[ScoreRow | CallRow | DeadLetterRow].

    ``progress``: where each finished input is noted (``transforms/io/progress.py``)."""

    def __init__(
        self,
        config: PipelineConfig,
        clock: Callable[[], float] = time.time,
        progress: ProgressLog | None = None,
    ) -> None:
        super().__init__()
        self._config = config
        self._clock = clock
        self._progress = progress

    def expand(self, refs):
        cfg, path = self._config, plan(self._config)
        load_fusion(cfg)  # a mismatched fusion or calibration bundle fails here, before
        load_calibration(cfg)  # anything runs
        records = (
            refs
            | "DecodeAndSegment"
            >> beam.ParDo(
                DecodeAndSegmentFn(
                    path.decode, cfg.segment, cfg.policy, path.carried, cfg.live, cfg.diarize
                )
            )
            | "DecidePolicy" >> beam.Map(apply_policy, cfg.policy)
        )
        for step in path.steps:
            records = records | step.capitalize() >> self._step(step, path)
        return records | "Fuse" >> beam.ParDo(FuseFn(cfg, self._clock, self._progress))

    def _step(self, step: str, path: DataPath) -> beam.PTransform:
        cfg, drop = self._config, path.drops_after(step)
        if step == FACE:
            return RunInference(FaceHandler(cfg.face, drop))
        if step == TRANSCRIPT:
            if path.asr:
                return RunInference(AsrHandler(cfg.asr, drop=drop))
            return beam.Map(settle_captions, drop)
        if step == VOICE:
            return RunInference(VoiceHandler(cfg.voice, drop))
        return RunInference(TextHandler(cfg.text, drop))


def split_rows(rows) -> dict[type, beam.PCollection]:
    """Route rows to one PCollection per row type of ``schema.ROW_TYPES``."""
    parts = rows | "SplitRows" >> beam.Partition(
        lambda row, _: ROW_TYPES.index(type(row)), len(ROW_TYPES)
    )
    return dict(zip(ROW_TYPES, parts, strict=True))
