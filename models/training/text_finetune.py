"""The fine-tuning stage of the text recipe (:mod:`sentistream.models.training.text`): the
top MiniLM layers and the head train together on cached token states of the frozen
bottom layers, from the linear probe; early stopping on the internal dev weighted F1;
each config's result cached on disk.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.text.encoder import (
    NUM_LAYERS,
    TokenStates,
    TopLayersNet,
    embed_all,
    length_batches,
    pad_batch,
    subset,
)
from sentistream.models.text.model import (
    TextHead,
    TextSentimentModel,
)
from sentistream.models.training.text_head import (
    EMBEDDING_DIM,
    Config,
    train_head,
    weighted_f1,
)

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
    """Head on the frozen embeddings + VADER (the recipe's first stage)."""
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
