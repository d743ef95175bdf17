"""Words branch: sentence sentiment from MiniLM embeddings (its top layers fine-tuned in the
shipped bundle) + VADER lexicon scores.

Three layers:

* pure functions: :mod:`sentistream.models.text.features` (normalisation, VADER, surface
  cues, feature assembly) and :func:`probs_to_predictions`;
* :class:`TextHead`, a torch module (standardiser -> logistic regression or small MLP ->
  temperature) built by :func:`build_text_head` from the bundle's ``params``;
* :class:`TextSentimentModel`, which ties a bundle (kind ``"text"``) to the sentence
  encoder: ``TextSentimentModel.load("text-minilm-ft").predict(["..."])`` (a bundle with
  ``params["finetuned_layers"]`` also carries its fine-tuned top MiniLM layers).

Only the current utterance is used: no dialogue context, which a streaming segment lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    Bundled,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
    read_weights,
)
from sentistream.models.layers import linear_or_mlp
from sentistream.models.text.encoder import load_finetuned_minilm_encoder, split_finetuned_state
from sentistream.models.text.features import (
    FEATURES_KNOWN,
    assemble_features,
    check_texts,
    feature_dims,
    surface_features,
    vader_scores,
)

# An encoder maps N texts to an (N, D) float32 array of sentence embeddings.
Encoder = Callable[[list[str]], np.ndarray]


class TextPrediction(NamedTuple):
    """Sentiment of one text.

    Attributes:
        valence: ``P(positive) - P(negative)``, in [-1, 1].
        confidence: probability of the most likely class, in [1/3, 1] (so within [0, 1]);
            the head is temperature-scaled on held-out dialogues, so it is calibrated on
            TV dialogue (see the model card's ECE), less so on other domains.
        probs: class -> probability, over ``TextSentimentModel.labels``; sums to 1.
    """

    valence: float
    confidence: float
    probs: dict[str, float]


def probs_to_predictions(probs: np.ndarray, labels: Sequence[str]) -> list[TextPrediction]:
    """(N, C) class probabilities -> N predictions; needs ``negative`` and ``positive``."""
    if probs.ndim != 2 or probs.shape[1] != len(labels):
        raise ValueError(f"probs must have shape (N, {len(labels)}), got {probs.shape}")
    neg, pos = list(labels).index("negative"), list(labels).index("positive")
    out = []
    for row in probs.astype(np.float64):
        valence = float(np.clip(row[pos] - row[neg], -1.0, 1.0))
        out.append(
            TextPrediction(
                valence=valence,
                confidence=float(row.max()),
                probs={label: float(p) for label, p in zip(labels, row, strict=True)},
            )
        )
    return out


# ---------------------------------------------------------------- the head


class TextHead(nn.Module):
    """Standardiser -> linear (``hidden == 0``) or one-hidden-layer MLP -> temperature.

    Input (N, in_dim) float32 features; output (N, num_classes) temperature-scaled logits.
    ``mean``, ``scale`` and ``temperature`` are buffers, so they live in the state dict.
    """

    mean: torch.Tensor
    scale: torch.Tensor
    temperature: torch.Tensor

    def __init__(self, *, in_dim: int, num_classes: int, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        if in_dim <= 0:
            raise ValueError(f"in_dim must be positive, got {in_dim}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("scale", torch.ones(in_dim))
        self.register_buffer("temperature", torch.ones(()))
        self.net = linear_or_mlp(in_dim, num_classes, hidden, dropout)

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N, C) logits before temperature scaling."""
        return self.net((x - self.mean) / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_dim) -> (N, C) calibrated logits."""
        return self.raw_logits(x) / self.temperature


def build_text_head(params: dict[str, Any], num_classes: int) -> TextHead:
    """Build the head a bundle's ``params`` describe (weights not loaded)."""
    features = list(params.get("features", []))
    unknown = [f for f in features if f not in FEATURES_KNOWN]
    if not features or unknown:
        raise ValueError(f"params['features'] must be a non-empty subset of {FEATURES_KNOWN}")
    in_dim = sum(feature_dims(int(params["embedding_dim"]))[f] for f in features)
    return TextHead(
        in_dim=in_dim,
        num_classes=num_classes,
        hidden=int(params.get("hidden", 0)),
        dropout=float(params.get("dropout", 0.0)),
    )


# ---------------------------------------------------------------- the encoder


def load_minilm_encoder(device: str = "cpu", batch_size: int = 64) -> Encoder:
    """The offline all-MiniLM-L6-v2 sentence encoder (normalised 384-d embeddings)."""
    return load_finetuned_minilm_encoder({}, device=device, batch_size=batch_size)


# ---------------------------------------------------------------- the model


class TextSentimentModel(Bundled):
    """A loaded text bundle: ``predict(texts) -> list[TextPrediction]``."""

    def __init__(
        self, meta: BundleMeta, head: TextHead, encoder: Encoder | None, device: str = "cpu"
    ):
        if meta.kind != "text":
            raise ValueError(f"meta.kind must be 'text', got {meta.kind!r}")
        if "minilm" in meta.params.get("features", []) and encoder is None:
            raise ValueError(f"bundle {meta.name!r} uses MiniLM features: encoder is required")
        self.meta = meta
        self.head = head.to(device).eval()
        self.encoder = encoder
        self.device = device

    @classmethod
    def load(
        cls,
        name_or_path: str = DEFAULT_BUNDLES["text"],
        device: str = "cpu",
        encoder: Encoder | None = None,
    ) -> TextSentimentModel:
        """Load a shipped bundle by name, or a bundle ``.json`` by path.

        Weights load with ``strict=True``; a mismatch raises ValueError naming the bundle.
        ``encoder`` overrides the MiniLM encoder (tests, or a shared instance). A bundle
        with ``params["finetuned_layers"]`` also carries those MiniLM layers (checked
        strictly even when ``encoder`` is given); see :mod:`sentistream.models.text.encoder`.
        """
        meta = load_bundle_meta(name_or_path, expected_kind="text")
        head = build_text_head(meta.params, num_classes=len(meta.labels))
        state = read_weights(meta)
        layers = (
            None  # fine-tuned MiniLM layers (models/text/encoder.py), where the bundle has them
        )
        if meta.params.get("finetuned_layers"):
            state, layers = split_finetuned_state(meta.name, meta.params, state)
        load_weights_strict(head, meta, f"do not match its params {meta.params}", state)
        if encoder is None and "minilm" in meta.params["features"] and layers is not None:
            encoder = load_finetuned_minilm_encoder(layers, device=device)
        elif encoder is None and "minilm" in meta.params["features"]:
            encoder = load_minilm_encoder(device=device)
        return cls(meta, head, encoder, device=device)

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """Validated texts -> (N, F) float32 head inputs."""
        clean = check_texts(texts)
        names = self.meta.params["features"]
        groups: dict[str, np.ndarray] = {}
        if "minilm" in names and self.encoder is not None:
            emb = self.encoder(clean)
            want = int(self.meta.params["embedding_dim"])
            if emb.shape != (len(clean), want):
                raise ValueError(
                    f"encoder returned shape {emb.shape}, bundle {self.meta.name!r} "
                    f"expects (N, {want})"
                )
            groups["minilm"] = emb
        if "vader" in names:
            groups["vader"] = vader_scores(clean)
        if "surface" in names:
            groups["surface"] = surface_features(clean)
        return assemble_features(names, groups)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(N,) texts -> (N, C) probabilities in ``labels`` order; ValueError on empty text."""
        if len(texts) == 0:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        x = torch.from_numpy(self.features(texts)).to(self.device)
        with torch.inference_mode():
            return torch.softmax(self.head(x), dim=-1).cpu().numpy()

    def predict(self, texts: Sequence[str]) -> list[TextPrediction]:
        """Sentiment of each text, batched; raises ValueError on an empty/whitespace text."""
        return probs_to_predictions(self.predict_proba(texts), self.labels)
