"""Training of the learned late fusion (:class:`sentistream.models.fusion.learned.LateFusionNet`):
modality dropout with every (subset, class) cell weighted alike, early stopping on the
dev NLL over every subset, temperature scaling, the hidden-width choice, and the bundle.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from sentistream.models.bundle import BundleMeta, write_bundle
from sentistream.models.fusion.learned import FEATURES_VERSION, MODALITIES, LateFusionNet
from sentistream.models.labels import VALENCE_LABELS as LABELS
from sentistream.models.training.fusion.pairs import (
    SUBSET_MASKS,
    PairSet,
    Predictor,
    Progress,
    expand_subsets,
    say,
    valid_subsets,
)
from sentistream.models.training.metrics import fit_temperature


class TrainConfig(NamedTuple):
    hidden: int = 16
    epochs: int = 200
    patience: int = 20
    lr: float = 1e-2
    weight_decay: float = 1e-3
    batch_size: int = 64


def cell_weights(subset: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(N,) float32 weights giving every (subset, class) cell present the same total weight
    (mean 1): each subset counts alike and is class-balanced within itself, whatever the
    modality dropout drew. Without it, a class that lacks a modality (neutral has no face
    here) would be over-represented among the rows without that modality."""
    cells = subset.astype(np.int64) * len(LABELS) + y
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    w = len(y) / (len(counts) * counts[inverse])
    return w.astype(np.float32)


def covers_all_classes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(3,) float 1/0: whether each modality is available for every class in (x, y)."""
    avail = x[:, :, 2] > 0.5
    return np.array(
        [all(avail[y == k, m].any() for k in range(len(LABELS))) for m in range(x.shape[1])],
        dtype=np.float32,
    )


def mean_confidence(x: np.ndarray) -> np.ndarray:
    """(3,) mean confidence of each modality where available (0.5 where never)."""
    avail = x[:, :, 2] > 0.5
    return np.array(
        [x[avail[:, m], m, 1].mean() if avail[:, m].any() else 0.5 for m in range(x.shape[1])],
        dtype=np.float32,
    )


def train_fusion(
    x: np.ndarray,
    y: np.ndarray,
    x_dev: np.ndarray,
    y_dev: np.ndarray,
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint: Path | None = None,
) -> tuple[LateFusionNet, dict[str, Any]]:
    """Minibatch AdamW with modality dropout (each epoch every pair keeps a uniformly drawn
    non-empty subset of its modalities; loss weighted by ``cell_weights``), early stopping
    on the weighted dev NLL over every subset of every dev pair (best state checkpointed),
    then temperature scaling on that dev set."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    net = LateFusionNet(hidden=config.hidden)
    net.confidence_mask.copy_(torch.from_numpy(covers_all_classes(x, y)))
    net.confidence_center.copy_(torch.from_numpy(mean_confidence(x)))
    keep = valid_subsets(x).any(axis=1)  # rows with no modality at all teach nothing
    if not keep.any() or not valid_subsets(x_dev).any():
        raise ValueError("the train and dev sides need rows with at least one modality")
    x, y = x[keep], y[keep]
    ok = torch.from_numpy(valid_subsets(x))
    masks = torch.from_numpy(SUBSET_MASKS.astype(np.float32))
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y.astype(np.int64))
    xd_np, yd_np, sd_np = expand_subsets(x_dev, y_dev, with_subsets=True)
    xd, yd = torch.from_numpy(xd_np.astype(np.float32)), torch.from_numpy(yd_np.astype(np.int64))
    wd = torch.from_numpy(cell_weights(sd_np, yd_np))
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = torch.nn.functional.cross_entropy
    best = (float("inf"), 0, copy.deepcopy(net.state_dict()))
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        choice = (torch.rand(ok.shape, generator=gen) * ok).argmax(dim=1)
        xb_all = xt * masks[choice].unsqueeze(-1)
        wb_all = torch.from_numpy(cell_weights(choice.numpy(), y))
        net.train()
        for idx in torch.randperm(len(yt), generator=gen).split(config.batch_size):
            opt.zero_grad()
            losses = loss_fn(net.raw_logits(xb_all[idx]), yt[idx], reduction="none")
            (losses * wb_all[idx]).mean().backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            dev_nll = float((loss_fn(net.raw_logits(xd), yd, reduction="none") * wd).mean())
        if dev_nll < best[0] - 1e-5:
            best = (dev_nll, epoch, copy.deepcopy(net.state_dict()))
            if checkpoint is not None:
                checkpoint.parent.mkdir(parents=True, exist_ok=True)
                torch.save(
                    {
                        "epoch": epoch,
                        "dev_nll": dev_nll,
                        "config": config._asdict(),
                        "state_dict": best[2],
                    },
                    checkpoint,
                )
        elif epoch - best[1] >= config.patience:
            break
        if epoch % 10 == 0:
            say(
                progress, f"  epoch {epoch}: dev NLL {dev_nll:.4f} (best {best[0]:.4f} @ {best[1]})"
            )
    net.load_state_dict(best[2], strict=True)
    with torch.no_grad():
        raw = net.raw_logits(xd).numpy()
    temperature = fit_temperature(raw, yd_np)
    net.temperature.fill_(temperature)
    info = {
        "hidden": config.hidden,
        "best_epoch": best[1],
        "epochs_run": epoch,
        "dev_nll": round(best[0], 4),
        "temperature": round(temperature, 4),
        "n_train": len(y),
        "n_dev_pairs": len(y_dev),
    }
    return net.eval(), info


def fit_select(
    pairs: PairSet,
    train: np.ndarray,
    dev: np.ndarray,
    hiddens: Sequence[int],
    config: TrainConfig,
    *,
    seed: int,
    progress: Progress | None = None,
    checkpoint_dir: Path | None = None,
    tag: str = "",
) -> tuple[LateFusionNet, dict[str, Any]]:
    """Train one net per hidden width; keep the lowest dev NLL."""
    best: tuple[LateFusionNet, dict[str, Any]] | None = None
    for h in hiddens:
        say(progress, f"{tag} hidden={h}: {len(train)} train / {len(dev)} dev pairs")
        ckpt = checkpoint_dir / f"{tag or 'fusion'}-h{h}.pt" if checkpoint_dir else None
        net, info = train_fusion(
            pairs.x[train],
            pairs.y[train],
            pairs.x[dev],
            pairs.y[dev],
            config._replace(hidden=h),
            seed=seed,
            progress=progress,
            checkpoint=ckpt,
        )
        if best is None or info["dev_nll"] < best[1]["dev_nll"]:
            best = (net, info)
    assert best is not None
    return best


def net_predictor(net: LateFusionNet) -> Predictor:
    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = net(torch.from_numpy(np.asarray(x, dtype=np.float32)))
        return out.probs.argmax(-1).numpy(), out.confidence.numpy()

    return predict


def save_bundle(
    net: LateFusionNet,
    out: Path,
    name: str,
    *,
    components: dict[str, str],
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    card: Callable[[BundleMeta], str],
    report: dict[str, Any] | None = None,
) -> BundleMeta:
    """Write the fusion bundle ``out/name/`` (``write_bundle``); ``components`` (modality ->
    component ``model_id``) is what ``LearnedFusion`` checks its inputs against."""
    hidden = net.net[0].out_features if isinstance(net.net, torch.nn.Sequential) else 0
    return write_bundle(
        out,
        name=name,
        kind="fusion",
        version="1",
        labels=LABELS,
        state=net.state_dict(),
        params={
            "modalities": list(MODALITIES),
            "features": FEATURES_VERSION,
            "hidden": hidden,
            "dropout": 0.0,
            "min_confidence": 0.0,
            "temperature": round(float(net.temperature), 4),
            "components": dict(components),
        },
        training_data=training_data,
        metrics=metrics,
        card=card,
        report=report,
    )
