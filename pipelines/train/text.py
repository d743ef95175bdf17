"""``sentistream train text`` (the shared data root: ``models/training/text_train.py`` itself; any
other dataset: a MiniLM + VADER head chosen on a dev side of groups) and
``sentistream evaluate text``.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from sentistream.models.training.datasets import LABELS, assign_splits
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


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.text.model import TextSentimentModel

    examples = load_examples(args)
    model = TextSentimentModel.load(args.bundle)
    args.say(f"scoring {len(examples)} texts with {model.model_id}")
    probs = model.predict_proba([e.path_or_text for e in examples])
    metrics = {"all": summary(args, examples, probs, probs.max(axis=1))}
    return eval_report(args, model.model_id, examples, metrics, "text sentiment")


def train(args: argparse.Namespace) -> dict[str, Any]:
    from sentistream.models.training import text_train as tt

    if args.layout == "auto" and is_root(args.data, ("meld", "tweeteval")):
        args.say("data root: running models/training/text_train.py (MELD train + TweetEval)")
        theirs = tt.main(["--data", str(args.data), "--out", str(args.out), *args.delegate_args])
        return delegated_report(args, "text", theirs, {"meld_dev": theirs["metrics"]["meld_dev"]})
    return _train_text_generic(args)


def _train_text_generic(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sentistream.models.training import text_train as tt
    from sentistream.models.bundle import BundleMeta, save_bundle_meta
    from sentistream.models.text.model import normalize_text
    from sentistream.models.training.text_data import lazy_encoder

    examples = load_examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    encoder = lazy_encoder()

    data = {}
    for side, items in sides.items():
        if items:
            feats = tt.cached_features(
                [normalize_text(e.path_or_text) for e in items], args.cache, encoder
            )
            data[side] = (feats, np.array([LABELS.index(e.label) for e in items]))
    best = None
    for config in tt.grid([0]):
        x = {s: tt.assemble_features(config.features, f) for s, (f, _) in data.items()}
        head, score, epoch = tt.train_head(
            x["train"],
            data["train"][1],
            x["dev"],
            data["dev"][1],
            config,
            seed=args.seed,
            max_epochs=args.epochs,
        )
        args.say(f"{config}: dev weighted F1 {score:.3f} (epoch {epoch})")
        if best is None or score > best[0]:
            best = (score, config, head, x)
    assert best is not None
    score, config, head, x = best
    temperature = tt.fit_temperature(head, x["dev"], data["dev"][1])
    name = args.name or "text-custom"
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out / f"{name}.pt")
    side = "test" if "test" in data else "dev"
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(x[side])), -1).numpy()
    label = side if side == "test" else "dev (model selection side: optimistic)"
    metrics = {label: summary(args, sides[side], probs, probs.max(axis=1))}
    params = {
        "features": list(config.features),
        "embedding_dim": tt.EMBEDDING_DIM,
        "hidden": config.hidden,
        "dropout": 0.0,
    }
    selected = {**config._asdict(), "temperature": temperature}
    meta = BundleMeta(
        name,
        model_id_of(name, args.out),
        "text",
        LABELS,
        f"{name}.pt",
        params,
        {"data": str(args.data)},
        {"selected": selected, **{k: headline_of(v) for k, v in metrics.items()}},
    )
    save_bundle_meta(meta, args.out)
    return trained_report(
        args, meta, examples, sides, metrics, "text sentiment (MiniLM + VADER head)"
    )
