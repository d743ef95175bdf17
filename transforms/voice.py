"""Voice branch: speech-encoder emotion head on each speech segment's audio.

``RunInference(VoiceHandler(config, drop))``; reads ``SegmentRecord.audio``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sentistream.models.audio import SAMPLE_RATE
from sentistream.models.cache import shared_model
from sentistream.transforms.config import VoiceConfig
from sentistream.transforms.inference import SegmentModelHandler, from_prediction
from sentistream.transforms.records import (
    REASON_INVALID_AUDIO,
    REASON_NO_AUDIO,
    REASON_NO_SPEECH,
    REASON_SILENCE,
    REASON_TOO_SHORT,
    ModalityResult,
    SegmentRecord,
)

# Below this RMS (about -54 dBFS) a segment is treated as silence, not scored as a voice.
SILENCE_RMS = 2e-3


def voice_input(record: SegmentRecord, min_speech_s: float) -> np.ndarray | ModalityResult:
    """The segment's audio if it can carry a voice score, else why not (pure): no audio
    stream, samples that are not finite numbers (``invalid_audio``), too short, below the
    silence level (``silence``), or sound in which voice activity detection found no speech
    (``no_speech``: a window between speech turns, white noise, music)."""
    if not record.has_audio or record.audio is None:
        return ModalityResult.absent("voice", REASON_NO_AUDIO)
    audio = record.audio
    if not np.isfinite(audio).all():
        return ModalityResult.absent("voice", REASON_INVALID_AUDIO)
    if audio.size == 0 or float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) < SILENCE_RMS:
        return ModalityResult.absent("voice", REASON_SILENCE)
    if record.segmenter == "window":
        # Windows cover stretches where voice activity detection found no speech.
        return ModalityResult.absent("voice", REASON_NO_SPEECH)
    if audio.size < min_speech_s * SAMPLE_RATE:
        return ModalityResult.absent("voice", REASON_TOO_SHORT)
    return audio


ChannelKey = tuple[str, int]


class ChannelMemory:
    """Running per-channel feature statistics for a channel-normalised voice model.

    Channel-normalised bundles (``predict_channel``) standardise each clip by the earlier
    clips of the same speaker; this holds that state per (video id, channel), least
    recently used first out. It is process-local: a recording's segments leave the decode
    step in time order and reach the voice step in the same fused stage (no shuffle in
    between), so one worker sees all of a channel's segments, in order.
    """

    def __init__(self, model: Any, max_channels: int = 4096) -> None:
        self.model = model
        self.model_id = model.model_id
        self._stats: OrderedDict[ChannelKey, Any] = OrderedDict()
        self._max = max_channels

    def predict(self, keyed: Sequence[tuple[ChannelKey, np.ndarray]]) -> list[Any]:
        order: dict[ChannelKey, list[int]] = {}
        for i, (key, _) in enumerate(keyed):
            order.setdefault(key, []).append(i)
        out: list[Any] = [None] * len(keyed)
        for key, idx in order.items():
            preds, stats = self.model.predict_channel(
                [keyed[i][1] for i in idx], self._stats.pop(key, None)
            )
            self._stats[key] = stats
            while len(self._stats) > self._max:
                self._stats.popitem(last=False)
            for i, p in zip(idx, preds, strict=True):
                out[i] = p
        return out


class VoiceHandler(SegmentModelHandler[Any, tuple[ChannelKey, np.ndarray]]):
    modality = "voice"

    def __init__(self, config: VoiceConfig, drop: Iterable[str] = ()) -> None:
        super().__init__(config.runtime, drop)
        self._config = config

    def load(self) -> Any:  # VoiceEmotionModel, or ChannelMemory around a v2 model
        from sentistream.models.voice.model import VoiceEmotionModel

        cfg = self._config
        key = (cfg.bundle, cfg.runtime.device, cfg.whisper_model_dir, cfg.compute_type)
        model = shared_model(
            ("voice", *key, cfg.whisper_threads),
            lambda: VoiceEmotionModel.load(
                cfg.bundle,
                device=cfg.runtime.device,
                whisper_model_dir=cfg.whisper_model_dir,
                compute_type=cfg.compute_type,
                threads=cfg.whisper_threads,  # same key as ASR's: one shared Whisper
            ),
        )
        # The per-channel statistics are the step's own state, not the model's.
        if self._config.channel_normalise and hasattr(model, "predict_channel"):
            return ChannelMemory(model)
        return model

    def prepare(self, record: SegmentRecord) -> tuple[ChannelKey, np.ndarray] | ModalityResult:
        audio = voice_input(record, self._config.min_speech_s)
        if isinstance(audio, ModalityResult):
            return audio
        return (record.ref.resolved_id, record.channel), audio

    def predict(
        self, model: Any, inputs: Sequence[tuple[ChannelKey, np.ndarray]]
    ) -> list[ModalityResult]:
        if isinstance(model, ChannelMemory):
            predictions = model.predict(inputs)
        else:
            predictions = model.predict([audio for _, audio in inputs])
        return [
            from_prediction(
                "voice", p, model.model_id, arousal=None if p.arousal is None else float(p.arousal)
            )
            for p in predictions
        ]
