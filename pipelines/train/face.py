"""``sentistream train face`` (temperature calibration of the pretrained FER2013 model on
a dev side of subjects) and ``sentistream evaluate face`` (its valence on labelled faces).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.examples import Example
from sentistream.models.training.splits import assign_splits
from sentistream.pipelines.train.common import TrainRequest, eval_report, load_examples, summary


def _face_probs(examples: list[Example], bundle: str) -> tuple[Any, np.ndarray]:
    from sentistream.models.face.model import FaceExpressionModel
    from sentistream.models.training.face import read_crops

    model = FaceExpressionModel.load(bundle)
    return model, model.predict(read_crops([e.path_or_text for e in examples], size=48))


def _valence_view(model: Any, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sentistream.models.face.model import valence_masses

    masses = valence_masses(probs, model.labels)
    return masses, masses.max(axis=1)


def evaluate(args: TrainRequest) -> dict[str, Any]:
    examples = load_examples(args)
    args.say(f"scoring {len(examples)} face images with {args.bundle}")
    model, probs = _face_probs(examples, args.bundle)
    masses, conf = _valence_view(model, probs)
    metrics = {"valence": summary(args, examples, masses, conf)}
    return eval_report(args, model.model_id, examples, metrics, "face valence from expressions")


def train(args: TrainRequest) -> dict[str, Any]:
    """The face model is pretrained (FER2013): training = temperature calibration, fitted on
    a dev side of subjects and kept only if it lowers ECE on the held-out subjects."""
    from sentistream.models.training.face import CKPLUS_TO_FER
    from sentistream.models.training.metrics import fit_temperature, softmax_t

    examples = load_examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    calib, test = sides["dev"], sides["test"] or sides["train"]
    args.say(f"{len(calib)} calibration / {len(test)} held-out images (split by subject)")
    model, probs = _face_probs(calib + test, args.bundle)
    logp = np.log(np.clip(probs, 1e-8, 1.0))
    n = len(calib)
    emotions = [e.emotion for e in calib]
    if all(em in CKPLUS_TO_FER for em in emotions):
        target = np.array([model.labels.index(CKPLUS_TO_FER[em]) for em in emotions])
        temperature, fitted_on = fit_temperature(logp[:n], target), "7-class expression NLL"
    else:
        grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 57))
        y = np.array([LABELS.index(e.label) for e in calib])
        nll = [_valence_nll(model, logp[:n], y, t) for t in grid]
        temperature, fitted_on = float(grid[int(np.argmin(nll))]), "3-class valence NLL"
    before = _valence_view(model, probs[n:])
    after = _valence_view(model, softmax_t(logp[n:], temperature))
    m_before = summary(args, test, *before)
    m_after = summary(args, test, *after)
    apply = m_after["ece"] < m_before["ece"]
    args.say(f"T={temperature:.3f}: held-out ECE {m_before['ece']} -> {m_after['ece']}")
    report = eval_report(
        args,
        model.model_id,
        test,
        {"held_out": m_before, "held_out_calibrated": m_after},
        "face valence calibration",
    )
    report["calibration"] = {
        "temperature": round(temperature, 4),
        "fitted_on": fitted_on,
        "n_calibration": n,
        "apply": bool(apply),
        "note": "FaceExpressionModel has no temperature parameter: "
        "applying it needs params['temperature'] support",
    }
    report["headline"]["calibration"] = report["calibration"]
    return report


def _valence_nll(model: Any, logp: np.ndarray, y: np.ndarray, t: float) -> float:
    from sentistream.models.training.metrics import softmax_t

    masses, _ = _valence_view(model, softmax_t(logp, t))
    return float(-np.mean(np.log(np.clip(masses[np.arange(len(y)), y], 1e-8, 1.0))))
