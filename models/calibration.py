"""Confidence calibration: a raw confidence -> the probability that its label is right.

Each source (``face``, ``voice``, ``text``, ``fused``) gets a monotone map fitted by
isotonic regression (pool-adjacent-violators) on labelled rows: ``(raw confidence, was
the row's label right)``. Applied to a confidence it returns the observed accuracy of
rows with that confidence, interpolated between the fitted blocks. The maps live in a
bundle of kind ``calibration`` (``weights.pt`` holds ``<source>.x`` / ``<source>.y``),
which records the component and fusion ``model_id`` s it was fitted on: a calibration
applied to other models would say nothing, so loading checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from sentistream.models.bundle import Bundled, BundleMeta, load_bundle_meta, read_weights

SOURCES = ("face", "voice", "text", "fused")


@dataclass(frozen=True)
class IsotonicMap:
    """Breakpoints ``x`` (increasing raw confidences) and ``y`` (non-decreasing accuracy)."""

    x: np.ndarray
    y: np.ndarray

    def __call__(self, confidence: float) -> float:
        return float(np.interp(confidence, self.x, self.y))


def fit_isotonic(confidence: np.ndarray, correct: np.ndarray) -> IsotonicMap:
    """The non-decreasing step function of ``confidence`` closest (least squares) to
    ``correct`` (pool-adjacent-violators), as interpolation breakpoints at block means."""
    c = np.asarray(confidence, dtype=np.float64)
    y = np.asarray(correct, dtype=np.float64)
    if c.shape != y.shape or c.ndim != 1 or c.size == 0:
        raise ValueError(f"need two equal non-empty 1-D arrays, got {c.shape} and {y.shape}")
    order = np.argsort(c, kind="stable")
    blocks: list[list[float]] = []  # [sum of correct, count, sum of confidence]
    for ci, yi in zip(c[order], y[order], strict=True):
        blocks.append([yi, 1.0, ci])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, n, cs = blocks.pop()
            blocks[-1] = [blocks[-1][0] + s, blocks[-1][1] + n, blocks[-1][2] + cs]
    xs = np.array([b[2] / b[1] for b in blocks])
    ys = np.array([b[0] / b[1] for b in blocks])
    return IsotonicMap(np.concatenate([[0.0], xs, [1.0]]), np.concatenate([[ys[0]], ys, [ys[-1]]]))


class ConfidenceCalibration(Bundled):
    """The calibration maps of one bundle; ``calibrate(source, confidence)``."""

    def __init__(self, meta: BundleMeta, maps: Mapping[str, IsotonicMap]) -> None:
        unknown = sorted(set(maps) - set(SOURCES))
        if unknown:
            raise ValueError(f"calibration sources must be in {SOURCES}, got {unknown}")
        self.meta, self.maps = meta, dict(maps)
        self.fitted_on: dict[str, str] = dict(meta.params.get("fitted_on", {}))

    @classmethod
    def load(cls, name_or_path: str) -> ConfidenceCalibration:
        meta = load_bundle_meta(name_or_path, expected_kind="calibration")
        state = read_weights(meta)
        sources = sorted({key.split(".")[0] for key in state})
        try:
            maps = {
                s: IsotonicMap(state[f"{s}.x"].numpy(), state[f"{s}.y"].numpy()) for s in sources
            }
        except KeyError as err:
            raise ValueError(f"bundle {meta.name!r}: weights lack {err.args[0]!r}") from err
        return cls(meta, maps)

    def check_model_ids(self, model_ids: Mapping[str, str | None]) -> None:
        """ValueError when a source's model (``face``/``voice``/``text``/``fused`` ->
        model_id) is not the one these maps were fitted on."""
        for source, got in model_ids.items():
            want = self.fitted_on.get(source)
            if source in self.maps and want is not None and got is not None and got != want:
                raise ValueError(
                    f"calibration {self.meta.name!r} was fitted on {source} confidences of "
                    f"{want!r}, not {got!r}: fit one for these models "
                    "(sentistream evaluate calibrate) or pass --calibration ''"
                )

    def calibrate(self, source: str, confidence: float | None) -> float | None:
        """The calibrated confidence (None stays None; a source without a map is as is)."""
        if confidence is None or source not in self.maps:
            return confidence
        return round(self.maps[source](confidence), 4)


def calibration_state(maps: Mapping[str, IsotonicMap]) -> dict[str, object]:
    """The maps as the tensors a calibration bundle's ``weights.pt`` holds."""
    import torch

    state: dict[str, object] = {}
    for source, m in maps.items():
        state[f"{source}.x"] = torch.as_tensor(m.x, dtype=torch.float64)
        state[f"{source}.y"] = torch.as_tensor(m.y, dtype=torch.float64)
    return state
