"""``sentistream train face`` (fine-tune the FER2013 mini-Xception on FER2013 Training
with augmentation, ``models/training/face_finetune.py``) and ``sentistream evaluate face``
(valence on labelled faces).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.examples import Example
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
    """Fine-tune the FER2013 mini-Xception on the data's ``train`` split with augmentation,
    choosing the epoch on its ``dev`` split (``models/training/face_finetune.py``); the
    figures on dev, and on CK+ when ``ckplus48`` sits beside the data, go in the card."""
    from sentistream.models.face.model import FER2013_LABELS, FaceExpressionModel, mini_xception
    from sentistream.models.training import face_finetune as recipe
    from sentistream.models.training.datasets import read_dataset
    from sentistream.models.training.face import evaluate_ckplus, read_crops
    from sentistream.models.training.recipe_cards import face_card

    if args.out is None:
        raise ValueError("train face needs --out (the bundle folder)")
    examples = read_dataset(args.data, args.layout)
    train_side = [e for e in examples if e.split == "train"]
    dev_side = [e for e in examples if e.split == "dev"]
    if not train_side or not dev_side:
        raise ValueError(f"data {args.data}: train face needs train and dev splits (FER2013)")
    state, fit = recipe.finetune(
        train_side,
        dev_side,
        epochs=args.epochs,
        seed=args.seed,
        threads=args.threads,
        say=args.say,
    )
    net = mini_xception(num_classes=len(FER2013_LABELS))
    net.load_state_dict(state, strict=True)
    base = FaceExpressionModel.load(recipe.BASE)
    tuned = FaceExpressionModel(base.meta, net)  # scores with the fine-tuned weights
    dev_labelled = [e for e in dev_side if e.label in LABELS]
    crops = read_crops([e.path_or_text for e in dev_labelled], size=48)
    ckplus = args.data.parent / "ckplus48"
    metrics: dict[str, Any] = {}
    # FER2013's dev split is its PublicTest; a user's data: "dev".
    dev_key = "fer2013_publictest" if {e.corpus for e in dev_side} == {"fer2013"} else "dev"
    for prefix, model in (("", tuned), ("base_", base)):
        masses, conf = _valence_view(model, model.predict(crops))
        metrics[f"{prefix}{dev_key}"] = summary(args, dev_labelled, masses, conf)
        if ckplus.is_dir():
            ck = evaluate_ckplus(ckplus, model)
            drop = ("per_subject", "model_id")
            metrics[f"{prefix}ckplus48"] = {k: v for k, v in ck.items() if k not in drop}
    meta = recipe.write(
        args.out, state, fit, metrics, face_card, base.meta, name=args.name or recipe.NAME
    )
    args.say(f"wrote {meta.path} ({meta.model_id})")
    return eval_report(args, meta.model_id, dev_labelled, metrics, "face fine-tune (FER2013)")
