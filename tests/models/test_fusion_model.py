"""Learned late fusion: the module, training with modality dropout, pairs, bundles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from sentistream.models.fusion.learned import (
    MODALITIES,
    FusedScore,
    LateFusionNet,
    LearnedFusion,
    inputs_from_results,
    modality_features,
)
from sentistream.models.training.fusion import compare as fc
from sentistream.models.training.fusion import fit as ff
from sentistream.models.training.fusion import pairs as fp
from sentistream.models.training.splits import group_folds


@dataclass(frozen=True)
class Result:
    """Stands in for the pipeline's ModalityResult (models never import transforms)."""

    present: bool
    valence: float | None = None
    confidence: float | None = None
    model_id: str | None = None


def synthetic(n: int, seed: int, *, no_neutral_face: bool = False) -> tuple[np.ndarray, ...]:
    """(N, 3, 3) inputs and labels: each modality's valence is noisy evidence of the class;
    a quarter of the modalities are missing at random."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 3, 3), np.float32)
    for m, strength in enumerate((0.8, 0.5, 0.7)):
        v = np.clip((y - 1) * strength + rng.normal(0, 0.35, n), -1, 1)
        c = np.clip(0.4 + 0.5 * np.abs(v) + rng.normal(0, 0.05, n), 0, 1)
        there = rng.uniform(size=n) > 0.25
        if m == 0 and no_neutral_face:
            there &= y != 1
        x[:, m] = np.stack([v, c, np.ones(n)], 1) * there[:, None]
    keep = x[:, :, 2].any(axis=1)
    return x[keep], y[keep]


@pytest.fixture(scope="module")
def trained() -> tuple[LateFusionNet, dict]:
    torch.set_num_threads(1)
    x, y = synthetic(1500, 0)
    xd, yd = synthetic(500, 1)
    return ff.train_fusion(x, y, xd, yd, ff.TrainConfig(hidden=8, epochs=60), seed=0)


def test_features_vanish_when_absent_and_when_neutral() -> None:
    x = torch.tensor([[[0.7, 0.9, 0.0], [0.0, 0.6, 1.0], [-0.5, 0.8, 1.0]]])
    mask, center = torch.tensor([0.0, 1.0, 1.0]), torch.tensor([0.5, 0.6, 0.5])
    phi = modality_features(x, mask, center).reshape(3, 5)
    assert phi[0].abs().sum() == 0  # absent: nothing, whatever its values say
    assert phi[1].abs().sum() == 0  # present, neutral valence, average confidence
    assert phi[2].tolist() == pytest.approx([-0.5, -0.4, 0.5, 0.4, 0.3])


def test_batch_equals_items_and_outputs_are_bounded() -> None:
    torch.manual_seed(0)
    net = LateFusionNet(hidden=16).eval()
    x, _ = synthetic(40, 2)
    xt = torch.from_numpy(x)
    batch = net(xt)
    for i in range(len(x)):
        one = net(xt[i : i + 1])
        torch.testing.assert_close(one.probs[0], batch.probs[i])
    torch.testing.assert_close(batch.probs.sum(1), torch.ones(len(x)))
    assert (batch.valence.abs() <= 1).all() and (batch.confidence >= 1 / 3 - 1e-6).all()


def test_trained_net_handles_every_subset(trained: tuple[LateFusionNet, dict]) -> None:
    net, info = trained
    assert info["best_epoch"] >= 1 and 0.05 <= info["temperature"] <= 20
    x, y = synthetic(2000, 3)
    predict = ff.net_predictor(net)
    ok = fp.valid_subsets(x)
    accuracy = {}
    for s, subset in enumerate(fp.SUBSETS):
        pred, conf = predict(fp.apply_subset(x[ok[:, s]], subset))
        accuracy[subset] = float(np.mean(pred == y[ok[:, s]]))
        assert ((conf >= 1 / 3 - 1e-6) & (conf <= 1)).all()
    assert min(accuracy.values()) > 0.55  # chance is 1/3
    assert accuracy[MODALITIES] > max(accuracy[(m,)] for m in MODALITIES)


def test_presence_alone_never_pushes_away_from_neutral(trained) -> None:
    net, _ = trained
    x, _ = synthetic(200, 4)
    x[:, 1] = 0  # voice absent ...
    with_voice = x.copy()
    center = float(net.confidence_center[1])
    with_voice[:, 1] = (0.0, center, 1.0)  # ... or present with a neutral, average reading
    keep = x[:, :, 2].any(axis=1)
    with torch.no_grad():
        before = net(torch.from_numpy(x[keep])).probs[:, 1]
        after = net(torch.from_numpy(with_voice[keep])).probs[:, 1]
    assert (after >= before - 1e-6).all()


def test_a_class_missing_a_modality_does_not_teach_presence() -> None:
    """No neutral faces in training (as with CK+): the face mask gets no confidence-alone
    feature, and the other modalities still work alone."""
    x, y = synthetic(1500, 5, no_neutral_face=True)
    xd, yd = synthetic(400, 6, no_neutral_face=True)
    net, _ = ff.train_fusion(x, y, xd, yd, ff.TrainConfig(hidden=0, epochs=40), seed=0)
    assert net.confidence_mask.tolist() == [0.0, 1.0, 1.0]
    xt, yt = synthetic(1500, 7)
    only_text = fp.apply_subset(xt, ("text",))
    rows = xt[:, 2, 2] > 0
    pred, _ = ff.net_predictor(net)(only_text[rows])
    assert np.mean(pred == yt[rows]) > 0.6
    assert np.mean(pred[yt[rows] == 1] == 1) > 0.4  # neutral still predicted without a face


def test_cell_weights_balance_subsets_and_classes() -> None:
    subset = np.array([0, 0, 0, 1, 1, 2])
    y = np.array([0, 0, 1, 1, 1, 2])
    w = ff.cell_weights(subset, y)
    assert w.mean() == pytest.approx(1.0)
    totals = {
        (s, k): w[(subset == s) & (y == k)].sum() for s, k in set(zip(subset, y, strict=True))
    }
    assert len(set(np.round(list(totals.values()), 6))) == 1


def _scores(modality: str, n_groups: int, labels: tuple[int, ...], seed: int) -> fp.ModalityScores:
    rng = np.random.default_rng(seed)
    n = n_groups * 6
    y = np.array([labels[i % len(labels)] for i in range(n)])
    probs = rng.dirichlet(np.ones(3), n).astype(np.float32)
    return fp.ModalityScores(
        modality,
        np.array([f"{modality}-{i}" for i in range(n)]),
        y,
        np.array([f"{modality}-g{i // 6}" for i in range(n)]),
        (probs[:, 2] - probs[:, 0]).astype(np.float32),
        probs.max(1),
        probs,
        f"{modality}@test",
        "synthetic",
    )


def test_pairs_share_labels_and_never_mix_folds() -> None:
    scores = {
        "face": _scores("face", 8, (0, 2), 0),  # no neutral faces
        "voice": _scores("voice", 4, (0, 1, 2), 1),
        "text": _scores("text", 12, (0, 1, 2), 2),
    }
    pairs = fp.make_pairs(scores, n_folds=4, per_class=10, seed=0)
    assert len(pairs.y) == 4 * 3 * 10 and set(pairs.group) == {f"fold{f}" for f in range(4)}
    face_there = pairs.x[:, 0, 2] > 0
    assert not face_there[pairs.y == 1].any() and face_there[pairs.y != 1].all()
    assert (pairs.x[:, 1:, 2] > 0).all()
    folds = {m: group_folds(s.groups, 4, k) for k, (m, s) in enumerate(scores.items())}
    for m, s in scores.items():  # each modality's fold holds whole groups
        for g in set(s.groups):
            assert len(set(folds[m][s.groups == g])) == 1


def test_compare_subsets_reports_seven_rows() -> None:
    x, y = synthetic(300, 8)
    pairs = fp.PairSet(
        x, np.where(x[:, :, 2] > 0, 1, -1), y, np.array(["g"] * len(y)), np.array([""] * len(y))
    )

    def fixed(xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = (xs[:, :, 0] * xs[:, :, 2]).sum(1)
        return np.digitize(v, [-0.2, 0.2]), np.full(len(xs), 0.5)

    table = fc.compare_subsets(
        pairs, np.arange(len(y)), lambda s, r: fixed(pairs.x[r]), fixed, seed=0, n_boot=20
    )
    assert [r["subset"] for r in table] == ["+".join(s) for s in fp.SUBSETS]
    assert all(r["learned_minus_fixed_accuracy"]["diff"] is not None for r in table)


COMPONENTS = {"face": "face-a@1", "voice": "voice-b@2", "text": "text-c@1"}


def _bundle(tmp_path: Path, trained) -> Path:
    meta = ff.save_bundle(
        trained[0],
        tmp_path,
        "fusion-test",
        components=COMPONENTS,
        training_data={},
        metrics={},
        card=lambda meta: f"# {meta.model_id}\n",
    )
    assert Path(meta.path) == tmp_path / "fusion-test"
    assert {p.name for p in Path(meta.path).iterdir()} == {"bundle.json", "weights.pt", "card.md"}
    return Path(meta.path) / "bundle.json"


def test_bundle_round_trip_and_fuse(tmp_path: Path, trained) -> None:
    model = LearnedFusion.load(str(_bundle(tmp_path, trained)))
    assert model.model_id.startswith("fusion-test@1+")
    results = [
        {"face": Result(True, 0.8, 0.9), "voice": Result(False), "text": Result(True, 0.5, 0.7)},
        {"voice": Result(True, -0.6, 0.8)},
        {"text": Result(True, 0.0, 0.95)},
        {"face": Result(False), "text": Result(True, None, None)},
    ]
    batch = model.fuse_many(results)
    # the same answers one by one; floats equal but for the last bits (a batched matmul
    # may take another kernel than a single row)
    for got, want in zip(batch, [model.fuse(r, MODALITIES) for r in results], strict=True):
        assert (got.label, got.present) == (want.label, want.present)
        assert got.valence == pytest.approx(want.valence, abs=1e-6, nan_ok=False) or (
            got.valence is want.valence is None
        )
        assert got.confidence == pytest.approx(want.confidence, abs=1e-6)
    assert batch[0].label == "positive" and batch[0].present == ("face", "text")
    assert batch[1].label == "negative" and batch[1].valence < 0
    assert batch[3] == FusedScore(None, "unknown", 0.0, ())
    assert all(0 <= f.confidence <= 1 for f in batch)
    x = inputs_from_results(results[0])
    np.testing.assert_allclose(x, [[0.8, 0.9, 1.0], [0, 0, 0], [0.5, 0.7, 1.0]], rtol=1e-6)


def test_bundle_refuses_results_of_other_components(tmp_path: Path, trained) -> None:
    path = _bundle(tmp_path, trained)
    model = LearnedFusion.load(str(path.parent))
    assert model.components == COMPONENTS
    ours = {
        "voice": Result(True, 0.5, 0.8, "voice-b@2"),
        "text": Result(True, 0.4, 0.9, "text-c@1"),
    }
    assert model.fuse(ours).present == ("voice", "text")
    other = {**ours, "voice": Result(True, 0.5, 0.8, "voice-other@1")}
    with pytest.raises(ValueError, match="(?s)voice-b@2.*voice-other@1.*allow_other_components"):
        model.fuse(other)
    with pytest.raises(ValueError, match="voice-other@1"):
        model.fuse_many([ours, other])
    absent = {**ours, "voice": Result(False, model_id="voice-other@1")}
    assert model.fuse(absent).present == ("text",)  # absent results are not checked
    lenient = LearnedFusion.load(str(path), allow_other_components=True)
    assert lenient.fuse(other) == model.fuse(ours)


def test_strict_load_fails_clearly_on_a_mismatched_bundle(tmp_path: Path, trained) -> None:
    path = _bundle(tmp_path, trained)
    meta = json.loads(path.read_text())
    meta["params"]["hidden"] = 4
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="fusion-test.*do not match"):
        LearnedFusion.load(str(path))
    meta["kind"] = "text"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="expected 'fusion'"):
        LearnedFusion.load(str(path))


def test_shipped_bundle_fuses_pipeline_results() -> None:
    from sentistream.models.bundle import shipped_weights_dir
    from sentistream.transforms.records import ModalityResult

    assert (shipped_weights_dir() / "fusion-late-mlp" / "bundle.json").is_file()
    model = LearnedFusion.load()
    assert set(model.components) == set(MODALITIES)  # trained on the default components
    fused = model.fuse(
        {
            "face": ModalityResult.absent("face", "no_face"),
            "voice": ModalityResult("voice", True, valence=-0.4, confidence=0.5),
            "text": ModalityResult("text", True, valence=-0.7, confidence=0.8),
        },
        MODALITIES,
    )
    assert fused.label == "negative" and fused.present == ("voice", "text")
    assert -1 <= fused.valence < 0 and 0 < fused.confidence <= 1
