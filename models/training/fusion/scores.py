"""Held-out scores of the three default component bundles (``DEFAULT_BUNDLES``) on real
labelled items their models never trained on: the inputs of the fusion's paired examples
(see :mod:`sentistream.models.training.fusion.train`). Face: the bundle on CK+; voice:
out-of-fold scores of the voice recipe by speaker (RAVDESS, TESS, Emo-DB); text: the bundle
on the MELD train dialogues the text recipe held out. A disk cache for them, and each
component's figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.bundle import (
    BUNDLE_FILE,
    DEFAULT_BUNDLES,
    WEIGHTS_FILE,
    load_bundle_meta,
    shipped_weights_dir,
)
from sentistream.models.face.model import (
    FaceBox,
    FaceExpressionModel,
    aggregate_segment,
    valence_masses,
)
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.text.model import TextSentimentModel, probs_to_predictions
from sentistream.models.training.corpora import read_ckplus
from sentistream.models.training.face import read_crops
from sentistream.models.training.fusion.pairs import ModalityScores, Progress, say
from sentistream.models.training.metrics import classification_summary
from sentistream.models.training.splits import dev_mask
from sentistream.models.training.text_head import DEV_FRACTION, SEED, load_meld
from sentistream.models.voice.model import predictions_from_outputs

CACHE_VERSION = "fusion-scores-v3"


def face_scores(ckplus_root: Path, bundle: str = DEFAULT_BUNDLES["face"]) -> ModalityScores:
    """CK+ sequences (negative / positive only) scored like a pipeline segment."""
    examples = [e for e in read_ckplus(ckplus_root) if e.label in LABELS]
    model = FaceExpressionModel.load(bundle)
    crops = read_crops([e.path_or_text for e in examples])
    probs = model.predict(crops)
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
    data_root: Path, *, seed: int, cache: Path, bundle: str = DEFAULT_BUNDLES["voice"]
) -> ModalityScores:
    """Out-of-fold scores of the voice bundle's recipe: its ``channel`` head settings
    (``params["heads"]``) refitted on the other folds of whole training speakers (the bundle
    trains on every speaker there is, so none is held out of it), each speaker's clips one
    channel in a seeded random order, channel-normalised as the pipeline scores them. The
    pipeline dev set's speakers are not read."""
    from sentistream.models.training import voice_fit as vr
    from sentistream.models.training.voice import OUTER_FOLDS

    meta = load_bundle_meta(bundle, expected_kind="voice")
    cfg = vr.Config(**meta.params["heads"]["channel"]["config"])
    clips = vr.read_clips(Path(data_root).resolve())
    x = vr.extract(clips, Path(cache) / "voice" / "features", threads=2)
    order, probs = vr.out_of_fold(x, clips, cfg, "channel", OUTER_FOLDS, seed)
    y, keep = vr.column(clips, "valence")[order], vr.column(clips, "valence")[order] >= 0
    preds = predictions_from_outputs(probs[keep], None, LABELS)
    rows = [
        (clips[i].path, int(y_i), clips[i].speaker, p.valence, p.confidence, list(pr))
        for i, y_i, p, pr in zip(order[keep], y[keep], preds, probs[keep], strict=True)
    ]
    how = (
        f"out-of-fold scores of the bundle's recipe on {len({r[2] for r in rows})} speakers "
        f"({OUTER_FOLDS} folds of whole speakers), channel-normalised per speaker in a "
        "seeded random order (as the pipeline)"
    )
    return _scores("voice", rows, meta.model_id, how)


def text_scores(
    data_root: Path, *, seed: int, bundle: str = DEFAULT_BUNDLES["text"]
) -> ModalityScores:
    """The text bundle itself on the MELD train dialogues its recipe held out (model
    selection: early stopping, grid, temperature; never a gradient step). MELD dev, the
    text model's test side, is not used."""
    model = TextSentimentModel.load(bundle)
    meld = load_meld(Path(data_root) / "meld" / "train_sent_emo.csv")
    held = np.flatnonzero(dev_mask(meld.groups, DEV_FRACTION, SEED))
    texts = [meld.texts[i] for i in held]
    probs = model.predict_proba(texts)
    preds = probs_to_predictions(probs, model.labels)
    rows = [
        (
            texts[k],
            int(meld.y[i]),
            f"meld-train-{meld.groups[i]}",
            p.valence,
            p.confidence,
            probs[k],
        )
        for k, (i, p) in enumerate(zip(held, preds, strict=True))
    ]
    how = "the bundle on the MELD train dialogues its recipe held out for model selection"
    return _scores("text", rows, model.model_id, how)


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
        "voice": lambda: voice_scores(root, seed=seed, cache=cache),
        "text": lambda: text_scores(root, seed=seed),
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
