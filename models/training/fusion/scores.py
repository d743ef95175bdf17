"""Held-out scores of the three component models on real labelled items, the inputs of
the fusion's paired examples (see :mod:`sentistream.models.training.fusion.train`): face (CK+,
never trained on), voice (leave-one-speaker-out), text (group k-fold out-of-fold); a
disk cache for them, and each component's own held-out figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sentistream.models.training.metrics import classification_summary
from sentistream.models.training.datasets import LABELS, read_ckplus
from sentistream.models.training.fusion.pairs import ModalityScores, Progress, fold_of, say

CACHE_VERSION = "fusion-scores-v1"


def face_scores(ckplus_root: Path, bundle: str = "face-fer2013-minixception") -> ModalityScores:
    """CK+ sequences (negative / positive only) scored like a pipeline segment."""
    import cv2

    from sentistream.models.face.model import (
        FaceBox,
        FaceExpressionModel,
        aggregate_segment,
        valence_masses,
    )

    examples = [e for e in read_ckplus(ckplus_root) if e.label in LABELS]
    model = FaceExpressionModel.load(bundle)
    crops = []
    for e in examples:
        img = cv2.imread(e.path_or_text, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"ckplus_root: cannot read image {e.path_or_text}")
        crops.append(img)
    probs = model.predict(np.stack(crops))
    box = FaceBox(0, 0, crops[0].shape[1], crops[0].shape[0], 1.0)
    sequences: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        sequences.setdefault(Path(e.path_or_text).stem.rsplit("_", 1)[0], []).append(i)
    rows = []
    for seq, idx in sorted(sequences.items()):
        per_face = [(float(t), box, probs[i]) for t, i in enumerate(idx)]
        agg = aggregate_segment(per_face, labels=model.labels, n_frames=len(idx))
        assert agg is not None
        masses = valence_masses(agg.probs[None], model.labels)[0]
        e = examples[idx[0]]
        rows.append((seq, LABELS.index(e.label), e.group, agg.valence, agg.confidence, masses))
    return _scores(
        "face",
        rows,
        model.model_id,
        "pretrained on FER2013, never trained on CK+; "
        "one CK+ sequence (peak frames) aggregated as a pipeline segment",
    )


def _scores(modality: str, rows: list[tuple], model_id: str, how: str) -> ModalityScores:
    items, y, groups, val, conf, probs = zip(*rows, strict=True)
    return ModalityScores(
        modality,
        np.array(items),
        np.array(y, dtype=np.int64),
        np.array(groups),
        np.array(val, dtype=np.float32),
        np.array(conf, dtype=np.float32),
        np.array(probs, dtype=np.float32),
        model_id,
        how,
    )


def voice_scores(
    data_root: Path, *, cache: Path, seed: int, bundle: str = "voice-whisper-tiny-lr"
) -> ModalityScores:
    """Leave-one-speaker-out predictions of the voice head on RAVDESS + TESS."""
    from sentistream.models.training import voice_train as vt
    from sentistream.models.bundle import load_bundle_meta
    from sentistream.models.voice.model import LABELS as VOICE_LABELS
    from sentistream.models.voice.model import predictions_from_outputs
    from sentistream.models.whisper import default_model_dir

    try:
        meta = load_bundle_meta(bundle, expected_kind="voice")
        hp_raw = dict(meta.params["train_hparams"])
        hp = vt.HParams(**{**hp_raw, "augment": tuple(hp_raw.get("augment", ()))})
        model_id = meta.model_id
    except (ValueError, KeyError):
        hp, model_id = vt.HParams(1e-2, True, 0, ()), f"{bundle} (not shipped: default hparams)"
    clips = vt.read_corpora(Path(data_root).resolve())
    feats = vt.extract_features(
        clips, ("clean", *hp.augment), cache=cache, model_dir=default_model_dir(), seed=seed
    )
    speaker = np.array([c.speaker for c in clips])
    everyone = np.arange(len(clips))
    probs = np.zeros((len(clips), 3), dtype=np.float32)
    for s in sorted(set(speaker)):
        head = vt.fit_head(feats, clips, everyone[speaker != s], hp, seed)
        with torch.no_grad():
            logits = head(torch.from_numpy(feats["clean"][speaker == s])).valence_logits
        probs[speaker == s] = torch.softmax(logits, -1).numpy()
    preds = predictions_from_outputs(probs, None, VOICE_LABELS)
    rows = [
        (c.path, c.label, c.speaker, p.valence, p.confidence, probs[i])
        for i, (c, p) in enumerate(zip(clips, preds, strict=True))
    ]
    return _scores(
        "voice", rows, model_id, f"leave-one-speaker-out, hyper-parameters {dict(hp._asdict())}"
    )


def text_scores(
    data_root: Path,
    *,
    cache: Path,
    seed: int,
    n_folds: int,
    bundle: str = "text-minilm-vader-lr",
    progress: Progress | None = None,
) -> ModalityScores:
    """Group k-fold out-of-fold predictions of the text head on MELD train + TweetEval."""
    from sentistream.models.training import text_train as tt
    from sentistream.models.bundle import load_bundle_meta
    from sentistream.models.text.model import LABELS as TEXT_LABELS
    from sentistream.models.text.model import probs_to_predictions
    from sentistream.models.training.text_data import lazy_encoder

    try:
        meta = load_bundle_meta(bundle, expected_kind="text")
        sel = meta.metrics["selected"]
        config = tt.Config(
            tuple(sel["features"]),
            int(sel["hidden"]),
            float(sel["weight_decay"]),
            str(sel["class_weight"]),
        )
        model_id = meta.model_id
    except (ValueError, KeyError):
        config = tt.Config(("minilm", "vader"), 0, 1e-2, "sqrt")
        model_id = f"{bundle} (not shipped: default configuration)"
    if tuple(TEXT_LABELS) != LABELS:
        raise ValueError(f"text labels {TEXT_LABELS} are not {LABELS}")
    meld = tt.load_meld(Path(data_root) / "meld" / "train_sent_emo.csv")
    tweets = tt.load_tweeteval(Path(data_root) / "tweeteval")
    encoder = lazy_encoder()
    parts = [tt.cached_features(c.texts, cache, encoder) for c in (meld, tweets)]
    x = np.concatenate([tt.assemble_features(config.features, p) for p in parts])
    y = np.concatenate([meld.y, tweets.y])
    groups = np.array(
        [f"meld-train-{g}" for g in meld.groups] + [f"tweet-dev-{i}" for i in range(len(tweets.y))]
    )
    fold = fold_of(groups, n_folds, seed)
    probs = np.zeros((len(y), 3), dtype=np.float32)
    for f in range(n_folds):
        train = np.flatnonzero(fold != f)
        inner = fold_of(groups[train], 7, seed + 1) == 0  # ~1/7 of the groups: early stopping
        tr, dv = train[~inner], train[inner]
        head, score, epoch = tt.train_head(x[tr], y[tr], x[dv], y[dv], config, seed=seed)
        tt.fit_temperature(head, x[dv], y[dv])
        with torch.no_grad():
            probs[fold == f] = torch.softmax(head(torch.from_numpy(x[fold == f])), -1).numpy()
        say(progress, f"text fold {f + 1}/{n_folds}: dev weighted F1 {score:.3f} (epoch {epoch})")
    preds = probs_to_predictions(probs, TEXT_LABELS)
    texts = meld.texts + tweets.texts
    rows = [
        (texts[i], y[i], groups[i], p.valence, p.confidence, probs[i]) for i, p in enumerate(preds)
    ]
    return _scores("text", rows, model_id, f"{n_folds}-fold out-of-fold by dialogue, {config}")


def cached_scores(
    cache: Path, key: dict[str, Any], make: Callable[[], ModalityScores]
) -> ModalityScores:
    """``make()``, cached in ``cache`` as .npz under a digest of ``key``."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, key], sort_keys=True).encode()).hexdigest()
    path = Path(cache) / f"{key['modality']}-{digest[:16]}.npz"
    if path.is_file():
        with np.load(path) as z:
            fields: dict[str, Any] = {
                f: z[f] if z[f].ndim else str(z[f]) for f in ModalityScores._fields
            }
            return ModalityScores(**fields)
    scores = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, Any] = {f: np.asarray(v) for f, v in scores._asdict().items()}
    np.savez(path, **arrays)
    return scores


def shared_scores(
    data_root: Path, *, cache: Path, seed: int, n_folds: int, progress: Progress | None = None
) -> dict[str, ModalityScores]:
    """Held-out scores of the three shipped component models on the shared corpora."""
    root = Path(data_root).resolve()
    out = {}
    makers: dict[str, Callable[[], ModalityScores]] = {
        "face": lambda: face_scores(root / "ckplus48"),
        "voice": lambda: voice_scores(
            root, cache=Path("/tmp/sentistream-voice-features"), seed=seed
        ),
        "text": lambda: text_scores(
            root,
            cache=Path("/tmp/sentistream-text-cache"),
            seed=seed,
            n_folds=n_folds,
            progress=progress,
        ),
    }
    for m, make in makers.items():
        say(progress, f"held-out {m} scores ...")
        key = {
            "modality": m,
            "root": str(root),
            "seed": seed,
            "n_folds": n_folds,
            "bundles": _bundle_ids(),
        }
        out[m] = cached_scores(cache, key, make)
        say(progress, f"held-out {m} scores: {len(out[m].y)} items ({out[m].model_id})")
    return out


def _bundle_ids() -> dict[str, str]:
    """Ids (and weight digests) of the shipped component bundles: the score cache's key."""
    from sentistream.models.bundle import BUNDLE_FILE, WEIGHTS_FILE, shipped_weights_dir

    ids = {}
    for meta in sorted(shipped_weights_dir().glob(f"*/{BUNDLE_FILE}")):
        if meta.parent.name.startswith("fusion"):
            continue
        weights = meta.parent / WEIGHTS_FILE
        digest = hashlib.sha1(weights.read_bytes()).hexdigest()[:12] if weights.is_file() else ""
        ids[meta.parent.name] = digest
    return ids


def component_metrics(scores: ModalityScores, *, seed: int) -> dict[str, Any]:
    """Each component's own held-out figures, with the ECE of the confidence it emits."""
    pred = scores.probs.argmax(axis=1)
    return {
        "model_id": scores.model_id,
        "how": scores.how,
        "n_items": len(scores.y),
        "n_groups": len(set(scores.groups.tolist())),
        "class_counts": np.bincount(scores.y, minlength=3).tolist(),
        "emitted_confidence": classification_summary(
            scores.y, pred, scores.confidence, 3, seed=seed
        ),
        "ece_max_probability": classification_summary(
            scores.y, pred, scores.probs.max(axis=1), 3, seed=seed, n_boot=1
        )["ece"],
    }
