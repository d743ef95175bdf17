"""The transcript step with speech recognition: ``RunInference(AsrHandler)``.

Over the stream of ``SegmentRecord`` and ``DeadLetter`` elements, placed before the text
step (which scores the transcript). Like the modality handlers of
:mod:`sentistream.transforms.inference` it passes dead letters through and never runs the
model where the policy says no; unlike them it adds no ``ModalityResult``: it sets the
transcript, through :func:`sentistream.transforms.transcript.settle`, which also says how
caption text and recognition are chosen (``asr_decision``).

The segments of one batch are sorted by (video, channel, start) and packed into windows
of ``AsrConfig.pack_s`` seconds (:mod:`sentistream.models.asr.transcriber`), so the packing
gain depends on the batch size (``AsrConfig.runtime.max_batch_size``) and on how many
segments of a recording arrive in one bundle.

Metrics (namespace ``sentistream.asr``): ``segments_transcribed``, ``model_calls``,
``retries``, ``skipped_policy``, ``skipped_captions``, ``skipped_no_audio``,
``no_speech_window``, ``model_errors``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from apache_beam.metrics import Metrics

from sentistream.models.asr.transcriber import AsrOptions, SegmentText, Transcriber
from sentistream.transforms.config import AsrConfig
from sentistream.transforms.inference import RecordHandler
from sentistream.transforms.records import Element, SegmentRecord, Transcript
from sentistream.transforms.transcript import (
    NO_SPEECH_WINDOW,
    SKIP_CAPTIONS,
    SKIP_NO_AUDIO,
    SKIP_POLICY,
    TRANSCRIBE,
    asr_decision,
    asr_transcript,
    empty_transcript,
    settle,
)

NAMESPACE = "sentistream.asr"

_LOG = logging.getLogger(__name__)


def asr_options(config: AsrConfig) -> AsrOptions:
    """The model-layer options for ``config``."""
    return AsrOptions(beam_size=config.beam_size, language=config.language, pack_s=config.pack_s)


class AsrHandler(RecordHandler[Transcriber]):
    """RunInference adapter: the transcript step with speech recognition.

    Args:
        config: the ASR configuration.
        model_factory: builds the faster-whisper model (anything with its ``transcribe``);
            None = the process-wide cached model of
            :func:`sentistream.models.whisper.load_whisper_asr` (shared with the
            voice branch when both ask with the same arguments). For tests and fakes.
        drop: the inputs to clear after this step (``transforms/plan.py``).
    """

    namespace = NAMESPACE

    def __init__(
        self,
        config: AsrConfig,
        model_factory: Callable[[], Any] | None = None,
        drop: Iterable[str] = (),
    ) -> None:
        super().__init__(config.runtime, drop)
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

    def run_batch(self, batch: Sequence[Element], model: Transcriber) -> list[Element]:
        recognised: dict[int, Transcript | None] = {}
        todo: list[int] = []
        for i, el in enumerate(batch):
            if not isinstance(el, SegmentRecord):
                continue
            decision = asr_decision(el, self._config)
            if decision == TRANSCRIBE:
                todo.append(i)
            elif decision == NO_SPEECH_WINDOW:
                self._counters[NO_SPEECH_WINDOW].inc()
                recognised[i] = empty_transcript(self._config.language)
            else:
                self._counters[f"skipped_{decision}"].inc()
        todo.sort(key=lambda i: _order_key(batch[i]))
        records = [batch[i] for i in todo]
        assert all(isinstance(r, SegmentRecord) for r in records)
        results = self._transcribe(model, records) if records else []  # type: ignore[arg-type]
        for i, record, result in zip(todo, records, results, strict=True):
            if result is not None:
                recognised[i] = asr_transcript(result, record.start_s, self._config.language)
        return [
            settle(el, recognised.get(i), self._drop) if isinstance(el, SegmentRecord) else el
            for i, el in enumerate(batch)
        ]

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
