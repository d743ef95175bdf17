"""models/training/face_finetune.py: augmentation, the loss and a short real fine-tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.face.model import FER2013_LABELS, mini_xception, valence_masses
from sentistream.models.training import face_finetune as ft


def test_augment_keeps_shape_and_changes_pixels() -> None:
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (8, 48, 48), dtype=np.uint8)
    out = ft.Augment()(crops, rng)
    assert out.shape == crops.shape and out.dtype == np.uint8
    assert (out != crops).mean() > 0.5
    still = ft.Augment(0.0, (1.0, 1.0), 0.0, 0.0, 0.0, 0.0, (1.0, 1.0), 0.0)(crops, rng)
    assert np.array_equal(still, crops)  # every augmentation off: the identity


def test_loss_counts_valence_only_where_it_is_known() -> None:
    w = torch.tensor(valence_masses(np.eye(7), FER2013_LABELS), dtype=torch.float32)
    logits = torch.zeros(2, 7, requires_grad=True)
    emo = torch.tensor([FER2013_LABELS.index("happy"), FER2013_LABELS.index("surprise")])
    with_val = ft._loss(logits, emo, torch.tensor([2, -1]), w)
    ce_only = ft._loss(logits, emo, torch.tensor([-1, -1]), w)
    assert float(with_val.detach()) > float(ce_only.detach()) > 0
    with_val.backward()
    assert logits.grad is not None and bool(torch.isfinite(logits.grad).all())


def test_valence_accuracy_leaves_out_surprise() -> None:
    probs = np.zeros((3, 7))
    probs[0, FER2013_LABELS.index("happy")] = 1  # positive, right
    probs[1, FER2013_LABELS.index("sad")] = 1  # negative, called neutral: wrong
    probs[2, FER2013_LABELS.index("surprise")] = 1  # ambiguous: not counted
    assert ft.valence_accuracy(probs, np.array([2, 1, -1])) == pytest.approx(0.5)


@pytest.mark.data
@pytest.mark.slow
def test_a_short_fine_tune_returns_strict_weights_and_keeps_the_best_epoch(
    shared_data: Path,
) -> None:
    from sentistream.models.training.datasets import read_dataset

    examples = read_dataset(shared_data / "fer2013")
    train = [e for e in examples if e.split == "train"][::700]  # ~41 faces, every class
    dev = [e for e in examples if e.split == "dev"][::180]
    state, fit = ft.finetune(train, dev, epochs=1, threads=1, say=lambda _: None)
    mini_xception(num_classes=7).load_state_dict(state, strict=True)
    assert [h["epoch"] for h in fit["history"]] == [0, 1]
    best = max(h["dev_valence_acc"] for h in fit["history"])
    assert fit["dev_valence_acc"] == best
    assert fit["history"][fit["best_epoch"]]["dev_valence_acc"] == best
