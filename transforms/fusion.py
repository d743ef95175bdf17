"""Late fusion of per-modality valences with an explicit presence mask.

The fixed rule (``fuse_fixed``), documented in README "Fusion":

    fused_valence    = sum_m w_m * v_m / sum_m w_m      over present modalities m,
                       w_m = confidence_m * reliability_m
    fused_confidence = (sum_m w_m / sum_m reliability_m over *enabled* modalities)
                       * (1 - dispersion), dispersion = weighted std of v_m (in [0, 1])
    label            = positive if fused > neutral_band, negative if < -neutral_band,
                       else neutral; "unknown" when no modality is present.

So a segment with one modality present is scored from it alone, with its confidence scaled
down by the share of the enabled modalities' reliability it carries; disagreeing
modalities lower the confidence. ``reliability`` weighs the modalities by their measured
held-out accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NamedTuple

from sentistream.transforms.records import MODALITIES, ModalityResult

FIXED_RULE_ID = "fusion-fixed-confweighted@2"

# Relative trust per modality, chosen on the pipeline dev clips (two generated dev sets,
# seeds 0 and 1; judged on a third, seed 2: docs/models.md "Fusion on the dev clips"):
# faces on video (detected, cropped, compressed) are the least reliable input there.
# @1 used face 1.0, voice 0.8, text 1.0.
DEFAULT_RELIABILITY: Mapping[str, float] = {"face": 0.5, "voice": 1.0, "text": 1.0}


class Fused(NamedTuple):
    valence: float | None
    label: str
    confidence: float
    present: tuple[str, ...]


def label_for(valence: float | None, neutral_band: float) -> str:
    if valence is None:
        return "unknown"
    if valence > neutral_band:
        return "positive"
    if valence < -neutral_band:
        return "negative"
    return "neutral"


def fuse_fixed(
    results: Mapping[str, ModalityResult],
    enabled: tuple[str, ...],
    *,
    neutral_band: float = 0.2,
    min_confidence: float = 0.05,
    reliability: Mapping[str, float] = DEFAULT_RELIABILITY,
) -> Fused:
    """Fuse the present modalities of one segment (see the module docstring)."""
    weights: dict[str, float] = {}
    values: dict[str, float] = {}
    for m in MODALITIES:
        r = results.get(m)
        if r is None or not r.present or r.valence is None or r.confidence is None:
            continue
        if r.confidence < min_confidence:
            continue
        weights[m] = r.confidence * reliability.get(m, 1.0)
        values[m] = max(-1.0, min(1.0, r.valence))
    present = tuple(weights)
    total = sum(weights.values())
    if not present or total <= 0:
        return Fused(valence=None, label="unknown", confidence=0.0, present=())
    mean = sum(weights[m] * values[m] for m in present) / total
    var = sum(weights[m] * (values[m] - mean) ** 2 for m in present) / total
    dispersion = min(1.0, math.sqrt(var))
    possible = sum(reliability.get(m, 1.0) for m in enabled) or total
    coverage = min(1.0, total / possible)
    confidence = max(0.0, min(1.0, coverage * (1.0 - dispersion)))
    return Fused(
        valence=mean, label=label_for(mean, neutral_band), confidence=confidence, present=present
    )
