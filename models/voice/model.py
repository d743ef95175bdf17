"""Voice emotion: a hierarchical head on frozen Whisper encoder statistics and prosody.

``audio (16 kHz mono) -> Whisper encoder (shared with ASR) -> mean+std (768) ++ prosody
(20) -> [channel normalisation] -> standardiser -> linear -> 7 emotions -> valence,
arousal`` (the layers are in :mod:`sentistream.models.voice.features`).

Outputs per clip (:class:`VoicePrediction`):

* ``probs``: P(negative), P(neutral), P(positive): sums of the emotion probabilities.
* ``valence = P(positive) - P(negative)``, in [-1, 1].
* ``confidence = 1 - H(probs) / ln(3)``: one minus the normalised entropy, in [0, 1]
  (1 when one class takes all the mass, 0 when the three are equal).
* ``arousal = 2 * P(high arousal) - 1``, in [-1, 1] (angry, fearful, happy, surprised =
  high; neutral, sad = low); None for a bundle trained on valence labels only.

Trained on acted speech (see the model card): a weak signal, to be fused with the other
modalities, not used alone.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch

from sentistream.models.audio import SAMPLE_RATE, voiced_audio
from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    Bundled,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
)
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.voice.features import (
    EMOTIONS,
    PROSODY_NAMES,
    ChannelStats,
    VoiceHeads,
    channel_normalise,
    prosody_features,
    valence_arousal,
)
from sentistream.models.whisper import encode_pooled, load_whisper

HEAD = "emotion-hierarchical-v2"  # params["head"] of the bundles this class loads
NORMALISE = ("none", "channel")
TARGETS = ("emotion", "valence")  # params["target"]: 7 emotions summed, or 3 valence classes


class VoicePrediction(NamedTuple):
    """One clip's voice scores (see the module docstring for the definitions)."""

    valence: float
    arousal: float | None
    confidence: float
    probs: dict[str, float]


def confidence_from_probs(probs: np.ndarray) -> np.ndarray:
    """(N, K) probabilities -> (N,) ``1 - H(p) / ln K`` in [0, 1]."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    entropy = -(p * np.log(p)).sum(axis=-1)
    return np.clip(1.0 - entropy / np.log(p.shape[-1]), 0.0, 1.0)


def predictions_from_outputs(
    probs: np.ndarray, arousal_p: np.ndarray | None, labels: tuple[str, ...]
) -> list[VoicePrediction]:
    """(N, K) class probabilities and (N,) P(high arousal) or None -> N predictions."""
    neg, pos = labels.index("negative"), labels.index("positive")
    valence = np.clip(probs[:, pos] - probs[:, neg], -1.0, 1.0)
    confidence = confidence_from_probs(probs)
    return [
        VoicePrediction(
            valence=float(valence[i]),
            arousal=None if arousal_p is None else float(2.0 * arousal_p[i] - 1.0),
            confidence=float(confidence[i]),
            probs={label: float(probs[i, k]) for k, label in enumerate(labels)},
        )
        for i in range(len(probs))
    ]


def load_heads(meta: BundleMeta) -> VoiceHeads:
    """The bundle's heads with their weights, loaded strictly; ValueError on any mismatch."""
    if meta.params.get("head") != HEAD:
        raise ValueError(
            f"bundle {meta.name!r}: params['head'] must be {HEAD!r}, got "
            f"{meta.params.get('head')!r}"
        )
    target = meta.params.get("target", "emotion")
    if target not in TARGETS:
        raise ValueError(f"bundle {meta.name!r}: params['target'] must be in {TARGETS}")
    n_classes = len(EMOTIONS) if target == "emotion" else len(LABELS)
    try:
        heads = VoiceHeads(in_features=int(meta.params["in_features"]), n_classes=n_classes)
    except KeyError as err:
        raise ValueError(f"voice bundle params lack {err.args[0]!r}: {meta.params}") from err
    load_weights_strict(heads, meta, f"do not match the heads its params describe ({meta.params})")
    return heads.eval()


class VoiceEmotionModel(Bundled):
    """Voice valence/arousal from 16 kHz mono clips. Build with :meth:`load`.

    ``predict(audios)`` scores clips alone (``normalise="none"``); ``normalise="channel"``
    treats ``audios`` as one channel's next clips in time order after ``channel`` (see
    :func:`~sentistream.models.voice.features.channel_normalise`); :meth:`predict_channel`
    also returns the updated stats.
    """

    def __init__(self, *, heads: VoiceHeads, meta: BundleMeta, encoder: Any) -> None:
        if tuple(meta.labels) != LABELS:
            raise ValueError(f"voice bundle labels must be {LABELS}, got {meta.labels}")
        self.heads, self.meta, self.encoder = heads.eval(), meta, encoder
        self.bucket_s = float(meta.params.get("bucket_s", 1.0))
        self.batch_size = 16
        self.prior_weight = float(meta.params.get("prior_weight", 1.0))
        self.min_channel_clips = int(meta.params.get("min_channel_clips", 1))
        self.in_features = int(meta.params["in_features"])
        self.target = meta.params.get("target", "emotion")
        # Trained on the voiced frames of each clip: score them the same way.
        self.voiced_only = bool(meta.params.get("voiced_only", False))

    @classmethod
    def load(
        cls,
        name_or_path: str = DEFAULT_BUNDLES["voice"],
        device: str = "cpu",
        whisper_model_dir: str | None = None,
        compute_type: str = "int8",
        threads: int = 0,
    ) -> VoiceEmotionModel:
        """Load a ``voice`` bundle and the (cached, shared) Whisper encoder it reads.

        Args:
            name_or_path: a shipped bundle name or a path to a bundle folder / ``.json``.
            device: where the encoder runs (``cpu`` / ``cuda``); the heads run on CPU.
            whisper_model_dir: CTranslate2 Whisper folder; None = shipped tiny.en. Its
                encoder width must match the heads' (``in_features - 20`` = 2 x width).
            compute_type: CTranslate2 compute type of the encoder.
            threads: encoder CPU threads (0 = library default).
        """
        meta = load_bundle_meta(name_or_path, expected_kind="voice")
        heads = load_heads(meta)
        encoder = load_whisper(whisper_model_dir, device, compute_type, threads)
        width = encode_pooled(encoder, [np.zeros(SAMPLE_RATE // 2, np.float32)]).shape[1]
        if width + len(PROSODY_NAMES) != heads.plain.mean.shape[0]:
            raise ValueError(
                f"whisper_model_dir {whisper_model_dir!r} gives {width} pooled features; "
                f"bundle {meta.name!r} expects {heads.plain.mean.shape[0] - len(PROSODY_NAMES)}"
            )
        return cls(heads=heads, meta=meta, encoder=encoder)

    def features(self, audios: list[np.ndarray]) -> np.ndarray:
        """N clips -> (N, 788): Whisper mean+std (768) ++ prosody (20), of each clip's
        voiced frames when the bundle was trained so (``params["voiced_only"]``)."""
        if self.voiced_only:
            audios = [voiced_audio(a) for a in audios]
        pooled = encode_pooled(
            self.encoder, audios, bucket_s=self.bucket_s, batch_size=self.batch_size
        )
        prosody = np.reshape([prosody_features(a) for a in audios], (len(audios), -1))
        return np.concatenate([pooled, prosody], 1).astype(np.float64)

    def emotion_probs(
        self, features: np.ndarray, normalise: str = "none", channel: ChannelStats | None = None
    ) -> tuple[np.ndarray, ChannelStats | None]:
        """(N, 788) features -> (N, 7) emotion probabilities (EMOTIONS order; (N, 3) valence
        ones for a ``target="valence"`` bundle) and the updated channel stats."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"features must be (N, {self.in_features}), got {x.shape}")
        if normalise not in NORMALISE:
            raise ValueError(f"normalise must be one of {NORMALISE}, got {normalise!r}")
        probs = self._probs(self.heads.plain, x)
        if normalise != "channel":
            return probs, None
        prior = (self.heads.prior_mean.numpy(), self.heads.prior_var.numpy())
        previous = channel if channel is not None else ChannelStats.empty(x.shape[1])
        xn, stats = channel_normalise(x, previous, *prior, self.prior_weight)
        # A channel's first clips (position < min_channel_clips) keep the plain head: the
        # channel statistics lean on the prior until then.
        position = previous.n + 1 + np.arange(len(x))
        use_channel = (position >= self.min_channel_clips)[:, None]
        return np.where(use_channel, self._probs(self.heads.channel, xn), probs), stats

    @staticmethod
    def _probs(head: torch.nn.Module, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = head(torch.as_tensor(x, dtype=torch.float32))
        return torch.softmax(logits, -1).numpy()

    def predict_features(
        self, features: np.ndarray, normalise: str = "none", channel: ChannelStats | None = None
    ) -> list[VoicePrediction]:
        """(N, 788) features -> N predictions (no encoder involved)."""
        probs, _ = self.emotion_probs(features, normalise, channel)
        return self._predictions(probs)

    def _predictions(self, probs: np.ndarray) -> list[VoicePrediction]:
        if self.target == "valence":
            return predictions_from_outputs(probs, None, self.labels)
        valence, arousal = valence_arousal(probs)
        return predictions_from_outputs(valence, arousal, self.labels)

    def predict(
        self, audios: list[np.ndarray], normalise: str = "none", channel: ChannelStats | None = None
    ) -> list[VoicePrediction]:
        """N clips, each (samples,) float32 mono at 16 kHz -> N predictions, in order."""
        return self.predict_channel(audios, channel, normalise)[0]

    def predict_channel(
        self, audios: list[np.ndarray], channel: ChannelStats | None, normalise: str = "channel"
    ) -> tuple[list[VoicePrediction], ChannelStats | None]:
        """One channel's next clips (time order) -> predictions and the updated stats."""
        if not audios:
            return [], channel
        probs, stats = self.emotion_probs(self.features(audios), normalise, channel)
        return self._predictions(probs), stats
