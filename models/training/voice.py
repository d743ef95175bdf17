"""Train and evaluate the voice bundle (``voice-whisper-tiny-v3``) on RAVDESS, TESS and
Emo-DB, without the pipeline dev set's speakers (``splits.DEV_VOICE_GROUPS``).

``sentistream train voice --data ../shared/data --out /tmp/bundles`` (or ``python -m
sentistream.models.training.voice --data ../shared/data --out /tmp/bundles``) writes
``<out>/voice-whisper-tiny-v3/`` (weights, ``bundle.json``, card, ``report.json``).

Leave-speakers-out (:data:`OUTER_FOLDS` folds of whole speakers) and leave-one-corpus-out
evaluation of each recipe of :mod:`sentistream.models.training.voice_fit` (settings picked
by inner k-fold by speaker on the training speakers only), then the shipped ``plain`` and
``channel`` heads fitted on every training speaker. Seeded; deterministic on CPU with one
thread for the heads (``threads`` only sets the encoder's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.bundle import DEFAULT_BUNDLES, BundleMeta, write_bundle
from sentistream.models.labels import VALENCE_LABELS
from sentistream.models.training import recipe_cards
from sentistream.models.training import voice_fit as vr
from sentistream.models.training.metrics import confusion
from sentistream.models.training.metrics import expected_calibration_error as ece
from sentistream.models.training.splits import DEV_VOICE_GROUPS, group_folds
from sentistream.models.voice import features as vf
from sentistream.models.voice.model import HEAD, confidence_from_probs
from sentistream.models.whisper import FRONTEND_VERSION

NAME = DEFAULT_BUNDLES["voice"]
VERSION = "3"
#: Features of the voiced frames only (Silero VAD inside each clip; training and
#: ``VoiceEmotionModel.features`` then read clips the same way, bundle
#: ``params["voiced_only"]``). Off by default: measured, it does not help (docs/models.md
#: "Voiced frames only"); ``sentistream train voice --voiced-only`` trains such a bundle.
VOICED_ONLY = False
OUTER_FOLDS = 6
CORPORA = ("ravdess", "tess", "emodb")
LICENCES = {
    "ravdess": "RAVDESS speech (Livingstone & Russo 2018), CC BY-NC-SA 4.0",
    "tess": "Toronto Emotional Speech Set (Dupuis & Pichora-Fuller 2010), CC BY-NC-ND 4.0",
    "emodb": "Berlin Database of Emotional Speech (Burkhardt et al. 2005), free for research",
}
MIN_CHANNEL_CLIPS = 6  # leave-speakers-out: channel head 0.66 (clip 1), 0.72 (2-5), 0.79 (6+)
SPANS = {"1": (0, 1), "2-5": (1, 5), "6-20": (5, 20), "21+": (20, 10**6)}


def _emotion_figures(
    pe: np.ndarray, order: np.ndarray, clips: list[vr.Clip], train: np.ndarray, n_views: int
) -> tuple[dict[str, Any], float]:
    """7-emotion figures (calm left out) and the arousal accuracy of one fold."""
    tgt, emo = vr.column(clips, "target"), vr.column(clips, "emotion")
    sel = (emo[order] != "calm") & (tgt[order] >= 0)
    aro = np.where(tgt[order] >= 0, np.asarray(vf.EMOTION_AROUSAL)[tgt[order]], -1)
    ye, pred_e = tgt[order][sel], pe[sel].argmax(1)
    high = vf.valence_arousal(pe)[1] >= 0.5
    top = np.bincount(tgt[train][tgt[train] >= 0]).argmax()
    figures = {
        **vr.scores(ye, pred_e),
        "n": int(sel.sum()) // n_views,
        "chance": 1 / len(vr.EMOTIONS),
        "majority_accuracy": float(np.mean(ye == top)),
        "confusion": confusion(ye, pred_e, len(vr.EMOTIONS)),
    }
    return figures, float(np.mean(high[aro >= 0] == aro[aro >= 0]))


def evaluate(
    x_all: np.ndarray,
    clips: list[vr.Clip],
    train: np.ndarray,
    test: np.ndarray,
    recipe: vr.Recipe,
    seed: int,
) -> dict[str, Any]:
    """Select on ``train``, fit, score ``test`` (all views pooled) against baselines."""
    y, spk = vr.column(clips, "valence"), vr.column(clips, "speaker")
    cfg, inner_f1 = vr.select(x_all, clips, train, recipe, seed)
    views = vr.held_out_views(x_all, clips, train, test, recipe.mode, seed)
    order, pos, x = (np.concatenate(p) for p in zip(*views, strict=True))
    z, keep = vr.fit(x_all, clips, train, cfg, recipe.mode).logits(x), y[order] >= 0
    (pv, pe), yv = vr.probs(z, cfg.hierarchical), y[order][keep]
    pred, majority = pv[keep].argmax(1), np.bincount(y[train][y[train] >= 0]).argmax()
    hit, conf = pred == yv, confidence_from_probs(pv[keep])
    out = {
        "train_speakers": sorted(set(spk[train])),
        "test_speakers": sorted(set(spk[test])),
        "n_test": int(keep.sum()) // len(views),
        **vr.scores(yv, pred),
        "majority": vr.scores(yv, np.full(len(yv), majority)),
        "ece_max_prob": ece(pv[keep].max(1), hit),
        "ece_emitted_confidence": ece(conf, hit),
        "confusion": confusion(yv, pred, len(VALENCE_LABELS)),
        "config": cfg._asdict(),
        "inner_cv_macro_f1": inner_f1,
    }
    if recipe.mode == "channel":
        p = pos[keep]
        out["accuracy_by_channel_position"] = {
            k: float(hit[(p >= a) & (p < b)].mean()) for k, (a, b) in SPANS.items()
        }
    if pe is not None:
        out["emotion"], out["arousal_accuracy"] = _emotion_figures(
            pe, order, clips, train, len(views)
        )
    return out


def _mean(folds: list[dict[str, Any]]) -> dict[str, float]:
    """Mean over folds of every float figure (``majority`` / ``emotion`` ones prefixed)
    that every fold has (a fold that chose the flat valence head has no emotion figures)."""
    flat = [
        f | {f"{p}_{k}": v for p in ("majority", "emotion") for k, v in f.get(p, {}).items()}
        for f in folds
    ]
    keys = [k for k, v in flat[0].items() if isinstance(v, float) and all(k in f for f in flat)]
    return {k: float(np.mean([f[k] for f in flat])) for k in keys}


def run_recipe(x: np.ndarray, clips: list[vr.Clip], recipe: vr.Recipe, seed: int) -> dict:
    """Leave-speakers-out and leave-one-corpus-out results of one recipe."""
    every, speaker = np.arange(len(clips)), vr.column(clips, "speaker")
    corpus, fold = vr.column(clips, "corpus"), group_folds(speaker, OUTER_FOLDS, seed)
    folds = [
        evaluate(x, clips, every[fold != k], every[fold == k], recipe, seed)
        for k in range(OUTER_FOLDS)
    ]
    loco = {
        c: evaluate(x, clips, every[corpus != c], every[corpus == c], recipe, seed)
        for c in CORPORA
        if np.any(corpus == c) and np.any(corpus != c)
    }
    return {
        "lso": {"folds": folds, "mean": _mean(folds)},
        "loco": {"corpora": loco, "mean": _mean(list(loco.values()))},
    }


HEADLINE = ("accuracy", "macro_f1", "majority_accuracy", "ece_max_prob")


def _headline(r: dict[str, Any]) -> dict[str, float]:
    flat = r | {f"majority_{k}": v for k, v in r.get("majority", {}).items()}
    return {k: round(float(flat[k]), 4) for k in HEADLINE}


def save(heads: vf.VoiceHeads, report: dict[str, Any], out: Path, name: str = NAME) -> BundleMeta:
    """Write the bundle ``<out>/<name>/`` (weights, metadata, card, report)."""
    params = {
        "head": HEAD,
        "target": "emotion" if heads.plain.linear.out_features == len(vr.EMOTIONS) else "valence",
        "in_features": int(heads.plain.mean.shape[0]),
        "emotions": vr.EMOTIONS,
        "prior_weight": 1.0,
        # A channel's first clips are scored alone (plain head) until it has this many:
        # before that the channel statistics lean on the prior and the channel head is
        # worse than the clip alone (report: accuracy_by_channel_position).
        "min_channel_clips": MIN_CHANNEL_CLIPS,
        "bucket_s": 1.0,
        "voiced_only": bool(report.get("voiced_only", False)),
        "heads": report["final"],
        "encoder": f"whisper tiny.en, CTranslate2 int8, {FRONTEND_VERSION}",
    }
    corpora = sorted({s.split("-")[0] for s in report["n_clips"]})
    data: dict[str, Any] = {c: LICENCES[c] for c in corpora if c in LICENCES}
    data |= {
        "speakers": sorted(report["n_clips"]),
        "excluded_dev_speakers": list(DEV_VOICE_GROUPS),
        "labels": "acted emotion (calm: neutral; boredom: negative); valence sums emotions",
    }
    metrics: dict[str, Any] = {}
    for mode in ("plain", "channel"):
        r = report["recipes"][f"v3-{mode}"]
        metrics[f"lso_{mode}"] = _headline(r["lso"]["mean"])
        for c, f in r["loco"]["corpora"].items():
            metrics[f"loco_{c}_{mode}"] = _headline(f)
    return write_bundle(
        out,
        name=name,
        kind="voice",
        version=VERSION,
        labels=VALENCE_LABELS,
        state=heads.state_dict(),
        params=params,
        training_data=data,
        metrics=metrics,
        card=lambda meta: recipe_cards.voice_card(meta, report),
        report=report,
    )


def train(
    data: Path,
    out: Path,
    cache: Path,
    seed: int,
    name: str = NAME,
    threads: int = 1,
    voiced_only: bool = VOICED_ONLY,
) -> BundleMeta:
    """The whole recipe: features, every recipe's evaluation, the final heads, the bundle."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    clips = vr.read_clips(data)
    x = vr.extract(clips, cache / "features", threads, voiced_only=voiced_only)
    speakers = vr.column(clips, "speaker")
    with threadpool_limits(1):
        report: dict[str, Any] = {"name": name, "labels": VALENCE_LABELS, "seed": seed}
        report["voiced_only"] = voiced_only
        report["emotions"] = vr.EMOTIONS
        report["n_clips"] = {s: int(np.sum(speakers == s)) for s in np.unique(speakers)}
        report["recipes"] = {k: run_recipe(x, clips, r, seed) for k, r in vr.RECIPES.items()}
        heads, report["final"] = vr.final_heads(x, clips, seed)
    return save(heads, report, out, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="ravdess_audio/, tess/, emodb/")
    parser.add_argument("--out", type=Path, required=True, help="bundles folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-voice-v3"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="encoder threads")
    args = parser.parse_args(argv)
    meta = train(args.data, args.out, args.cache, args.seed, threads=args.threads)
    print(json.dumps({"model_id": meta.model_id, **meta.metrics}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
