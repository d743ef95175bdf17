"""Words branch: sentence-level sentiment of each segment's transcript.

``RunInference(TextHandler(config, drop))``; reads ``SegmentRecord.transcript``, which the
transcript step set (``transforms/transcript.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sentistream.models.cache import shared_model
from sentistream.transforms.config import TextConfig
from sentistream.transforms.inference import SegmentModelHandler, from_prediction
from sentistream.transforms.records import (
    REASON_NO_SPEECH,
    REASON_NO_TRANSCRIPT,
    ModalityResult,
    SegmentRecord,
)
from sentistream.transforms.transcript import SOURCE_ASR


def text_input(record: SegmentRecord) -> str | ModalityResult:
    """The segment's transcript text, or why there is none (pure)."""
    transcript = record.transcript
    if transcript is None or not transcript.text.strip():
        reason = REASON_NO_TRANSCRIPT
        if transcript is not None and transcript.source == SOURCE_ASR:
            reason = REASON_NO_SPEECH
        return ModalityResult.absent("text", reason)
    return transcript.text.strip()


class TextHandler(SegmentModelHandler[Any, str]):
    modality = "text"

    def __init__(self, config: TextConfig, drop: Iterable[str] = ()) -> None:
        super().__init__(config.runtime, drop)
        self._config = config

    def load(self) -> Any:  # TextSentimentModel, imported lazily
        from sentistream.models.text.model import TextSentimentModel

        bundle, device = self._config.bundle, self._config.runtime.device
        return shared_model(
            ("text", bundle, device), lambda: TextSentimentModel.load(bundle, device=device)
        )

    def prepare(self, record: SegmentRecord) -> str | ModalityResult:
        return text_input(record)

    def predict(self, model: Any, inputs: Sequence[str]) -> list[ModalityResult]:
        return [from_prediction("text", p, model.model_id) for p in model.predict(list(inputs))]
