"""Diarization error rate (DER), as NIST's md-eval scores it, on a 10 ms grid (pure).

DER = (missed speech + false alarm + speaker confusion) / reference speech time, where
at each instant with ``n_ref`` reference and ``n_hyp`` system speakers, ``n_correct`` of
them matched under the one-to-one speaker mapping that maximises matched time
(Hungarian): missed = max(0, n_ref - n_hyp), false alarm = max(0, n_hyp - n_ref),
confusion = min(n_ref, n_hyp) - n_correct. Time within ``collar`` seconds of a reference
boundary is not scored (0.25 s: the usual collar, which forgives boundaries a human
annotator could not place better); overlapped speech is scored (a system with one
speaker at a time misses the second voice).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STEP_S = 0.01
DEFAULT_COLLAR_S = 0.25

Segments = Sequence[tuple[float, float, str]]  # (start_s, end_s, speaker)


def _grid(segments: Segments, speakers: list[str], n: int) -> np.ndarray:
    out = np.zeros((n, len(speakers)), bool)
    index = {s: i for i, s in enumerate(speakers)}
    for start, end, spk in segments:
        out[round(start / STEP_S) : round(end / STEP_S), index[spk]] = True
    return out


def der(
    reference: Segments, hypothesis: Segments, *, collar: float = DEFAULT_COLLAR_S
) -> dict[str, float]:
    """DER and its parts (each a share of the scored reference speech), the scored
    reference seconds, and the speaker counts."""
    from scipy.optimize import linear_sum_assignment

    end = max([e for _, e, _ in reference] + [e for _, e, _ in hypothesis] + [0.0])
    n = round(end / STEP_S) + 1
    ref_spk = sorted({s for _, _, s in reference})
    hyp_spk = sorted({s for _, _, s in hypothesis})
    ref, hyp = _grid(reference, ref_spk, n), _grid(hypothesis, hyp_spk, n)
    scored = np.ones(n, bool)
    c = round(collar / STEP_S)
    for start, stop, _ in reference:
        for t in (round(start / STEP_S), round(stop / STEP_S)):
            scored[max(0, t - c) : t + c] = False
    ref, hyp = ref[scored], hyp[scored]
    n_ref, n_hyp = ref.sum(axis=1), hyp.sum(axis=1)
    correct = np.zeros(len(ref), np.int64)
    if ref_spk and hyp_spk:
        overlap = ref.T.astype(np.int64) @ hyp.astype(np.int64)
        rows, cols = linear_sum_assignment(-overlap)
        for r, h in zip(rows, cols, strict=True):
            correct += ref[:, r] & hyp[:, h]
    total = float(n_ref.sum())
    missed = float(np.maximum(n_ref - n_hyp, 0).sum())
    false_alarm = float(np.maximum(n_hyp - n_ref, 0).sum())
    confusion = float((np.minimum(n_ref, n_hyp) - correct).sum())
    denom = max(total, 1.0)
    return {
        "der": (missed + false_alarm + confusion) / denom,
        "missed": missed / denom,
        "false_alarm": false_alarm / denom,
        "confusion": confusion / denom,
        "scored_s": total * STEP_S,
        "ref_speakers": float(len(ref_spk)),
        "hyp_speakers": float(len(hyp_spk)),
    }
