"""ECE, reliability bins, temperature scaling and the classification figures."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from sentistream.models.training.metrics import (
    bootstrap_ci,
    classification_summary,
    expected_calibration_error,
    fit_temperature,
    macro_f1,
    paired_bootstrap_diff,
    reliability_bins,
    softmax_t,
    weighted_f1,
)


def test_perfectly_calibrated_predictor_has_ece_near_zero() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 200_000)
    correct = rng.uniform(0, 1, conf.size) < conf  # right exactly as often as it claims
    assert expected_calibration_error(conf, correct) < 0.01


def test_overconfident_predictor_has_the_expected_ece() -> None:
    conf = np.full(1000, 0.95)
    correct = np.arange(1000) < 600
    assert expected_calibration_error(conf, correct) == pytest.approx(0.35)


def test_reliability_bins_partition_the_items() -> None:
    conf = np.array([0.0, 0.05, 0.5, 0.99, 1.0])
    bins = reliability_bins(conf, np.array([1, 0, 1, 1, 0], bool), n_bins=10)
    assert len(bins) == 10 and sum(b.n for b in bins) == 5
    assert bins[0].n == 2 and bins[9].n == 2 and bins[9].accuracy == 0.5
    assert bins[5].mean_confidence == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("conf", "correct", "message"),
    [
        (np.array([0.5]), np.array([True, False]), "must both be"),
        (np.array([]), np.array([], bool), "empty"),
        (np.array([1.5]), np.array([True]), r"\[0, 1\]"),
    ],
)
def test_ece_validates(conf: np.ndarray, correct: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expected_calibration_error(conf, correct)


@pytest.mark.parametrize("true_t", [0.5, 1.0, 2.5])
def test_temperature_scaling_recovers_the_temperature(true_t: float) -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (20_000, 3))
    p = softmax_t(logits, true_t)
    y = (rng.uniform(size=(len(p), 1)) > p.cumsum(axis=1)).sum(axis=1)
    t = fit_temperature(logits, y)
    assert t == pytest.approx(true_t, rel=0.05)
    assert (softmax_t(logits, t).argmax(1) == logits.argmax(1)).all()
    before = expected_calibration_error(softmax_t(logits, 1.0).max(1), logits.argmax(1) == y)
    after = expected_calibration_error(softmax_t(logits, t).max(1), logits.argmax(1) == y)
    assert after <= before + 1e-3


def test_f1_matches_scikit_learn_and_no_answer_counts_wrong() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 3, 500)
    pred = np.where(rng.uniform(size=500) < 0.7, y, rng.integers(-1, 3, 500))
    ref_pred = np.where(pred < 0, 99, pred)  # sklearn: an extra label, never true
    assert weighted_f1(y, pred, 3) == pytest.approx(
        f1_score(y, ref_pred, labels=[0, 1, 2], average="weighted")
    )
    assert macro_f1(y, pred, 3) == pytest.approx(
        f1_score(y, ref_pred, labels=[0, 1, 2], average="macro")
    )


def test_summary_and_bootstrap_intervals() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 300)
    pred = np.where(rng.uniform(size=300) < 0.8, y, (y + 1) % 3)
    groups = np.repeat(np.arange(30), 10)
    out = classification_summary(y, pred, np.full(300, 0.8), 3, seed=0, n_boot=200, groups=groups)
    lo, hi = out["accuracy_ci95"]
    assert lo <= out["accuracy"] <= hi and out["n"] == 300
    assert out["ece"] == pytest.approx(abs(0.8 - out["accuracy"]), abs=1e-4)
    a = bootstrap_ci(weighted_f1, y, pred, 3, seed=0, n_boot=200)
    assert a == bootstrap_ci(weighted_f1, y, pred, 3, seed=0, n_boot=200)  # seeded
    diff = paired_bootstrap_diff(weighted_f1, y, y, pred, 3, seed=0, n_boot=200)
    assert diff["diff"] > 0 and diff["ci95"][0] > 0


def test_macro_f1_over_true_or_either_classes_and_confusion() -> None:
    from sentistream.models.training.metrics import accuracy_f1, confusion

    y, pred = np.array([0, 0, 2, 2]), np.array([0, 1, 2, 2])
    assert macro_f1(y, pred, 3) == pytest.approx((2 / 3 + 1) / 2)  # classes of y
    assert macro_f1(y, pred, 3, over="either") == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert accuracy_f1(y, pred, 3) == {
        "accuracy": 0.75,
        "macro_f1": macro_f1(y, pred, 3, over="either"),
    }
    assert confusion(y, pred, 3) == [[1, 1, 0], [0, 0, 0], [0, 0, 2]]
    with pytest.raises(ValueError, match="over"):
        macro_f1(y, pred, 3, over="all")
    conf = np.array([0.95, 0.95, 0.55, 0.55])
    ece = expected_calibration_error(conf, np.array([True, True, True, False]))
    assert ece == pytest.approx(0.5 * 0.05 + 0.5 * 0.05)
