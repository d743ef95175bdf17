"""Words branch, first half: speech recognition fills ``SegmentRecord.transcript``.

``ScoreAsr`` is ``RunInference(AsrHandler)`` over the stream of ``SegmentRecord`` and
``DeadLetter`` elements, placed before the text step (which reads the transcript). Like
the modality handlers of :mod:`sentistream.transforms.inference` it passes dead letters
through and never runs the model where the policy says no; unlike them it adds no
``ModalityResult``: it sets ``transcript`` (source ``asr``), and the text step scores it.

Which records are transcribed (:func:`asr_decision`):

- the policy enables ``text`` for the record (else the words branch is off: untouched);
- it has no caption text, or ``prefer_captions`` is off (then ASR replaces the captions);
- it has audio (else untouched: the text step reports ``no_transcript``);
- its segmenter is not ``window``: windows cover stretches where voice activity detection
  found no speech, so they get an empty ASR transcript without running the model (the
  text step reports ``no_speech``).

The segments of one batch are sorted by (video, channel, start) and packed into windows
of ``AsrConfig.pack_s`` seconds (:mod:`sentistream.models.asr.transcriber`), so the packing gain
depends on the batch size (``AsrConfig.runtime.max_batch_size``) and on how many
segments of a recording arrive in one bundle.

Metrics (namespace ``sentistream.asr``): ``segments_transcribed``, ``model_calls``,
``retries``, ``skipped_policy``, ``skipped_captions``, ``skipped_no_audio``,
``no_speech_window``, ``model_errors``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import ModelHandler, RunInference

from sentistream.models.asr.transcriber import AsrOptions, SegmentText, Transcriber
from sentistream.transforms.config import AsrConfig
from sentistream.transforms.inference import Element
from sentistream.transforms.records import DeadLetter, SegmentRecord, Transcript, Word

NAMESPACE = "sentistream.asr"
SOURCE = "asr"

# Decisions of asr_decision (also the suffixes of the skip counters).
TRANSCRIBE = "transcribe"
SKIP_POLICY = "policy"
SKIP_CAPTIONS = "captions"
SKIP_NO_AUDIO = "no_audio"
NO_SPEECH_WINDOW = "no_speech_window"

_LOG = logging.getLogger(__name__)


def asr_decision(record: SegmentRecord, config: AsrConfig) -> str:
    """What the ASR step does with ``record`` (pure): one of ``transcribe``, ``policy``,
    ``captions``, ``no_audio`` (left untouched) or ``no_speech_window`` (empty transcript
    without running the model)."""
    if not record.policy.allows("text"):
        return SKIP_POLICY
    transcript = record.transcript
    if (
        config.prefer_captions
        and transcript is not None
        and transcript.source == "captions"
        and transcript.text.strip()
    ):
        return SKIP_CAPTIONS
    if not record.has_audio or record.audio is None or record.audio.size == 0:
        return SKIP_NO_AUDIO
    if record.segmenter == "window":
        return NO_SPEECH_WINDOW
    return TRANSCRIBE


def asr_options(config: AsrConfig) -> AsrOptions:
    """The model-layer options for ``config``."""
    return AsrOptions(beam_size=config.beam_size, language=config.language, pack_s=config.pack_s)


def to_transcript(result: SegmentText, start_s: float, default_language: str | None) -> Transcript:
    """A model result as the record's ``Transcript``, word times moved to the recording."""
    return Transcript(
        text=result.text,
        source=SOURCE,
        confidence=float(result.confidence),
        language=result.language or default_language or "en",
        words=tuple(
            Word(
                text=w.text.strip(),
                start_s=round(start_s + w.start_s, 3),
                end_s=round(start_s + w.end_s, 3),
                probability=round(float(w.probability), 4),
            )
            for w in result.words
        ),
    )


def empty_transcript(language: str | None) -> Transcript:
    """The transcript of a segment with no speech: no text, source ``asr``, confidence 0."""
    return Transcript(text="", source=SOURCE, confidence=0.0, language=language or "en")


class AsrHandler(ModelHandler[Element, Element, Transcriber]):
    """RunInference adapter: sets ``transcript`` on the records that need one.

    Args:
        config: the ASR configuration.
        model_factory: builds the faster-whisper model (anything with its ``transcribe``);
            None = the process-wide cached model of
            :func:`sentistream.models.whisper.load_whisper_asr` (shared with the
            voice branch when both ask with the same arguments). For tests and fakes.
    """

    def __init__(self, config: AsrConfig, model_factory: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self._config = config
        self._factory = model_factory
        self._counters = {
            name: Metrics.counter(NAMESPACE, name)
            for name in (
                "segments_transcribed",
                "model_calls",
                "retries",
                "model_errors",
                f"skipped_{SKIP_POLICY}",
                f"skipped_{SKIP_CAPTIONS}",
                f"skipped_{SKIP_NO_AUDIO}",
                NO_SPEECH_WINDOW,
            )
        }

    def load_model(self) -> Transcriber:
        cfg = self._config
        if self._factory is not None:
            model = self._factory()
        else:
            from sentistream.models.whisper import load_whisper_asr

            model = load_whisper_asr(
                cfg.model_dir, cfg.runtime.device, cfg.compute_type, cfg.runtime.threads
            )
        return Transcriber(model, asr_options(cfg))

    def batch_elements_kwargs(self) -> Mapping[str, Any]:
        return {
            "min_batch_size": self._config.runtime.min_batch_size,
            "max_batch_size": self._config.runtime.max_batch_size,
        }

    def get_num_bytes(self, batch: Sequence[Element]) -> int:
        # The default pickles the whole batch just to count bytes.
        return sum(
            el.audio.nbytes
            for el in batch
            if isinstance(el, SegmentRecord) and el.audio is not None
        )

    def get_metrics_namespace(self) -> str:
        return f"{NAMESPACE}.RunInference"

    def run_inference(
        self,
        batch: Sequence[Element],
        model: Transcriber,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[Element]:
        out: list[Element] = list(batch)
        todo: list[int] = []
        for i, el in enumerate(batch):
            if isinstance(el, DeadLetter):
                continue
            decision = asr_decision(el, self._config)
            if decision == TRANSCRIBE:
                todo.append(i)
            elif decision == NO_SPEECH_WINDOW:
                self._counters[NO_SPEECH_WINDOW].inc()
                out[i] = dataclasses.replace(el, transcript=empty_transcript(self._config.language))
            else:
                self._counters[f"skipped_{decision}"].inc()
        if not todo:
            return out
        todo.sort(key=lambda i: _order_key(batch[i]))
        records = [batch[i] for i in todo]
        assert all(isinstance(r, SegmentRecord) for r in records)
        results = self._transcribe(model, records)  # type: ignore[arg-type]
        for i, record, result in zip(todo, records, results, strict=True):
            if result is not None:
                assert isinstance(record, SegmentRecord)
                out[i] = dataclasses.replace(
                    record, transcript=to_transcript(result, record.start_s, self._config.language)
                )
        return out

    def _transcribe(
        self, model: Transcriber, records: list[SegmentRecord]
    ) -> list[SegmentText | None]:
        """Results in order; a model failure is retried record by record, and a record
        that still fails keeps its transcript (counted in ``model_errors``)."""
        calls, retries = model.calls, model.retries
        try:
            results: list[SegmentText | None] = list(model.transcribe([_audio(r) for r in records]))
        except Exception:  # noqa: BLE001 - retried one by one below; nothing is lost
            results = []
            for record in records:
                try:
                    results.extend(model.transcribe([_audio(record)]))
                except Exception:  # noqa: BLE001 - counted and logged; the record goes on
                    _LOG.exception("speech recognition failed on segment %s", record.segment_id)
                    self._counters["model_errors"].inc()
                    results.append(None)
        self._counters["segments_transcribed"].inc(sum(r is not None for r in results))
        self._counters["model_calls"].inc(model.calls - calls)
        self._counters["retries"].inc(model.retries - retries)
        return results


def _audio(record: SegmentRecord) -> np.ndarray:
    assert record.audio is not None
    return np.asarray(record.audio, dtype=np.float32)


def _order_key(el: Element) -> tuple[str, int, float]:
    assert isinstance(el, SegmentRecord)
    return (el.ref.resolved_id, el.channel, el.start_s)


class ScoreAsr(beam.PTransform):
    """Sets ``transcript`` (source ``asr``) on segment records that need one."""

    def __init__(self, config: AsrConfig, model_factory: Callable[[], Any] | None = None) -> None:
        super().__init__()
        self._config = config
        self._factory = model_factory

    def expand(self, records):
        return records | "AsrModel" >> RunInference(AsrHandler(self._config, self._factory))
