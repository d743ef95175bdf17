"""Learned late fusion of per-modality scores, sound for any subset of present modalities.

Input per segment: for each modality of ``MODALITIES`` (face, voice, text) its valence in
[-1, 1], its confidence in [0, 1] and a present flag, as an (N, 3, 3) array
``x[:, m] = (valence, confidence, present)`` (absent: zeros). Output: 3-class
negative / neutral / positive probabilities; fused valence = P(positive) - P(negative);
label = the most likely class; confidence = its probability (temperature-scaled on a dev
side, so it is calibrated on the training distribution).

Features (``modality_features``): per modality ``present * (v, c v, |v|, c |v|)``, all
zero when the modality is absent *and* when it is present with a neutral valence, plus
its centred confidence ``present * (c - center)`` for the modalities whose training data
covered all three classes (voice, text; not face). So the presence flag alone cannot push
away from neutral: the model cannot learn "a face is present, so the label is not
neutral", a shortcut the paired training data would otherwise teach (no labelled face
data here shows a neutral face; see the model card). Presence enters only as a learned
non-negative pull towards neutral per present modality (the normaliser a per-modality
likelihood brings; see ``LateFusionNet.raw_logits``).

``LateFusionNet`` is logistic regression on these 15 features (``hidden=0``) or a one-
hidden-layer MLP. ``LearnedFusion`` ties it to a bundle (kind ``fusion``) and offers
``fuse(results, enabled)``, with the fields of the pipeline's fixed-rule output.

A fusion bundle learned the score distributions of particular component models: its
``params["components"]`` names their ``model_id`` per modality, and ``fuse`` raises a
ValueError naming both ids when a result comes from another component model (pass
``allow_other_components=True`` to apply it anyway, or train one on your components).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from sentistream.models.bundle import (
    DEFAULT_BUNDLES,
    Bundled,
    BundleMeta,
    load_bundle_meta,
    load_weights_strict,
)
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.layers import linear_or_mlp

MODALITIES: tuple[str, ...] = ("face", "voice", "text")
FEATURES_PER_MODALITY = 5
FEATURES_VERSION = "present*(v, c*v, |v|, c*|v|, mask*(c-center))+neutral-pull@3"


class FusionOutput(NamedTuple):
    """logits, probs: (N, 3); valence, confidence: (N,) (see the module docstring)."""

    logits: torch.Tensor
    probs: torch.Tensor
    valence: torch.Tensor
    confidence: torch.Tensor


class FusedScore(NamedTuple):
    """One segment's fused score; the same fields as the pipeline's fixed-rule ``Fused``.

    ``valence`` is None and ``label`` ``"unknown"`` (confidence 0) when nothing is present.
    """

    valence: float | None
    label: str
    confidence: float
    present: tuple[str, ...]


class ResultLike(Protocol):
    """What ``fuse`` reads of a modality result (the pipeline's ``ModalityResult``)."""

    present: bool
    valence: float | None
    confidence: float | None


def modality_features(
    x: torch.Tensor, confidence_mask: torch.Tensor, confidence_center: torch.Tensor
) -> torch.Tensor:
    """(N, M, 3) (valence, confidence, present) -> (N, M * 5) features.

    Per modality ``present * (v, c v, |v|, c |v|, mask * (c - center))``: the first four
    vanish for a neutral valence; the fifth, centred confidence, only for the modalities
    whose ``confidence_mask`` is 1 (those whose training data covered all three classes).
    """
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"x must have shape (N, M, 3), got {tuple(x.shape)}")
    v = x[..., 0].clamp(-1.0, 1.0)
    c = x[..., 1].clamp(0.0, 1.0)
    p = (x[..., 2] > 0.5).to(x.dtype)
    centred = (c - confidence_center) * confidence_mask
    phi = torch.stack([v, c * v, v.abs(), c * v.abs(), centred], dim=-1) * p.unsqueeze(-1)
    return phi.flatten(1)


class LateFusionNet(nn.Module):
    """Features -> linear (``hidden=0``) or MLP -> minus a neutral pull -> / temperature.

    Input (N, n_modalities, 3); output ``FusionOutput``. Buffers (saved in the state
    dict): ``temperature``; ``confidence_mask`` and ``confidence_center`` (M,), set from
    the training data (see ``modality_features``).
    """

    def __init__(
        self,
        *,
        n_modalities: int = len(MODALITIES),
        n_classes: int = len(LABELS),
        hidden: int = 16,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if n_modalities < 1:
            raise ValueError(f"n_modalities must be >= 1, got {n_modalities}")
        if n_classes != 3:
            raise ValueError(f"n_classes must be 3 (negative, neutral, positive), got {n_classes}")
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0, got {hidden}")
        self.n_modalities = n_modalities
        width = n_modalities * FEATURES_PER_MODALITY
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("confidence_mask", torch.zeros(n_modalities))
        self.register_buffer("confidence_center", torch.zeros(n_modalities))
        # softplus(presence_raw[m]) >= 0 is taken off the negative and positive logits when
        # modality m is present (see ``raw_logits``); starts at softplus(-3) ~ 0.05.
        self.presence_raw = nn.Parameter(torch.full((n_modalities,), -3.0))
        self.net = linear_or_mlp(width, n_classes, hidden, dropout)

    def presence_penalty(self) -> torch.Tensor:
        """(M,) non-negative pull towards neutral of each present modality."""
        return nn.functional.softplus(self.presence_raw)

    def raw_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, M, 3) -> (N, 3) logits before temperature scaling.

        ``net(features) - [1, 0, 1] * sum_m present_m * penalty_m``: each present modality
        costs the polar classes a learned constant, as the class-conditional normaliser
        of a per-modality likelihood does (naive Bayes with a zero-mean neutral class). It
        is clamped at >= 0, so presence can only ever favour neutral: it cannot learn that
        a present modality rules neutral out.
        """
        if x.ndim != 3 or x.shape[1] != self.n_modalities:
            raise ValueError(f"x must be (N, {self.n_modalities}, 3), got {tuple(x.shape)}")
        present = (x[..., 2] > 0.5).to(x.dtype)
        pull = present @ self.presence_penalty()
        polar = torch.tensor([1.0, 0.0, 1.0], dtype=x.dtype)
        phi = modality_features(x, self.confidence_mask, self.confidence_center)  # type: ignore[arg-type]
        return self.net(phi) - pull.unsqueeze(-1) * polar

    def forward(self, x: torch.Tensor) -> FusionOutput:
        logits = self.raw_logits(x) / self.temperature  # type: ignore[operator]
        probs = logits.softmax(dim=-1)
        return FusionOutput(logits, probs, probs[:, 2] - probs[:, 0], probs.max(dim=-1).values)


def build_fusion_net(params: Mapping[str, object]) -> LateFusionNet:
    """The (untrained) net a fusion bundle's ``params`` describe."""
    modalities: tuple[str, ...] = tuple(params.get("modalities", MODALITIES))  # type: ignore[arg-type]
    if modalities != MODALITIES:
        raise ValueError(f"params['modalities'] must be {MODALITIES}, got {modalities}")
    if params.get("features", FEATURES_VERSION) != FEATURES_VERSION:
        raise ValueError(f"params['features'] must be {FEATURES_VERSION!r}: {params}")
    return LateFusionNet(
        n_modalities=len(modalities),
        hidden=int(params.get("hidden", 16)),  # type: ignore[call-overload]
        dropout=float(params.get("dropout", 0.0)),  # type: ignore[arg-type]
    )


def inputs_from_results(
    results: Mapping[str, ResultLike], min_confidence: float = 0.0
) -> np.ndarray:
    """Modality results -> (3, 3) float32 ``(valence, confidence, present)`` rows.

    A result counts as present when ``present`` is true, valence and confidence are set
    and confidence >= ``min_confidence``.
    """
    x = np.zeros((len(MODALITIES), 3), dtype=np.float32)
    for m, name in enumerate(MODALITIES):
        r = results.get(name)
        if r is None or not r.present or r.valence is None or r.confidence is None:
            continue
        if r.confidence < min_confidence:
            continue
        x[m] = (max(-1.0, min(1.0, r.valence)), max(0.0, min(1.0, r.confidence)), 1.0)
    return x


class LearnedFusion(Bundled):
    """A loaded fusion bundle. ``LearnedFusion.load("fusion-late-mlp").fuse(results, enabled)``."""

    def __init__(
        self, meta: BundleMeta, net: LateFusionNet, *, allow_other_components: bool = False
    ) -> None:
        if meta.kind != "fusion":
            raise ValueError(f"meta.kind must be 'fusion', got {meta.kind!r}")
        if tuple(meta.labels) != LABELS:
            raise ValueError(f"fusion bundle labels must be {LABELS}, got {meta.labels}")
        self.meta = meta
        self.net = net.eval()
        self.min_confidence = float(meta.params.get("min_confidence", 0.0))
        self.components: dict[str, str] = dict(meta.params.get("components", {}))  # type: ignore[call-overload]
        self.allow_other_components = allow_other_components

    @classmethod
    def load(
        cls, name_or_path: str = DEFAULT_BUNDLES["fusion"], *, allow_other_components: bool = False
    ) -> LearnedFusion:
        """Load a shipped bundle by name or a bundle folder / ``.json`` by path (strict
        weights). ``allow_other_components``: fuse results of component models other than
        those the bundle was trained on (``params["components"]``) instead of refusing."""
        meta = load_bundle_meta(name_or_path, expected_kind="fusion")
        net = build_fusion_net(meta.params)
        load_weights_strict(
            net, meta, f"do not match the fusion net its params describe ({meta.params})"
        )
        return cls(meta, net, allow_other_components=allow_other_components)

    def check_components(self, results: Mapping[str, ResultLike]) -> None:
        """ValueError when a present result comes from a component model other than the
        one this bundle was trained on (unless ``allow_other_components``)."""
        self.check_model_ids(
            {name: getattr(r, "model_id", None) for name, r in results.items() if r and r.present}
        )

    def check_model_ids(self, model_ids: Mapping[str, str | None]) -> None:
        """The same check on component ``model_id`` s by modality, before any result exists
        (a pipeline checks its configured bundles once, when it is built)."""
        if self.allow_other_components:
            return
        for name, got in model_ids.items():
            want = self.components.get(name)
            if want is None or got is None or got == want:
                continue
            raise ValueError(
                f"fusion bundle {self.meta.name!r} was trained on {name} scores of "
                f"{want!r}, but this {name} result comes from {got!r}: its scores are "
                "distributed differently. Train a fusion bundle on these components "
                "(sentistream train fusion), or pass allow_other_components=True."
            )

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """(N, 3, 3) inputs -> ``probs`` (N, 3), ``valence`` and ``confidence`` (N,)."""
        arr = np.asarray(x, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[1:] != (len(MODALITIES), 3):
            raise ValueError(f"x must have shape (N, {len(MODALITIES)}, 3), got {arr.shape}")
        with torch.no_grad():
            out = self.net(torch.from_numpy(arr))
        return {
            "probs": out.probs.numpy(),
            "valence": out.valence.numpy(),
            "confidence": out.confidence.numpy(),
        }

    def fuse_many(self, batch: Sequence[Mapping[str, ResultLike]]) -> list[FusedScore]:
        """Fuse many segments at once; the same answers as ``fuse`` one by one."""
        if not batch:
            return []
        for results in batch:
            self.check_components(results)
        x = np.stack([inputs_from_results(r, self.min_confidence) for r in batch])
        out = self.predict(x)
        fused = []
        for i in range(len(batch)):
            present = tuple(m for k, m in enumerate(MODALITIES) if x[i, k, 2] > 0)
            if not present:
                fused.append(FusedScore(None, "unknown", 0.0, ()))
                continue
            fused.append(
                FusedScore(
                    valence=float(out["valence"][i]),
                    label=self.labels[int(out["probs"][i].argmax())],
                    confidence=float(out["confidence"][i]),
                    present=present,
                )
            )
        return fused

    def fuse(
        self, results: Mapping[str, ResultLike], enabled: tuple[str, ...] = MODALITIES
    ) -> FusedScore:
        """Fuse one segment's modality results.

        ``enabled`` is accepted for the fixed rule's signature; the learned confidence is
        the calibrated probability of the label and does not depend on it.
        """
        return self.fuse_many([results])[0]
