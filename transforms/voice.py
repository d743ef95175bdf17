"""Voice branch: speech-encoder emotion head on each speech segment's audio."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference.base import RunInference

from sentistream.transforms.config import VoiceConfig
from sentistream.transforms.inference import SegmentModelHandler
from sentistream.transforms.records import (
    REASON_NO_AUDIO,
    REASON_SILENCE,
    REASON_TOO_SHORT,
    ModalityResult,
    SegmentRecord,
)

SAMPLE_RATE = 16_000
# Below this RMS (about -54 dBFS) a segment is treated as silence, not scored as a voice.
SILENCE_RMS = 2e-3


def voice_input(record: SegmentRecord, min_speech_s: float) -> np.ndarray | ModalityResult:
    """The segment's audio if it can carry a voice score, else why not (pure)."""
    if not record.has_audio or record.audio is None:
        return ModalityResult.absent("voice", REASON_NO_AUDIO)
    if record.segmenter == "window":
        # Windows cover stretches where voice activity detection found no speech.
        return ModalityResult.absent("voice", REASON_SILENCE)
    audio = record.audio
    if audio.size < min_speech_s * SAMPLE_RATE:
        return ModalityResult.absent("voice", REASON_TOO_SHORT)
    if float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENCE_RMS:
        return ModalityResult.absent("voice", REASON_SILENCE)
    return audio


class VoiceHandler(SegmentModelHandler[Any, np.ndarray]):
    modality = "voice"

    def __init__(self, config: VoiceConfig) -> None:
        super().__init__(config.runtime)
        self._config = config

    def load(self) -> Any:  # VoiceEmotionModel, imported lazily
        from sentistream.models.voice import VoiceEmotionModel

        return VoiceEmotionModel.load(
            self._config.bundle,
            device=self._config.runtime.device,
            whisper_model_dir=self._config.whisper_model_dir,
            compute_type=self._config.compute_type,
            threads=self._config.runtime.threads,  # same key as ASR's: one shared model
        )

    def prepare(self, record: SegmentRecord) -> np.ndarray | ModalityResult:
        return voice_input(record, self._config.min_speech_s)

    def drop(self) -> dict[str, Any]:
        return {"audio": None}  # the last step that reads the audio

    def predict(self, model: Any, inputs: Sequence[np.ndarray]) -> list[ModalityResult]:
        return [
            ModalityResult(
                modality="voice",
                present=True,
                valence=float(p.valence),
                arousal=None if p.arousal is None else float(p.arousal),
                confidence=float(p.confidence),
                model_id=model.model_id,
                probs=dict(p.probs),
            )
            for p in model.predict(list(inputs))
        ]


class ScoreVoice(beam.PTransform):
    """Adds the ``voice`` result to each segment record (RunInference, batched)."""

    def __init__(self, config: VoiceConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, records):
        return records | "VoiceModel" >> RunInference(VoiceHandler(self._config))
