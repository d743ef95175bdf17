"""The face recipe: the pretrained FER2013 bundle scored on CK+ (48x48 grey crops).

    python -m sentistream.models.training.face --data ../shared/data/ckplus48 [--out metrics.json]

(``sentistream evaluate face`` / ``train face`` are the valence view and its temperature
calibration; the weights themselves come from ``models/training/face_convert.py``.)

CK+ emotions map to FER2013 labels: anger->angry, disgust, fear, happy, sadness->sad,
surprise (contempt has no FER2013 class and is skipped; the shared copy has none).
Valence truth: happy -> positive; anger, disgust, fear, sadness -> negative; surprise is
ambiguous (it can be either) and is left out of the valence figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from sentistream.models.bundle import DEFAULT_BUNDLES
from sentistream.models.face.model import FaceExpressionModel, expression_valence, valence_masses
from sentistream.models.labels import EMOTION_VALENCE, VALENCE_LABELS
from sentistream.models.training.corpora import read_ckplus
from sentistream.models.training.metrics import expected_calibration_error, macro_f1

CKPLUS_TO_FER: dict[str, str] = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}
#: CK+ emotion -> valence class index (0 negative, 2 positive); surprise (ambiguous) absent.
CKPLUS_VALENCE: dict[str, int] = {
    e: VALENCE_LABELS.index(EMOTION_VALENCE[e])
    for e in CKPLUS_TO_FER
    if EMOTION_VALENCE[e] in VALENCE_LABELS
}


def ckplus_metrics(
    probs: np.ndarray,
    labels: tuple[str, ...],
    emotions: list[str],
    subjects: list[str],
) -> dict[str, Any]:
    """Figures from model probabilities on CK+ images (pure; see module docstring).

    Args:
        probs: (N, K) class probabilities, columns in ``labels`` order.
        emotions: (N) CK+ emotion names; subjects: (N) subject ids.
    """
    if not len(probs) == len(emotions) == len(subjects):
        raise ValueError(
            f"probs, emotions, subjects differ in length: {len(probs)}, "
            f"{len(emotions)}, {len(subjects)}"
        )
    unknown = sorted(set(emotions) - set(CKPLUS_TO_FER))
    if unknown:
        raise ValueError(f"emotions has CK+ classes with no FER2013 label: {unknown}")
    classes = [labels.index(CKPLUS_TO_FER[e]) for e in CKPLUS_TO_FER]  # 6 columns
    truth6 = np.array([list(CKPLUS_TO_FER).index(e) for e in emotions])
    sub = probs[:, classes]
    pred6 = sub.argmax(axis=1)
    correct6 = pred6 == truth6
    conf6 = sub.max(axis=1) / sub.sum(axis=1)
    correct7 = probs.argmax(axis=1) == np.array(classes)[truth6]

    valence, vconf = expression_valence(probs, labels)
    vpred = valence_masses(probs, labels).argmax(axis=1)
    vmask = np.array([e in CKPLUS_VALENCE for e in emotions])
    vtruth = np.array([CKPLUS_VALENCE.get(e, -1) for e in emotions])
    vcorrect = vpred[vmask] == vtruth[vmask]

    subj = np.array(subjects)
    per_subject = {
        s: {
            "n": int((subj == s).sum()),
            "acc6": round(float(correct6[subj == s].mean()), 4),
        }
        for s in sorted(set(subjects))
    }
    emo = np.array(emotions)
    return {
        "n_images": len(emotions),
        "n_subjects": len(per_subject),
        "counts": {e: int((emo == e).sum()) for e in CKPLUS_TO_FER},
        "acc6": round(float(correct6.mean()), 4),
        "acc7_argmax": round(float(correct7.mean()), 4),
        "macro_f1_6": round(macro_f1(truth6, pred6, len(CKPLUS_TO_FER)), 4),
        "ece_6": round(expected_calibration_error(conf6, correct6), 4),
        "per_class_acc6": {
            e: round(float(correct6[truth6 == i].mean()), 4)
            for i, e in enumerate(CKPLUS_TO_FER)
            if (truth6 == i).any()
        },
        "subject_mean_acc6": round(float(np.mean([v["acc6"] for v in per_subject.values()])), 4),
        "valence_n": int(vmask.sum()),
        "valence_acc3": round(float(vcorrect.mean()), 4) if vmask.any() else None,
        "valence_macro_f1": round(macro_f1(vtruth[vmask], vpred[vmask], 3), 4),
        "valence_ece": round(expected_calibration_error(vconf[vmask], vcorrect), 4),
        "mean_valence": {
            e: round(float(valence[emo == e].mean()), 4) for e in CKPLUS_TO_FER if (emo == e).any()
        },
        "per_subject": per_subject,
    }


def read_crops(paths: list[str], size: int | None = None) -> np.ndarray:
    """(N, H, W) uint8 grey images (resized to ``size`` x ``size`` when given, with area
    interpolation); ValueError naming an unreadable one."""
    crops = []
    for path in paths:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"cannot read image {path}")
        crops.append(
            img if size is None else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
        )
    return np.stack(crops)


def evaluate_ckplus(root: str | Path, model: FaceExpressionModel) -> dict[str, Any]:
    """Score every CK+ image of ``root`` (``read_ckplus``) with ``model``.

    Contempt items, where present, are skipped (no FER2013 class) and counted.
    """
    examples = read_ckplus(root)
    kept = [e for e in examples if e.emotion in CKPLUS_TO_FER]
    probs = model.predict(read_crops([e.path_or_text for e in kept]))
    out = ckplus_metrics(probs, model.labels, [e.emotion for e in kept], [e.group for e in kept])
    return {
        "model_id": model.model_id,
        "data": "CK+ (ckplus48)",
        "skipped_contempt": len(examples) - len(kept),
        **out,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Evaluate a face bundle on CK+ crops.")
    parser.add_argument("--data", type=Path, required=True, help="ckplus48 folder")
    parser.add_argument("--bundle", default=DEFAULT_BUNDLES["face"])
    parser.add_argument("--out", type=Path, help="also write the figures here (JSON)")
    parser.add_argument("--per-subject", action="store_true", help="print per-subject rows")
    args = parser.parse_args(argv)
    result = evaluate_ckplus(args.data, FaceExpressionModel.load(args.bundle))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if not args.per_subject:
        result = {k: v for k, v in result.items() if k != "per_subject"}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
