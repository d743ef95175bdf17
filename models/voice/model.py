"""Voice emotion: a small head on pooled, frozen Whisper encoder states.

``audio (16 kHz mono) -> Whisper encoder (shared with ASR) -> mean+std over time (768)
-> standardiser -> linear (or small MLP) head -> 3-class valence (+ binary arousal)``.

Outputs per clip (:class:`VoicePrediction`):

* ``probs``: P(negative), P(neutral), P(positive) (softmax of the valence head).
* ``valence = P(positive) - P(negative)``, in [-1, 1].
* ``confidence = 1 - H(probs) / ln(3)``: one minus the normalised entropy, in [0, 1]
  (1 when one class takes all the mass, 0 when the three are equal).
* ``arousal = 2 * P(high arousal) - 1``, in [-1, 1], when the bundle has an arousal head
  (trained on acted emotions: angry, fearful, happy, surprised = high; neutral, calm,
  sad = low); else None.

Trained on acted speech from four speakers (see the model card): a weak signal, to be
fused with the other modalities, not used alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
    read_weights,
)
from sentistream.models.whisper import SAMPLE_RATE, encode_pooled, load_whisper

if TYPE_CHECKING:
    import ctranslate2

LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
DEFAULT_BUNDLE = DEFAULT_BUNDLES["voice"]


class VoicePrediction(NamedTuple):
    """One clip's voice scores (see the module docstring for the definitions)."""

    valence: float
    arousal: float | None
    confidence: float
    probs: dict[str, float]


class HeadOutput(NamedTuple):
    """valence_logits: (N, n_classes); arousal_logits: (N,) or None."""

    valence_logits: torch.Tensor
    arousal_logits: torch.Tensor | None


class VoiceHead(nn.Module):
    """Standardiser + linear head (``hidden == 0``) or one-hidden-layer MLP.

    Input (N, in_features) pooled encoder features; see :class:`HeadOutput` for the output.
    The standardiser's ``mean`` / ``scale`` are buffers set from the training features.
    """

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(
        self,
        *,
        in_features: int,
        n_classes: int = len(LABELS),
        hidden: int = 0,
        dropout: float = 0.0,
        arousal: bool = True,
    ) -> None:
        super().__init__()
        if in_features < 1:
            raise ValueError(f"in_features must be >= 1, got {in_features!r}")
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes!r}")
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden!r}")
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        width = hidden or in_features
        self.trunk: nn.Module = (
            nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Dropout(dropout))
            if hidden
            else nn.Identity()
        )
        self.valence = nn.Linear(width, n_classes)
        self.arousal = nn.Linear(width, 1) if arousal else None

    def forward(self, x: torch.Tensor) -> HeadOutput:
        z = self.trunk((x - self.mean) / self.scale)
        arousal = self.arousal(z).squeeze(-1) if self.arousal is not None else None
        return HeadOutput(self.valence(z), arousal)


def head_from_params(params: dict[str, Any]) -> VoiceHead:
    """Build the (untrained) head a bundle's ``params`` describe."""
    try:
        return VoiceHead(
            in_features=int(params["in_features"]),
            n_classes=int(params.get("n_classes", len(LABELS))),
            hidden=int(params.get("hidden", 0)),
            dropout=float(params.get("dropout", 0.0)),
            arousal=bool(params.get("arousal", False)),
        )
    except KeyError as err:
        raise ValueError(f"voice bundle params lack {err.args[0]!r}: {params}") from err


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


def load_head(meta: BundleMeta) -> VoiceHead:
    """The bundle's head with its weights, loaded strictly; ValueError on any mismatch."""
    head = head_from_params(meta.params)
    load_weights_strict(
        head,
        meta,
        read_weights(meta),
        f"do not match the head its params describe ({meta.params})",
    )
    return head.eval()


class VoiceEmotionModel:
    """Voice valence/arousal from 16 kHz mono clips. Build with :meth:`load`."""

    def __init__(
        self, *, head: VoiceHead, meta: BundleMeta, encoder: ctranslate2.models.Whisper
    ) -> None:
        if tuple(meta.labels) != LABELS:
            raise ValueError(f"voice bundle labels must be {LABELS}, got {meta.labels}")
        self.head = head
        self.meta = meta
        self.encoder = encoder
        self.bucket_s = float(meta.params.get("bucket_s", 1.0))
        self.batch_size = 16

    @classmethod
    def load(
        cls,
        name_or_path: str = DEFAULT_BUNDLE,
        device: str = "cpu",
        whisper_model_dir: str | None = None,
        compute_type: str = "int8",
        threads: int = 0,
    ) -> VoiceEmotionModel:
        """Load a ``voice`` bundle and the (cached, shared) Whisper encoder it reads.

        A v2 bundle (``params.head == "emotion-hierarchical-v2"``, e.g.
        ``voice-whisper-tiny-v2``) loads as
        :class:`~sentistream.models.voice.features.VoiceEmotionModelV2`.

        Args:
            name_or_path: a shipped bundle name or a path to a bundle ``.json``.
            device: where the encoder runs (``cpu`` / ``cuda``); the head runs on CPU.
            whisper_model_dir: CTranslate2 Whisper folder; None = shipped tiny.en. Its
                encoder width must match the head's (``params.in_features / 2``).
            compute_type: CTranslate2 compute type of the encoder.
            threads: encoder CPU threads (0 = library default).
        """
        meta = load_bundle_meta(name_or_path, expected_kind="voice")
        if meta.params.get("head") == "emotion-hierarchical-v2":
            from sentistream.models.voice.features import VoiceEmotionModelV2

            encoder = load_whisper(whisper_model_dir, device, compute_type, threads)
            return VoiceEmotionModelV2.from_meta(meta, encoder)
        head = load_head(meta)
        encoder = load_whisper(whisper_model_dir, device, compute_type, threads)
        probe = encode_pooled(encoder, [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)])
        if probe.shape[1] != int(meta.params["in_features"]):
            raise ValueError(
                f"whisper_model_dir {whisper_model_dir!r} gives {probe.shape[1]} pooled "
                f"features; bundle {meta.name!r} expects {meta.params['in_features']}"
            )
        return cls(head=head, meta=meta, encoder=encoder)

    @property
    def model_id(self) -> str:
        return self.meta.model_id

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta.labels)

    def features(self, audios: list[np.ndarray]) -> np.ndarray:
        """N clips (16 kHz mono float32) -> (N, in_features) pooled encoder features."""
        return encode_pooled(
            self.encoder, audios, bucket_s=self.bucket_s, batch_size=self.batch_size
        )

    def predict_features(self, features: np.ndarray) -> list[VoicePrediction]:
        """(N, in_features) pooled features -> N predictions (no encoder involved)."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.head.mean.shape[0]:
            raise ValueError(
                f"features must be (N, {self.head.mean.shape[0]}), got {tuple(x.shape)}"
            )
        with torch.no_grad():
            out = self.head(x)
            probs = torch.softmax(out.valence_logits, dim=-1).numpy()
            arousal = None if out.arousal_logits is None else torch.sigmoid(out.arousal_logits)
        return predictions_from_outputs(
            probs, None if arousal is None else arousal.numpy(), self.labels
        )

    def predict(self, audios: list[np.ndarray]) -> list[VoicePrediction]:
        """N clips, each (samples,) float32 mono at 16 kHz -> N predictions, in order."""
        if not audios:
            return []
        return self.predict_features(self.features(audios))
