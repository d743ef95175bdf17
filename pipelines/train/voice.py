"""``sentistream train voice`` (the shared data root: the voice recipe,
``models/training/voice.py``; any other dataset: valence heads on the same features,
chosen on a dev side of speakers) and ``sentistream evaluate voice``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.examples import Example
from sentistream.models.training.splits import assign_splits
from sentistream.pipelines.train import common
from sentistream.pipelines.train.common import TrainRequest


def evaluate(args: TrainRequest) -> dict[str, Any]:
    """Each group (speaker) one channel in the data's order, channel-normalised as ``run``
    scores it (``VoiceConfig.channel_normalise``), and every clip alone."""
    from sentistream.models.audio import read_audio
    from sentistream.models.voice.model import VoiceEmotionModel

    examples = common.load_examples(args)
    model = VoiceEmotionModel.load(args.bundle, threads=args.threads)
    args.say(f"scoring {len(examples)} clips with {model.model_id}")
    groups = sorted({e.group for e in examples})
    order = [e for g in groups for e in examples if e.group == g]
    feats = model.features([read_audio(e.path_or_text) for e in order])
    by_group = [np.flatnonzero([e.group == g for e in order]) for g in groups]
    views = {
        "channel (as run scores it)": [
            p for rows in by_group for p in model.predict_features(feats[rows], "channel")
        ],
        "clips alone": model.predict_features(feats),
    }
    metrics = {}
    for view, preds in views.items():
        probs = np.array([[p.probs[k] for k in LABELS] for p in preds])
        conf = np.array([p.confidence for p in preds])
        metrics[view] = common.summary(args, order, probs, conf)
    return common.eval_report(args, model.model_id, order, metrics, "voice valence")


def train(args: TrainRequest) -> dict[str, Any]:
    if args.layout == "auto" and common.is_root(args.data, ("ravdess_audio", "tess")):
        from sentistream.models.training import voice as recipe

        args.say("data root: running the voice recipe (models/training/voice.py)")
        name = args.name or recipe.NAME
        meta = recipe.train(
            args.data,
            args.out,
            args.cache / "voice",
            args.seed,
            name,
            args.threads,
            voiced_only=args.voiced_only,
        )
        return common.delegated_report(args, meta, "models/training/voice.py", dict(meta.metrics))
    return _train_voice_generic(args)


def _clips(examples: list[Example]) -> list[Any]:
    from sentistream.models.training.voice_fit import EMOTIONS, Clip

    return [
        Clip(
            e.path_or_text,
            e.corpus,
            e.group,
            e.emotion,
            LABELS.index(e.label),
            EMOTIONS.index(e.emotion) if e.emotion in EMOTIONS else -1,
        )
        for e in examples
    ]


def _train_voice_generic(args: TrainRequest) -> dict[str, Any]:
    """Flat valence heads (``plain`` and ``channel``) on the recipe's features; the config
    with the best dev macro-F1 of the ``plain`` head."""
    import torch

    from sentistream.models.bundle import write_bundle
    from sentistream.models.training import voice_fit as vr
    from sentistream.models.voice import features as vf
    from sentistream.models.voice.model import HEAD, confidence_from_probs

    examples = common.load_examples(args)
    sides = assign_splits(examples, args.dev_fraction, args.seed)
    order = sides["train"] + sides["dev"] + sides["test"]
    clips = _clips(order)
    args.say(f"encoding {len(clips)} clips (cache {args.cache})")
    x = vr.extract(clips, args.cache / "voice-features", args.threads)
    n_tr, n_dv = len(sides["train"]), len(sides["dev"])
    tr, dv, te = np.arange(n_tr), np.arange(n_tr, n_tr + n_dv), np.arange(n_tr + n_dv, len(order))
    y = vr.column(clips, "valence")
    best: tuple[float, vr.Config] | None = None
    for cfg in vr.make_grid((0.0, 6.0), (False,)):
        pred = vr.fit(x, clips, tr, cfg, "plain").logits(x[dv]).argmax(1)
        f1 = vr.scores(y[dv], pred)["macro_f1"]
        args.say(f"{cfg}: dev macro-F1 {f1:.3f}")
        if best is None or f1 > best[0] + 1e-9:
            best = (f1, cfg)
    assert best is not None
    cfg = best[1]
    heads = vf.VoiceHeads(in_features=x.shape[1], n_classes=len(LABELS))
    for mode, head in (("plain", heads.plain), ("channel", heads.channel)):
        f = vr.fit(x, clips, tr, cfg, mode)
        state = {"mean": f.mean, "scale": f.scale, "linear.weight": f.model.coef_}
        state |= {"linear.bias": f.model.intercept_}
        head.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in state.items()})
    prior = vf.channel_prior(x[tr], vr.column(clips, "speaker")[tr])
    heads.prior_mean.copy_(torch.from_numpy(prior[0]))
    heads.prior_var.copy_(torch.from_numpy(prior[1]))
    eval_side = te if len(te) else dv
    probs = vr.probs(vr.fit(x, clips, tr, cfg, "plain").logits(x[eval_side]), False)[0]
    side = "test" if len(te) else "dev (model selection side: optimistic)"
    eval_examples = [order[i] for i in eval_side]
    metrics = {side: common.summary(args, eval_examples, probs, confidence_from_probs(probs))}
    params = {
        "head": HEAD,
        "target": "valence",
        "in_features": int(x.shape[1]),
        "prior_weight": 1.0,
        "bucket_s": 1.0,
        "train_config": cfg._asdict(),
    }
    name = args.name or "voice-custom"
    task = "voice valence (Whisper-encoder + prosody heads)"

    def report(meta: Any) -> dict[str, Any]:
        return common.trained_report(args, meta, order, sides, metrics, task)

    meta = write_bundle(
        args.out,
        name=name,
        kind="voice",
        version="1",
        labels=LABELS,
        state=heads.state_dict(),
        params=params,
        training_data={
            "data": str(args.data),
            "speakers": sorted(set(vr.column(clips, "speaker"))),
        },
        metrics={k: common.headline_of(v) for k, v in metrics.items()},
        card=common.card_of(report),
    )
    return report(meta)
