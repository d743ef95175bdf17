"""Words branch: sentence-level sentiment of each segment's transcript."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from sentistream.transforms.config import TextConfig
from sentistream.transforms.inference import SegmentModelHandler
from sentistream.transforms.records import (
    REASON_NO_TRANSCRIPT,
    ModalityResult,
    SegmentRecord,
)


def text_input(record: SegmentRecord) -> str | ModalityResult:
    """The segment's transcript text, or why there is none (pure)."""
    transcript = record.transcript
    if transcript is None or not transcript.text.strip():
        reason = REASON_NO_TRANSCRIPT
        if transcript is not None and transcript.source == "asr":
            reason = "no_speech"
        return ModalityResult.absent("text", reason)
    return transcript.text.strip()


class TextHandler(SegmentModelHandler[Any, str]):
    modality = "text"

    def __init__(self, config: TextConfig) -> None:
        super().__init__(config.runtime)
        self._config = config

    def load(self) -> Any:  # TextSentimentModel, imported lazily
        from sentistream.models.text.model import TextSentimentModel

        return TextSentimentModel.load(self._config.bundle, device=self._config.runtime.device)

    def prepare(self, record: SegmentRecord) -> str | ModalityResult:
        return text_input(record)

    def predict(self, model: Any, inputs: Sequence[str]) -> list[ModalityResult]:
        return [
            ModalityResult(
                modality="text",
                present=True,
                valence=float(p.valence),
                confidence=float(p.confidence),
                model_id=model.model_id,
                probs=dict(p.probs),
            )
            for p in model.predict(list(inputs))
        ]


class ScoreText(beam.PTransform):
    """Adds the ``text`` result to each segment record (RunInference, batched)."""

    def __init__(self, config: TextConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, records):
        return records | "TextModel" >> RunInference(TextHandler(self._config))
