"""``sentistream train text`` (the shared data root: the text recipe,
``models/training/text.py``; any other dataset: its first stage, a MiniLM + VADER head
chosen on a dev side of groups) and ``sentistream evaluate text``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.splits import assign_splits
from sentistream.pipelines.train import common
from sentistream.pipelines.train.common import TrainRequest


def evaluate(args: TrainRequest) -> dict[str, Any]:
    from sentistream.models.text.model import TextSentimentModel

    examples = common.load_examples(args)
    model = TextSentimentModel.load(args.bundle)
    args.say(f"scoring {len(examples)} texts with {model.model_id}")
    probs = model.predict_proba([e.path_or_text for e in examples])
    metrics = {"all": common.summary(args, examples, probs, probs.max(axis=1))}
    return common.eval_report(args, model.model_id, examples, metrics, "text sentiment")


def train(args: TrainRequest) -> dict[str, Any]:
    if args.layout == "auto" and common.is_root(args.data, ("meld", "tweeteval")):
        from sentistream.models.bundle import load_bundle_meta
        from sentistream.models.training import text as recipe

        args.say("data root: running the text recipe (models/training/text.py)")
        out = ["--data", str(args.data), "--out", str(args.out), "--threads", str(args.threads)]
        theirs = recipe.main([*out, "--cache", str(args.cache / "text"), *args.delegate_args])
        meta = load_bundle_meta(theirs["bundle"], expected_kind="text")
        headline = {"meld_dev": common.headline_of(theirs["metrics"]["meld_dev"])}
        return common.delegated_report(args, meta, "models/training/text.py", headline)
    return _train_text_generic(args)


def _train_text_generic(args: TrainRequest) -> dict[str, Any]:
    import torch

    from sentistream.models.bundle import write_bundle
    from sentistream.models.text.features import assemble_features, normalize_text
    from sentistream.models.training import text_head as th

    examples = common.load_examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    encoder = th.lazy_encoder()
    data = {}
    for side, items in sides.items():
        if items:
            texts = [normalize_text(e.path_or_text) for e in items]
            feats = th.cached_features(texts, args.cache, encoder)
            data[side] = (feats, np.array([LABELS.index(e.label) for e in items]))
    best = None
    for config in th.grid([0]):
        x = {s: assemble_features(config.features, f) for s, (f, _) in data.items()}
        head, score, epoch = th.train_head(
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
    temperature = th.fit_head_temperature(head, x["dev"], data["dev"][1])
    side = "test" if "test" in data else "dev"
    with torch.no_grad():
        probs = torch.softmax(head(torch.from_numpy(x[side])), -1).numpy()
    label = side if side == "test" else "dev (model selection side: optimistic)"
    metrics = {label: common.summary(args, sides[side], probs, probs.max(axis=1))}
    params = {
        "features": list(config.features),
        "embedding_dim": th.EMBEDDING_DIM,
        "hidden": config.hidden,
        "dropout": 0.0,
    }
    selected = {**config._asdict(), "temperature": temperature}
    task = "text sentiment (MiniLM + VADER head)"

    def report(meta: Any) -> dict[str, Any]:
        return common.trained_report(args, meta, examples, sides, metrics, task)

    meta = write_bundle(
        args.out,
        name=args.name or "text-custom",
        kind="text",
        version="1",
        labels=LABELS,
        state=head.state_dict(),
        params=params,
        training_data={"data": str(args.data)},
        metrics={"selected": selected, **{k: common.headline_of(v) for k, v in metrics.items()}},
        card=common.card_of(report),
    )
    return report(meta)
