"""``sentistream train voice`` (the shared data root: ``models/training/voice_train.py`` itself;
any other dataset: a head on Whisper-encoder features, chosen on a dev side of speakers)
and ``sentistream evaluate voice``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from sentistream.models.training.datasets import LABELS, Example, assign_splits
from sentistream.pipelines.train.common import (
    delegated_report,
    eval_report,
    headline_of,
    is_root,
    load_examples,
    model_id_of,
    summary,
    trained_report,
)


def _voice_clips(examples: list[Example]) -> list[Any]:
    from sentistream.models.training.voice_train import HIGH_AROUSAL, LOW_AROUSAL, Clip

    return [
        Clip(
            e.path_or_text,
            e.corpus,
            e.group,
            e.emotion,
            LABELS.index(e.label),
            1 if e.emotion in HIGH_AROUSAL else 0 if e.emotion in LOW_AROUSAL else -1,
        )
        for e in examples
    ]


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.voice.model import VoiceEmotionModel
    from sentistream.models.training.voice_train import read_wav
    from sentistream.models.whisper import resample_to_16k

    examples = load_examples(args)
    model = VoiceEmotionModel.load(args.bundle, threads=args.threads)
    args.say(f"scoring {len(examples)} clips with {model.model_id}")
    preds = model.predict([resample_to_16k(*read_wav(Path(e.path_or_text))) for e in examples])
    probs = np.array([[p.probs[k] for k in LABELS] for p in preds])
    conf = np.array([p.confidence for p in preds])
    metrics = {
        "emitted_confidence": summary(args, examples, probs, conf),
        "max_probability": summary(args, examples, probs, probs.max(axis=1)),
    }
    return eval_report(args, model.model_id, examples, metrics, "voice valence")


def train(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.training import voice_train as vt

    if args.layout == "auto" and is_root(args.data, ("ravdess_audio", "tess")):
        args.say("data root: running models/training/voice_train.py (LOSO + cross-corpus)")
        seed = ["--seed", str(args.seed)]
        vt.main(["--data", str(args.data), "--out", str(args.out), *seed])
        theirs = json.loads((args.out / f"{vt.NAME}.report.json").read_text())
        return delegated_report(
            args,
            "voice",
            theirs,
            {
                "loso_mean": theirs["loso"]["mean"],
                "cross_corpus": [
                    {k: c[k] for k in ("train_speakers", "test_speakers", "accuracy", "macro_f1")}
                    for c in theirs["cross_corpus"]
                ],
            },
        )
    return _train_voice_generic(args)


def _train_voice_generic(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sentistream.models.training import voice_train as vt
    from sentistream.models.bundle import BundleMeta, save_bundle_meta
    from sentistream.models.whisper import FRONTEND_VERSION, default_model_dir

    examples = load_examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    order = sides["train"] + sides["dev"] + sides["test"]
    clips = _voice_clips(order)
    args.say(f"encoding {len(clips)} clips (cache {args.cache})")
    feats = vt.extract_features(
        clips, ("clean",), cache=args.cache, model_dir=default_model_dir(), seed=args.seed
    )
    n_tr, n_dv = len(sides["train"]), len(sides["dev"])
    tr, dv = np.arange(n_tr), np.arange(n_tr, n_tr + n_dv)
    te = np.arange(n_tr + n_dv, len(order))
    y = np.array([c.label for c in clips])
    best = None
    for hp in (h for h in vt.DEFAULT_GRID if not h.augment):
        pred, _ = vt.predict(vt.fit_head(feats, clips, tr, hp, args.seed), feats["clean"][dv])
        f1 = vt.scores(y[dv], pred)["macro_f1"]
        args.say(f"{hp}: dev macro-F1 {f1:.3f}")
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, hp)
    assert best is not None
    hp = best[1]
    head = vt.fit_head(feats, clips, tr, hp, args.seed)
    name = args.name or "voice-custom"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out / f"{name}.pt")
    params = {
        "in_features": int(head.mean.shape[0]),
        "n_classes": 3,
        "hidden": hp.hidden,
        "dropout": 0.0,
        "arousal": True,
        "bucket_s": vt.BUCKET_S,
        "sample_rate": 16000,
        "frontend": FRONTEND_VERSION,
        "train_hparams": hp._asdict(),
    }
    eval_side = te if len(te) else dv
    with torch.no_grad():
        probs = torch.softmax(
            head(torch.from_numpy(feats["clean"][eval_side])).valence_logits, -1
        ).numpy()
    from sentistream.models.voice.model import confidence_from_probs

    eval_examples = [order[i] for i in eval_side]
    metrics = {
        "test" if len(te) else "dev (model selection side: optimistic)": summary(
            args, eval_examples, probs, confidence_from_probs(probs)
        )
    }
    meta = BundleMeta(
        name,
        model_id_of(name, args.out),
        "voice",
        LABELS,
        f"{name}.pt",
        params,
        {"data": str(args.data)},
        {k: headline_of(v) for k, v in metrics.items()},
    )
    save_bundle_meta(meta, args.out)
    return trained_report(args, meta, order, sides, metrics, "voice valence (Whisper-encoder head)")
