"""Isotonic confidence calibration: the fit, the bundle round trip, the model-id check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sentistream.models import calibration as cm
from sentistream.models.bundle import BundleMeta, write_bundle


def test_isotonic_fit_is_monotone_and_recovers_the_accuracy() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, 4000)
    correct = rng.uniform(size=conf.size) < 0.5 * conf  # true accuracy = conf / 2
    m = cm.fit_isotonic(conf, correct)
    assert np.all(np.diff(m.x) >= 0) and np.all(np.diff(m.y) >= -1e-12)
    for c in (0.4, 0.6, 0.8, 0.95):
        assert m(c) == pytest.approx(c / 2, abs=0.06)
    assert m(0.0) == m.y[0] and m(1.0) == m.y[-1]  # flat beyond the data


def test_isotonic_pools_violators() -> None:
    m = cm.fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 0, 1, 1]))
    assert m(0.15) == pytest.approx(0.5) and m(0.4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="equal non-empty"):
        cm.fit_isotonic(np.array([0.1]), np.array([1, 0]))


def _bundle(tmp_path: Path, fitted_on: dict[str, str]) -> BundleMeta:
    maps = {"fused": cm.IsotonicMap(np.array([0.0, 0.5, 1.0]), np.array([0.2, 0.4, 0.9]))}
    return write_bundle(
        tmp_path,
        name="cal",
        kind="calibration",
        version="1",
        labels=("a",),
        state=cm.calibration_state(maps),
        params={"fitted_on": fitted_on},
        training_data={},
        metrics={},
        card=lambda meta: f"# {meta.model_id}\n",
    )


def test_bundle_round_trip_and_model_check(tmp_path: Path) -> None:
    meta = _bundle(tmp_path, {"fused": "fusion-fixed-confweighted@1"})
    cal = cm.ConfidenceCalibration.load(meta.path)
    assert cal.model_id == meta.model_id and cal.calibrate("fused", 0.75) == pytest.approx(0.65)
    assert cal.calibrate("face", 0.3) == 0.3 and cal.calibrate("fused", None) is None
    cal.check_model_ids({"fused": "fusion-fixed-confweighted@1", "face": "any@1"})
    with pytest.raises(ValueError, match="fitted on fused confidences of"):
        cal.check_model_ids({"fused": "fusion-late-mlp@1+x"})
